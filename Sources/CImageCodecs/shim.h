// Image codecs from Debian: libturbojpeg0-dev (TurboJPEG API) and libpng-dev (libpng 1.6).
#ifndef GLFD_CIMAGECODECS_SHIM_H
#define GLFD_CIMAGECODECS_SHIM_H
#include <turbojpeg.h>
#include <png.h>
#endif
