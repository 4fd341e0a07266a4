// zlib from Debian's zlib1g-dev: gzip-compressed dataset files (Fashion-MNIST's IDX files).
#ifndef GLFD_CZLIB_SHIM_H
#define GLFD_CZLIB_SHIM_H
#include <zlib.h>
#endif
