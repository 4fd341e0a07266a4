// LMDB from Debian's liblmdb-dev: the replay store's crash-safe, memory-mapped B+tree.
#ifndef GLFD_CLMDB_SHIM_H
#define GLFD_CLMDB_SHIM_H
#include <lmdb.h>
#endif
