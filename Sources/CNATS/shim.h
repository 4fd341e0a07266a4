// The NATS C client from Debian's libnats-dev (3.4, JetStream included): the JetStream stream glfd
// can ingest from, and what replicas follow the trainer through (issue 16).
#ifndef GLFD_CNATS_SHIM_H
#define GLFD_CNATS_SHIM_H
#include <nats/nats.h>
#endif
