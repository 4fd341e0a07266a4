// libzmq from Debian's libzmq3-dev: the daemon's request (ROUTER) and announcement (PUB) sockets.
#ifndef GLFD_CZEROMQ_SHIM_H
#define GLFD_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
