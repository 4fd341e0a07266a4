// OpenBLAS from Debian's libopenblas-dev: the CBLAS interface plus its thread control.
#ifndef GLFD_COPENBLAS_SHIM_H
#define GLFD_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
