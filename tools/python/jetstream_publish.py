#!/usr/bin/env python3
"""Publish image files to glfd's JetStream stream with only Python's standard library.

Written from protocol/PROTOCOL.md §9 and the NATS client protocol (docs.nats.io, "Client
Protocol"): a producer needs no NATS library and none of our code. Each image is published with
HPUB on glfd.ingest.<source>, its descriptor in Glfd-* headers and a Nats-Msg-Id (the file's path,
so a rerun of the same files is stored once by JetStream's duplicate window), and counts as sent
only when the stream's acknowledgement ({"stream": ..., "seq": N}) comes back on our inbox.

    python3 tools/python/jetstream_publish.py --server nats://127.0.0.1:4222 --source cam0 IMAGE...

Prints one line per image, "seq N duplicate? path", then "published N images, M duplicates".
Exits 1 if any publish was refused or not acknowledged within --timeout seconds.
"""
import argparse, json, os, socket, sys, time, uuid


class NATSProtocolError(Exception):
    pass


class Connection:
    """One TCP connection speaking the NATS client protocol: CONNECT, SUB, HPUB, PING/PONG."""

    def __init__(self, url, timeout):
        host, _, port = url.removeprefix("nats://").rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buffer = b""
        info = self._line()
        if not info.startswith(b"INFO "):
            raise NATSProtocolError("expected INFO, got %r" % info[:80])
        self.info = json.loads(info[5:])
        if not self.info.get("headers"):
            raise NATSProtocolError("this server does not support headers (NATS 2.2+ needed)")
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1, "name": "jetstream_publish.py", "lang": "python-stdlib", "version": "1"}
        self.sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        self._expect_pong()
        self.inbox = "_INBOX." + uuid.uuid4().hex
        self.sock.sendall(("SUB %s.* 1\r\n" % self.inbox).encode())

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise NATSProtocolError("the server closed the connection")
        self.buffer += chunk

    def _line(self):
        while b"\r\n" not in self.buffer:
            self._fill()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def _bytes(self, count):
        while len(self.buffer) < count + 2:
            self._fill()
        data, self.buffer = self.buffer[:count], self.buffer[count + 2:]  # + the trailing CRLF
        return data

    def _expect_pong(self):
        while True:
            line = self._line()
            if line == b"PONG":
                return
            if line.startswith(b"-ERR"):
                raise NATSProtocolError(line.decode(errors="replace"))
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")

    def publish(self, subject, payload, headers):
        """HPUB with a reply inbox; returns JetStream's acknowledgement as a dict."""
        reply = "%s.%s" % (self.inbox, uuid.uuid4().hex[:12])
        head = "NATS/1.0\r\n" + "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
        head = head.encode()
        self.sock.sendall(("HPUB %s %s %d %d\r\n" % (subject, reply, len(head), len(head) + len(payload))).encode()
                          + head + payload + b"\r\n")
        while True:
            line = self._line()
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise NATSProtocolError(line.decode(errors="replace"))
            elif line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                parts = line.decode().split()
                if line.startswith(b"MSG "):   # MSG subject sid [reply] size
                    body = self._bytes(int(parts[-1]))
                    status = None
                else:                           # HMSG subject sid [reply] header_size total_size
                    data = self._bytes(int(parts[-1]))
                    header, body = data[:int(parts[-2])], data[int(parts[-2]):]
                    status = header.split(b"\r\n", 1)[0].decode()  # "NATS/1.0 503" when no stream listens
                if parts[1] != reply:
                    continue  # a late answer to an earlier, timed-out publish
                if status and status.split()[1:2] == ["503"]:
                    raise NATSProtocolError("no stream holds %s (503 no responders): is glfd's stream created?" % subject)
                ack = json.loads(body)
                if "error" in ack:
                    raise NATSProtocolError("JetStream refused the publish: %s" % ack["error"])
                return ack


def descriptor_headers(path, meta):
    extension = os.path.splitext(path)[1].lower()
    headers = {"Nats-Msg-Id": os.path.abspath(path)}
    if extension in (".jpg", ".jpeg"):
        headers["Glfd-Format"] = "jpeg"
    elif extension == ".png":
        headers["Glfd-Format"] = "png"
    if meta:
        headers["Glfd-Meta"] = meta
    return headers


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--server", default="nats://127.0.0.1:4222")
    parser.add_argument("--source", default="python", help="the source tag: the subject's last token")
    parser.add_argument("--prefix", default="glfd.ingest.", help="ingest.jetstream_subject_prefix")
    parser.add_argument("--meta", default="", help="kept verbatim as each item's meta")
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args()
    if not args.source or any(c in args.source for c in " .*>\t\r\n"):
        sys.exit("--source must be one subject token: no spaces, dots, * or >")
    connection = Connection(args.server, args.timeout)
    published = duplicates = 0
    started = time.monotonic()
    for path in args.images:
        with open(path, "rb") as f:
            payload = f.read()
        ack = connection.publish(args.prefix + args.source, payload, descriptor_headers(path, args.meta))
        duplicate = bool(ack.get("duplicate"))
        duplicates += duplicate
        published += 1
        print("seq %d%s %s" % (ack["seq"], " duplicate" if duplicate else "", path))
    print("published %d images, %d duplicates, %.1f s" % (published, duplicates, time.monotonic() - started))


if __name__ == "__main__":
    try:
        main()
    except (NATSProtocolError, OSError) as error:
        sys.exit("jetstream_publish.py: %s" % error)
