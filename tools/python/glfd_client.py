"""A client for glfd, written from protocol/PROTOCOL.md alone (glfd/1) with pyzmq.

    from glfd_client import Client
    with Client("tcp://127.0.0.1:5555") as glfd:
        ids = glfd.ingest([open("cat.jpg", "rb").read()], source="camera-1")
        vector, version = glfd.embed(open("cat.jpg", "rb").read())
        for neighbour in glfd.knn(item=ids[0], k=5)["neighbours"]:
            print(neighbour["id"], neighbour["score"])
        print(glfd.status()["training"]["step"])

    for announcement in follow("tcp://127.0.0.1:5556"):   # new model versions as they come
        print(announcement["version"], announcement["path"])
    for topic, message in follow("tcp://127.0.0.1:5556", drift=True):   # ... and drift alerts
        print(topic, message)

Errors come back as GlfdError(code, message, index) with the protocol's stable codes.
"""
import itertools
import json
import struct

import zmq

VERSION = b"glfd/1"


class GlfdError(Exception):
    def __init__(self, code, message, index=None):
        super().__init__(f"{code}: {message}" + (f" (image {index})" if index is not None else ""))
        self.code, self.message, self.index = code, message, index


def _vector_frame(vector):
    return struct.pack(f"<{len(vector)}f", *vector)


def _vector(frame, dim):
    if len(frame) != 4 * dim:
        raise GlfdError("bad_frames", f"vector frame of {len(frame)} bytes for dim {dim}")
    return list(struct.unpack(f"<{dim}f", frame))


class Client:
    """A DEALER client: one request at a time here, matched to its reply by id."""

    def __init__(self, endpoint="tcp://127.0.0.1:5555", timeout_ms=60_000, context=None, curve=None):
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
        if curve:  # (server_public, client_public, client_secret), Z85 text
            server_public, public, secret = curve
            self.socket.curve_serverkey = server_public.encode()
            self.socket.curve_publickey = public.encode()
            self.socket.curve_secretkey = secret.encode()
        for one in endpoint.split(","):  # several: replicas, served in turn by the DEALER
            self.socket.connect(one)
        self._ids = itertools.count(1)

    def close(self):
        self.socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, header, payloads=()):
        """Sends one request; returns (result dict, payload frames) or raises GlfdError."""
        request_id = next(self._ids)
        header = dict(header, id=request_id)
        self.socket.send_multipart([VERSION, json.dumps(header).encode()] + list(payloads))
        while True:
            try:
                frames = self.socket.recv_multipart()
            except zmq.Again:
                raise GlfdError("timeout", f"no reply to {header['cmd']} within the timeout") from None
            if len(frames) < 2 or frames[0] != VERSION:
                raise GlfdError("bad_frames", f"unexpected reply frames {frames[:2]!r}")
            reply = json.loads(frames[1])
            if reply.get("id") not in (request_id, None):
                continue  # a late reply to an earlier, timed-out request
            if not reply["ok"]:
                error = reply["error"]
                raise GlfdError(error["code"], error["message"], error.get("index"))
            return reply["result"], frames[2:]

    def ingest(self, images, source=None, meta=None, raw_shape=None):
        """Stores encoded images (bytes); returns their ids once durable. raw_shape=(h, w, c)
        sends raw 8-bit pixels instead."""
        descriptors = []
        for _ in images:
            d = {}
            if source is not None:
                d["source"] = source
            if meta is not None:
                d["meta"] = meta
            if raw_shape is not None:
                d.update(format="raw", height=raw_shape[0], width=raw_shape[1], channels=raw_shape[2])
            descriptors.append(d)
        result, _ = self.request({"cmd": "ingest", "images": descriptors}, images)
        return result["ids"]

    def embed(self, image):
        """The embedding of one encoded image: (list of floats, model version)."""
        result, frames = self.request({"cmd": "embed", "images": [{}]}, [image])
        return _vector(frames[0], result["dim"]), result["version"]

    def knn(self, image=None, item=None, vector=None, k=10, source=None, exact=False,
            ingested_after=None, ingested_before=None, images=None, vectors=None):
        """ingested_after / ingested_before: seconds since the epoch (get's ingested_at), exclusive."""
        header = {"cmd": "knn", "k": k, "exact": exact}
        for key, value in (("source", source), ("ingested_after", ingested_after), ("ingested_before", ingested_before)):
            if value is not None:
                header[key] = value
        payloads = []
        if images is not None:
            # Several queries: result["results"][i]["neighbours"] answers images[i].
            header.update(by="images", images=[{} for _ in images])
            payloads = list(images)
        elif vectors is not None:
            header.update(by="vectors", dim=len(vectors[0]), count=len(vectors))
            payloads = [b"".join(_vector_frame(v) for v in vectors)]
        elif image is not None:
            header["by"] = "image"
            payloads = [image]
        elif item is not None:
            header.update(by="item", item=item)
        else:
            header.update(by="vector", dim=len(vector))
            payloads = [_vector_frame(vector)]
        result, _ = self.request(header, payloads)
        return result

    def duplicates(self, within=None, source=None, max_groups=None, ingested_after=None, ingested_before=None):
        """Near-duplicate groups under the served version (PROTOCOL.md, `duplicates`)."""
        header = {"cmd": "duplicates"}
        for key, value in (("within", within), ("source", source), ("max_groups", max_groups),
                           ("ingested_after", ingested_after), ("ingested_before", ingested_before)):
            if value is not None:
                header[key] = value
        return self.request(header)[0]

    def get(self, ids, pixels=False):
        result, frames = self.request({"cmd": "get", "ids": list(ids), "pixels": pixels})
        return (result["items"], frames) if pixels else result["items"]

    def delete(self, ids):
        return self.request({"cmd": "delete", "ids": list(ids)})[0]["deleted"]

    def status(self):
        return self.request({"cmd": "status"})[0]

    def model(self):
        return self.request({"cmd": "model"})[0]

    def last_announcement(self):
        return self.request({"cmd": "last_announcement"})[0]["announcement"]


def follow(endpoint="tcp://127.0.0.1:5556", context=None, timeout_ms=None, drift=False):
    """Yields each model announcement published from now on (a dict), as PROTOCOL.md §5; with
    drift=True also each drift alert, as ("drift", alert) beside ("model", announcement)."""
    context = context or zmq.Context.instance()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.SUBSCRIBE, b"model")
    if drift:
        socket.setsockopt(zmq.SUBSCRIBE, b"drift")
    if timeout_ms is not None:
        socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
    socket.connect(endpoint)
    try:
        while True:
            topic, version, body = socket.recv_multipart()
            if version == VERSION:
                message = json.loads(body)
                yield (topic.decode(), message) if drift else message
    finally:
        socket.close(linger=0)
