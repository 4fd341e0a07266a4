#!/usr/bin/env python3
"""A connection flood against a real glfd: many idle TCP connections must not lock out new clients.

    python3 tools/python/flood.py --glfd .build/debug/glfd [--connections 1100] [--rounds 1]

glfd is started under a soft limit of 1,024 open files (the usual default outside systemd, where
the flood once locked new clients out for about 30 s); it raises its own limit to the hard one. The
script opens `--connections` plain TCP connections to the request port that never speak, then a
real client must get `status` answered within 5 s; the connections close, another client must be
served, and SIGTERM must end glfd with status 0. Prints `flood: all checks hold` on success.
"""
import argparse
import os
import resource
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zmq  # noqa: E402
from scenario import check, failures, start, stop  # noqa: E402


def status_within(endpoint, seconds):
    """Seconds until a fresh DEALER got its status answered, or None past `seconds`."""
    context = zmq.Context.instance()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(endpoint)
    started = time.monotonic()
    try:
        dealer.send_multipart([b"glfd/1", b'{"cmd":"status","id":1}'])
        if dealer.poll(int(seconds * 1000)):
            frames = dealer.recv_multipart()
            if b'"ok":true' in frames[1]:
                return time.monotonic() - started
        return None
    finally:
        dealer.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--glfd", required=True)
    parser.add_argument("--connections", type=int, default=1100)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # This process holds the flood: it needs room for it (its own soft limit up to the hard one).
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.connections + 64:
        raise SystemExit(f"the hard limit on open files ({hard}) leaves no room for {args.connections} connections")
    # glfd starts as it would from a shell: soft limit 1,024 (it may raise it to the hard one).
    limited = min(1024, hard)
    os.environ.pop("GLFD_CONFIG", None)
    with tempfile.TemporaryDirectory(prefix="glfd-flood-") as state:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limited, hard))
        try:
            process, requests, _ = start(args.glfd, state)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        host, port = requests.removeprefix("tcp://").rsplit(":", 1)
        try:
            check(status_within(requests, 60) is not None, "glfd answers before the flood")
            for round in range(args.rounds):
                sockets = []
                for _ in range(args.connections):
                    s = socket.create_connection((host, int(port)), timeout=5)
                    sockets.append(s)
                time.sleep(0.5)
                took = status_within(requests, 5)
                check(took is not None, f"round {round + 1}: with {len(sockets)} idle connections open, a new client "
                      f"is served within 5 s ({'%.3f s' % took if took is not None else 'no answer'})")
                check(process.poll() is None, f"round {round + 1}: glfd is alive")
                for s in sockets:
                    s.close()
                time.sleep(0.5)
                took = status_within(requests, 5)
                check(took is not None, f"round {round + 1}: after the flood closed, a new client is served within 5 s")
        finally:
            status = stop(process)
        check(status == 0, f"SIGTERM: exit status {status}")
    if failures:
        print(f"flood: {len(failures)} check(s) failed")
        sys.exit(1)
    print("flood: all checks hold")


if __name__ == "__main__":
    main()
