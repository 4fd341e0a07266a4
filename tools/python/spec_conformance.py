#!/usr/bin/env python3
"""Conformance checks for glfd, written only from protocol/PROTOCOL.md (glfd/1, as revised).

Usage:
    python3 tools/python/spec_conformance.py [--endpoint tcp://127.0.0.1:5555]
        [--announce tcp://127.0.0.1:5556] [--only NAME[,NAME...]] [--fresh]
        [--spawn PATH_TO_GLFD] [--timeout S] [--big-timeout S] [--startup-timeout S]
        [--announce-wait S] [--keep] [--list]

Each check prints `PASS name`, `FAIL name: why` or `NOTE name: text` (a NOTE alone means the
check could not be decided, e.g. no catalog yet, or the spec is silent); the last line is
`conformance: N passed, M failed, K notes` and the exit status is 1 if any check FAILed.
`--only` takes names, comma-separated or repeated, and shell-style patterns (`a7_limits_*`).

`--spawn PATH` starts that glfd itself on a fresh temporary state directory with free loopback
ports (`tcp://127.0.0.1:*`, the endpoints read from its log, as tools/python/scenario.py does),
runs every check including the fresh ones, stops it with SIGTERM (exit status 0 expected),
restarts it on the same state for the restart checks, and stops it again. Without `--spawn`,
checks marked fresh run only with `--fresh`: start glfd on an empty state directory, then this
script at once (the fresh checks run first). Every other check makes its own data by ingesting
(and deletes it at the end unless `--keep`), and assumes little about what else is stored.
Needs pyzmq; nothing else outside the standard library.

Every request waits at most `--timeout` seconds (longer for the 64 MiB ones); a REQ socket
that timed out is discarded and a fresh one connected.

Checks (PROTOCOL.md sections in brackets):
    a1_*        the "format" field of image descriptors [§2]
    a2_nulls_*  `T|null` result fields are present, as null when they have no value [§2, §3]
    a3_*        start-up: model/embed strict loop, version 1 [§3 model, status, embed] (fresh)
    a4_*        a message that does not start with the version frame [§2, §7]
    a5_*        knn by item puts the item itself first, even before duplicates [§3 knn]
    a6_id_*     error replies echo the request id; request id types [§2]
    a7_limits_* every limit of §6, at the limit and just over
    b_*         ingest, get, delete [§3]
    e_*         one per row of §6 "What happens at the edges"
    export_*    export pages, next_after, slices [§3 export]
    basic_*     things a stranger relies on: unknown command, bad JSON, status shape, ...
    announce_*  announcements, metrics keys and last_announcement [§5]
    spawn_*     SIGTERM exits 0, a restart keeps items/model/announcement (--spawn only)

Silences and ambiguities of PROTOCOL.md that remain (or that the revision creates), and the
guess each check makes:
 1. Error precedence when several rules apply is unstated. Sharpest case: dim 65,537 on knn by
    vector is both "`dim` | 1–65,536 | `bad_header` below 1 or missing, `too_large` above"
    (§6) and "`d` must be the embedding dimension, as `embed` and `export` report it, else
    `bad_header`" (§3 knn). The §6 row is taken (too_large required); dim 65,536 (≠ the
    model's) must be bad_header. Other probes are built so that only one rule applies.
 2. A single empty frame from a DEALER is both "an empty message" (`bad_frames`) and "a
    message whose frame 0 is not `glfd/1` (an HTTP request, one stray frame)"
    (`unsupported_version`), and the server cannot tell it from a REQ envelope with nothing
    after it. Either code is accepted (NOTE saying which); a reply that starts with the empty
    frame echoed as a delimiter is accepted there.
 3. §3 get: "at most as many as 4 MiB of stored pixels hold: 1,365 ids ... else `too_large`
    naming the number": the number that fits (1,365) or the number asked (1,366)? The message
    must name one of them; naming only the count asked is a NOTE.
 4. §2: "`id` is absent only when the request had none, or frame 1 is not such an object": for
    a header over 4 MiB the id may or may not come back (not judged). "Request `id`: an integer
    (−2⁶³ … 2⁶³−1) or a string ... Any other type (a fraction, a bool, an object) makes the
    request `bad_header`": an integer outside that range (2⁶³) and an integral float (`1.0`)
    are neither named; both answers are NOTEs (bad_header without id expected for 2⁶³).
 5. "`null` is the same as no `id`", read with "`id` is absent only when the request had
    none": the reply to `"id": null` must have no `id` key (a `"id": null` in it FAILs).
 6. §3 export: whether the last non-empty page says `next_after: null` or points at an empty
    page, and whether `next_after` is the last id of the page, are unsaid: walks rely only on
    "ask again with `"after": next_after` until it is null" (a NOTE records which is done).
 7. §3 status: "`building` names" the version being built, but its type (a number? an
    object?) is not given; only its presence and null-when-settled are checked.
 8. §6 "a number where an integer belongs that is not one (`"width": 32.5` ...) | bad_header"
    vs §2 "`width`/`height` are ignored for JPEG and PNG": a fractional width on a PNG
    descriptor is not probed (raw descriptors only).
 9. §6 edges: get of "ids above 2⁵³ | `null` in their place"; the same ids in delete (left out?)
    and knn by item (not_found?) are unsaid; ids above 2⁶⁴−1 (not u64) are unsaid. Probed for
    get only (up to 2⁶⁴−1).
10. §6 "replies queued for a client that does not read | 1,000 per connection | none: later
    replies are dropped": not observable from a client exactly (its own receive queue and the
    kernel buffers hold replies too); only "rather than stalling the daemon" (§1) is checked.
11. §6 "ingests in flight per connection | 8 | `busy`": when a request starts and stops being
    "in flight" is unsaid; only "the first 8 of a pipelined burst are never busy" (limits are
    inclusive) and that busy is the only refusal are checked.
12. §6 edges "a stored record that cannot be read, or a failure of LMDB | nothing is applied |
    `internal`", retention (`store.max_items`, `store.max_bytes`) and durability after a crash
    cannot be provoked by a client of a default daemon: NOTE, not probed.
13. §5 metrics: "The terms by method: simclr ... barlow-twins ..." but status shows the method
    as "simclr+adc": how other methods are spelled in `training.method` is not pinned. Known
    spellings are judged exactly; others are a NOTE.
14. §6 "whole request (all frames)": taken as frame 0 + header + payloads, without the routing
    envelope (the at-limit probe is exactly 64 MiB of those, over-limit is one byte more).
15. §6 edges "`format` other than `auto`, `jpeg`, `png`, `raw` (case matters) | refused |
    `bad_header`": whether `index` is then present is not said (not judged).
16. §6 "any one frame | 17 MiB | ... ZeroMQ closes the connection": a frame of exactly 17 MiB
    is taken to reach the daemon (limits are inclusive) and so to get `too_large`.
17. §3 knn: "small catalogs, and large ones until their approximate index is built, are
    searched exactly whatever was asked": how small is "small" is unsaid, so `exact` in a reply
    to `"exact": false` is not judged; `"exact": true` must answer `exact: true`.
18. §3 knn: "Items stored since the catalog was built join the answers as they are embedded:
    a knn embeds up to 128 of them itself"; a burst's backlog is "left out until then": checks
    that need fresh items in knn answers first wait for status to show the catalog settled.
19. §3 status: "`catalog` is ... how many items it holds" and "`building: null` with `items`
    equal to `store.items` means the catalog is complete and settled", while §3 delete says
    deleted items leave knn answers and export pages at once: whether `catalog.items` still
    counts deleted items is unsaid. If it does, a client that waits for `items` equal to
    `store.items` waits forever after a delete (b_delete_catalog_items NOTEs what it sees;
    the settle wait accepts `catalog.items` ≥ `store.items` once something was deleted).
"""

import argparse
import array
import fnmatch
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

try:
    import zmq
except ImportError:  # pragma: no cover - reported at run time, py_compile still works
    zmq = None

VERSION = b"glfd/1"
KIB = 1024
MIB = 1024 * 1024
ENV_CODES = ("store_full", "disk_full", "shutting_down", "busy")  # not the check's business


# ---------------------------------------------------------------- images and vectors

def _png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png(width, height, channels=3, pixels=None):
    """A valid 8-bit PNG. pixels: bytes of width*height*channels (random if None).
    channels 1 = gray (colour type 0), 3 = RGB (2), 4 = RGBA (6)."""
    ctype = {1: 0, 3: 2, 4: 6}[channels]
    stride = width * channels
    if pixels is None:
        pixels = os.urandom(stride * height)
    raw = b"".join(b"\x00" + pixels[r * stride:(r + 1) * stride] for r in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, ctype, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(raw, 6)) + _png_chunk(b"IEND", b""))


def png_blank(width, height):
    """A valid gray PNG of zeros, compressed row by row (40 Mpx without 40 MB in memory)."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", b"".join(parts)) + _png_chunk(b"IEND", b""))


def jpeg_grey(blocks_w=1, blocks_h=1):
    """A valid baseline JPEG, grey, (8·blocks_w) × (8·blocks_h) pixels of level 128: every block
    is DC difference 0 then end-of-block, each coded by a one-symbol Huffman table ("0")."""
    w, h = 8 * blocks_w, 8 * blocks_h
    seg = lambda marker, body: b"\xff" + marker + struct.pack(">H", len(body) + 2) + body
    one_code = bytes([1] + [0] * 15) + b"\x00"   # one code of length 1, symbol 0
    nbits = 2 * blocks_w * blocks_h
    data = bytearray((nbits + 7) // 8)
    if nbits % 8:
        data[-1] = (1 << (8 - nbits % 8)) - 1  # pad the last byte with 1 bits
    return (b"\xff\xd8"
            + seg(b"\xe0", b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
            + seg(b"\xdb", b"\x00" + b"\x01" * 64)
            + seg(b"\xc0", struct.pack(">BHHB", 8, h, w, 1) + b"\x01\x11\x00")
            + seg(b"\xc4", b"\x00" + one_code) + seg(b"\xc4", b"\x10" + one_code)
            + seg(b"\xda", b"\x01\x01\x00\x00\x3f\x00") + bytes(data) + b"\xff\xd9")


def raw_desc(width, height, channels, **extra):
    d = {"format": "raw", "width": width, "height": height, "channels": channels}
    d.update(extra)
    return d


def raw_frame(width, height, channels, random=False):
    n = width * height * channels
    return os.urandom(n) if random else bytes(n)


def f32_pack(values):
    a = array.array("f", values)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def f32_unpack(frame):
    if len(frame) % 4:
        raise ValueError("vector frame of %d bytes is not a whole number of float32" % len(frame))
    a = array.array("f")
    a.frombytes(frame)
    if sys.byteorder == "big":
        a.byteswap()
    return list(a)


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def dumps(obj):
    """Headers are UTF-8 JSON (§2); compact, non-ASCII kept as UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def padded_header(size, base):
    """A header of exactly `size` bytes: `base` plus an ignored field "pad" (§2: unknown
    fields are ignored)."""
    h = dict(base)
    h["pad"] = ""
    n = size - len(dumps(h))
    if n < 0:
        raise ValueError("base header already larger than %d" % size)
    h["pad"] = "x" * n
    out = dumps(h)
    assert len(out) == size, (len(out), size)
    return out


# ---------------------------------------------------------------- client and verdicts

class Fail(Exception):
    """The daemon did not do what PROTOCOL.md says."""


class Note(Exception):
    """The check cannot be decided (state not observable, spec silent)."""


class Timeout(Exception):
    pass


class Reply:
    def __init__(self, frames, sent_id, strip_delimiter=False):
        if strip_delimiter and len(frames) > 2 and frames[0] == b"" and frames[1] == VERSION:
            frames = frames[1:]  # our empty frame, taken by the server for a REQ delimiter
        self.frames = frames
        self.sent_id = sent_id  # the id we sent, None if none
        if len(frames) < 2:
            raise Fail("reply has %d frame(s); §2 wants version + header" % len(frames))
        if frames[0] != VERSION:
            raise Fail("reply frame 0 is %r, not b'glfd/1' (§2)" % frames[0][:40])
        try:
            self.header = json.loads(frames[1].decode("utf-8"))
        except Exception as e:
            raise Fail("reply header is not UTF-8 JSON: %s" % e)
        if not isinstance(self.header, dict) or not isinstance(self.header.get("ok"), bool):
            raise Fail("reply header is not an object with boolean ok: %r" % frames[1][:200])
        self.ok = self.header["ok"]
        self.result = self.header.get("result")
        self.error = self.header.get("error")
        self.payload = frames[2:]

    @property
    def code(self):
        return None if self.ok else (self.error or {}).get("code")

    def describe(self):
        if self.ok:
            return "ok"
        e = self.error or {}
        return "%s (%s)" % (e.get("code"), str(e.get("message"))[:160])


class Client:
    """One REQ (or DEALER) socket; replaced by a fresh one after a timeout."""

    def __init__(self, zctx, endpoint, timeout, kind=None, opts=()):
        self.zctx, self.endpoint, self.timeout = zctx, endpoint, timeout
        self.kind = zmq.REQ if kind is None else kind
        self.opts = tuple(opts)  # (option, value) set before connecting
        self.sock = None
        self._connect()

    def _connect(self):
        if self.sock is not None:
            self.sock.close(linger=0)
        self.sock = self.zctx.socket(self.kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        for opt, value in self.opts:
            self.sock.setsockopt(opt, value)
        self.sock.connect(self.endpoint)

    def close(self):
        self.sock.close(linger=0)

    def request(self, header, frames=(), version=VERSION, timeout=None, raw=None,
                strip_delimiter=False):
        """Send version + header + frames (or exactly `raw` frames); return a Reply."""
        sent_id = None
        if raw is None:
            if isinstance(header, dict):
                sent_id = echoable_id(header)
                header = dumps(header)
            elif isinstance(header, bytes) and len(header) <= 4 * MIB:
                try:
                    sent_id = echoable_id(json.loads(header.decode("utf-8")))
                except ValueError:
                    pass
            raw = [version, header] + list(frames)
        self.sock.send_multipart(raw, copy=len(raw) < 3 and sum(map(len, raw)) < 65536)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000) + 1):
                self._connect()
                raise Timeout("no reply within %.0f s" % (timeout or self.timeout))
            got = self.sock.recv_multipart()
            if self.kind == zmq.DEALER and sent_id is not None:
                try:  # a late reply to an earlier, timed-out request: skip it
                    if json.loads(got[1].decode("utf-8")).get("id") != sent_id:
                        continue
                except Exception:
                    pass
            return Reply(got, sent_id, strip_delimiter)


def echoable_id(header):
    """The id an error reply must echo (§2): "whenever frame 1 is a JSON object of at most 4 MiB
    with a valid `id`"; "Request `id`: an integer (−2⁶³ … 2⁶³−1) or a string ... `null` is the
    same as no `id`". None when there is none to echo."""
    if not isinstance(header, dict):
        return None
    i = header.get("id")
    if isinstance(i, str) or (isinstance(i, int) and not isinstance(i, bool)
                              and -2 ** 63 <= i < 2 ** 63):
        return i
    return None


class Ctx:
    def __init__(self, args, zctx):
        self.args, self.zctx = args, zctx
        self.client = Client(zctx, args.endpoint, args.timeout)
        self.name = None
        self.created = []      # ids we ingested, deleted at the end unless --keep
        self.deleted = False   # whether a check deleted something (silence 19)
        self.sub = None        # SUB socket, when announcements are watched
        self.announcements = []
        self._n = 0

    def new_id(self):
        self._n += 1
        return "sc-%d-%d" % (os.getpid(), self._n)

    def note(self, text):
        COUNTS["notes"] += 1
        print("NOTE %s: %s" % (self.name, text), flush=True)

    def req(self, header, frames=(), timeout=None, **kw):
        """Send a request; dict headers without "id" get a fresh string id."""
        if isinstance(header, dict) and "id" not in header:
            header = dict(header, id=self.new_id())
        if isinstance(header, dict) and header.get("cmd") == "delete":
            self.deleted = True
        return self.client.request(header, frames, timeout=timeout, **kw)

    def ok(self, reply, what):
        """The result of a reply that must be ok (§2 reply header)."""
        if not reply.ok:
            if reply.code in ENV_CODES:
                raise Note("%s: daemon answered %s; cannot test" % (what, reply.describe()))
            raise Fail("%s: expected ok, got %s" % (what, reply.describe()))
        if reply.sent_id is not None and reply.header.get("id") != reply.sent_id:
            raise Fail("%s: reply id %r does not echo request id %r (§2)"
                       % (what, reply.header.get("id"), reply.sent_id))
        if not isinstance(reply.result, dict):
            raise Fail("%s: ok reply without a result object" % what)
        return reply.result

    def err(self, reply, codes, what, need_id=True):
        """The error of a reply that must fail with one of `codes`. §2: "An error reply carries
        the request's `id` whenever frame 1 is a JSON object of at most 4 MiB with a valid `id`,
        whatever else is wrong with the request" (every dict header we send is one, so the id
        must come back unless need_id=False)."""
        codes = (codes,) if isinstance(codes, str) else tuple(codes)
        if reply.ok:
            raise Fail("%s: expected %s, got ok" % (what, "/".join(codes)))
        e = reply.error
        if not isinstance(e, dict) or not isinstance(e.get("code"), str) \
                or not isinstance(e.get("message"), str):
            raise Fail("%s: error without string code and message: %r" % (what, e))
        if e["code"] not in codes:
            if e["code"] in ENV_CODES:
                raise Note("%s: daemon answered %s; cannot test" % (what, reply.describe()))
            raise Fail("%s: expected %s, got %s" % (what, "/".join(codes), reply.describe()))
        if reply.sent_id is not None and reply.header.get("id") != reply.sent_id:
            msg = ("%s: %s error does not echo the request id %r (got %r); §2: \"An error "
                   "reply carries the request's id whenever frame 1 is a JSON object of at most "
                   "4 MiB with a valid id, whatever else is wrong with the request\""
                   % (what, e["code"], reply.sent_id, reply.header.get("id")))
            if need_id:
                raise Fail(msg)
            self.note(msg)
        return e

    def ingest(self, images, what="ingest", timeout=None):
        """images: list of (descriptor, frame). Returns the ids (recorded for cleanup)."""
        r = self.req({"cmd": "ingest", "images": [d for d, _ in images]},
                     [f for _, f in images], timeout=timeout)
        res = self.ok(r, what)
        ids = res.get("ids")
        if not isinstance(ids, list) or len(ids) != len(images) \
                or not all(isinstance(i, int) and i >= 0 for i in ids):
            raise Fail("%s: result ids %r is not one u64 per image" % (what, ids))
        self.created.extend(ids)
        return ids

    def one_item(self):
        """A fresh stored item of our own (random pixels, so no other item equals it)."""
        return self.ingest([({}, png(16, 16))], "ingest of a 16x16 PNG")[0]

    def need_catalog(self, reply, what):
        if not reply.ok and reply.code == "not_ready":
            raise Note("%s: not_ready (no catalog/model yet); cannot test" % what)

    def delete(self, ids):
        for i in range(0, len(ids), 1000):
            self.ok(self.req({"cmd": "delete", "ids": ids[i:i + 1000]}), "cleanup delete")


CHECKS = []  # (name, function, "fresh" | "spawn" | None), run in this order
COUNTS = {"passed": 0, "failed": 0, "notes": 0}


def check(name, fresh=False, spawn=False):
    def register(fn):
        CHECKS.append((name, fn, "fresh" if fresh else "spawn" if spawn else None))
        return fn
    return register


# ---------------------------------------------------------------- fresh-state checks (first)

def _model_problems(m, where="model"):
    """§3 model: "Result: {"version": int, "path": string|null, "step": int, "published_at":
    float|null}; version 0 and `path` and `published_at` null before the first version is
    served." "`path` is the version's directory, an absolute path on the daemon's machine".
    §2: "A result field typed `T|null` below is always present, as `null` when it has no
    value." """
    bad = [("%s omits %r (present, null if need be)" % (where, k))
           for k in ("version", "path", "step", "published_at") if k not in m]
    if bad:
        return bad
    v = m["version"]
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        return ["%s.version is %r" % (where, v)]
    if not isinstance(m["step"], int) or m["step"] < 0:
        bad.append("%s.step is %r" % (where, m["step"]))
    if v == 0:
        for k in ("path", "published_at"):
            if m[k] is not None:
                bad.append("%s.%s is %r at version 0, not null" % (where, k, m[k]))
    else:
        if not isinstance(m["path"], str) or not os.path.isabs(m["path"]):
            bad.append("%s.path %r at version %d is not an absolute path" % (where, m["path"], v))
        if not _is_num(m["published_at"]):
            bad.append("%s.published_at %r at version %d is not a number"
                       % (where, m["published_at"], v))
    return bad


@check("a2_nulls_model_fresh", fresh=True)
def a2_nulls_model_fresh(ctx):
    # §3 model (see _model_problems); §3 status shows the same "model" object.
    r = ctx.ok(ctx.req({"cmd": "model"}, timeout=max(30.0, ctx.args.timeout)), "model")
    bad = _model_problems(r)
    s = ctx.ok(ctx.req({"cmd": "status"}), "status")
    bad += _model_problems(s.get("model") if isinstance(s.get("model"), dict) else {},
                           "status.model")
    if bad:
        raise Fail("; ".join(bad))
    if r["version"] != 0:
        raise Note("first model reply already at version %r: the state before the first "
                   "version was not observable (shapes checked)" % r["version"])


@check("a2_nulls_last_announcement_fresh", fresh=True)
def a2_nulls_last_announcement_fresh(ctx):
    # §3 last_announcement: "Result: {"announcement": announcement or null} — exactly the body
    # of the last PUB message (§5)." §3 model: "`model` (and `status.model`, and the
    # announcement) name a version only once `embed` uses it."
    r = ctx.ok(ctx.req({"cmd": "last_announcement"}), "last_announcement")
    if "announcement" not in r:
        raise Fail("result omits 'announcement' (must be present, null when none): %r" % r)
    if r["announcement"] is not None:
        v = (r["announcement"] or {}).get("version")
        e = ctx.req({"cmd": "embed", "images": [{}]}, [png(16, 16)])
        if not e.ok:
            raise Fail("an announcement of version %r exists but embed answers %s (§3 model: "
                       "the announcement names a version only once embed uses it)"
                       % (v, e.describe()))
        raise Note("an announcement was already sent (version %r): the 'none yet' state was "
                   "not observable" % v)


@check("a3_startup_model_embed_loop", fresh=True)
def a3_startup_model_embed_loop(ctx):
    # §3 model: "This is the version `embed` answers under: `model` (and `status.model`, and
    # the announcement) name a version only once `embed` uses it. Version 1 is published when
    # the daemon first starts". §3 status: "`embed` answers under `model.version` as soon as
    # the version is published." §3 embed: "`not_ready` (no model)".
    # A strict REQ loop from daemon start (model, embed, knn, model, embed, knn, ...) for ~10 s:
    # whenever model reported version >= 1, the next embed must succeed; the versions seen
    # (model, embed, model, ...) never decrease. The knn by vector (dim 1) outcomes are kept
    # for e_knn_vector_before_catalog_fresh.
    img = png(16, 16)
    start = time.monotonic()
    deadline = start + ctx.args.startup_timeout
    first = None
    last_v = 0          # highest version seen so far, from model or embed
    model_v = 0         # what the last model reply said
    after = 0           # embeds after model reported >= 1
    early_ok = 0
    ctx.fresh_knn = []
    while time.monotonic() - start < 10.0 or after < 20:
        if time.monotonic() > deadline:
            raise Note("model never reported version >= 1 within %.0f s; nothing to test"
                       % ctx.args.startup_timeout)
        try:
            m = ctx.req({"cmd": "model"}, timeout=5.0)
        except Timeout:
            continue  # still starting; the client has a fresh socket
        m = ctx.ok(m, "model")
        bad = _model_problems(m)
        if bad:
            raise Fail("; ".join(bad))
        v = m["version"]
        first = v if first is None else first
        if v < last_v:
            raise Fail("model reported version %d after version %d had been seen (model or "
                       "embed): versions went back" % (v, last_v))
        last_v = model_v = v
        e = ctx.req({"cmd": "embed", "images": [{}]}, [img])
        if model_v == 0:
            if e.ok:
                early_ok += 1
                last_v = max(last_v, ctx.ok(e, "embed").get("version", 0))
            else:
                ctx.err(e, "not_ready", "embed while model reports version 0")
        else:
            if not e.ok:
                raise Fail("embed answered %s right after model reported version %d (%d embeds "
                           "after the first version); §3 model: model names a version only "
                           "once embed uses it" % (e.describe(), model_v, after))
            ev = ctx.ok(e, "embed after model reported a version").get("version")
            if not isinstance(ev, int) or ev < model_v:
                raise Fail("embed answered under version %r after model reported version %d"
                           % (ev, model_v))
            last_v = ev
            after += 1
        k = ctx.req({"cmd": "knn", "by": "vector", "dim": 1, "k": 1}, [f32_pack([1.0])])
        ctx.fresh_knn.append((time.monotonic() - start, k.ok, k.code, k.describe()))
    if first is not None and first >= 1:
        ctx.note("the first model reply already showed version %d: the start-up window may "
                 "have been missed" % first)
    if early_ok:
        ctx.note("embed succeeded %d time(s) while model still reported version 0 (allowed: "
                 "model names a version only once embed uses it)" % early_ok)


@check("a3_version1_fresh", fresh=True)
def a3_version1_fresh(ctx):
    # §3 model: "Version 1 is published when the daemon first starts: the untrained model at
    # step 0". "`path` ... `model.safetensors` ..., `config.json`, `stats.json`".
    # §5: "The initial version, published before any step, has only `collapse` and
    # `images_per_second`, both 0." §3 last_announcement: "exactly the body of the last PUB
    # message". Nothing was ingested yet, so nothing was trained.
    m = ctx.ok(ctx.req({"cmd": "model"}), "model")
    if m.get("version") != 1:
        raise Note("model is at version %r, not 1: the first version was not observable"
                   % m.get("version"))
    if m.get("step") != 0:
        raise Fail("version 1 of a fresh daemon has step %r, not 0 (the untrained model)"
                   % m.get("step"))
    a = ctx.ok(ctx.req({"cmd": "last_announcement"}), "last_announcement").get("announcement")
    if not isinstance(a, dict):
        raise Fail("model is at version 1 but last_announcement is %r" % (a,))
    bad = _announcement_problems(a)
    if bad:
        raise Fail("announcement of version 1: " + "; ".join(bad))
    for k in ("version", "path", "step", "published_at"):
        if a.get(k) != m.get(k):
            raise Fail("announcement and model disagree on %s: %r vs %r" % (k, a.get(k), m.get(k)))
    if a["metrics"] != {"collapse": 0, "images_per_second": 0}:
        raise Fail("initial version's metrics are %r, not only collapse and images_per_second, "
                   "both 0" % a["metrics"])
    if ctx.args.spawn:  # the daemon's machine is this one
        missing = [f for f in ("model.safetensors", "config.json", "stats.json")
                   if not os.path.isfile(os.path.join(m["path"], f))]
        if missing:
            raise Fail("version 1's directory %s lacks %s" % (m["path"], missing))


@check("e_knn_vector_before_catalog_fresh", fresh=True)
def e_knn_vector_before_catalog_fresh(ctx):
    # §6 edges: "knn by vector before any catalog exists | refused (the dimension is checked
    # once one does) | `not_ready`"; "knn by vector: `dim` that is not the model's embedding
    # dimension ... | refused | `bad_header`". The probes of a3's loop (dim 1) must be
    # not_ready, then (once a catalog exists) bad_header, never back to not_ready.
    seen = getattr(ctx, "fresh_knn", None)
    if not seen:
        raise Note("a3_startup_model_embed_loop did not run")
    catalog = False
    for t, ok, code, desc in seen:
        if ok:
            raise Fail("knn by vector of dim 1 at %.2f s answered ok (a 1-dim model?)" % t)
        if code == "bad_header":
            catalog = True
        elif code == "not_ready":
            if catalog:
                raise Fail("knn by vector answered not_ready at %.2f s after a catalog existed "
                           "(bad_header earlier)" % t)
        else:
            raise Fail("knn by vector of dim 1 at %.2f s: %s; not_ready (no catalog) or "
                       "bad_header (wrong dim) expected" % (t, desc))
    if not any(code == "not_ready" for _, _, code, _ in seen):
        ctx.note("a catalog existed from the first probe: the not_ready state was not seen")


def _wait_catalog(ctx, seconds=60.0):
    """Wait until knn by item of a missing id stops answering not_ready (a catalog exists)."""
    deadline = time.monotonic() + seconds
    while True:
        r = ctx.req({"cmd": "knn", "by": "item", "item": MISSING_ID, "k": 1})
        if r.ok or r.code != "not_ready":
            return
        if time.monotonic() > deadline:
            raise Note("no catalog within %.0f s" % seconds)
        time.sleep(0.2)


@check("e_empty_catalog_fresh", fresh=True)
def e_empty_catalog_fresh(ctx):
    # §6 edges: "knn or export while the catalog is built but empty | `neighbours: []`,
    # `ids: []`". §3 export: "a frame of 0 bytes for an empty page"; "ask again with
    # "after": next_after until it is null".
    s = ctx.ok(ctx.req({"cmd": "status"}), "status")
    if s.get("store", {}).get("items") != 0:
        raise Note("the store is not empty (%r items)" % s.get("store", {}).get("items"))
    _wait_catalog(ctx)
    e = ctx.req({"cmd": "embed", "images": [{}]}, [png(16, 16)])
    res = ctx.ok(e, "embed")
    r = ctx.req({"cmd": "knn", "by": "vector", "dim": res["dim"], "k": 5}, [e.payload[0]])
    nb = ctx.ok(r, "knn by vector on an empty catalog").get("neighbours")
    if nb != []:
        raise Fail("knn by vector on an empty store: neighbours %r, not []" % (nb,))
    r = ctx.req({"cmd": "knn", "by": "image", "image": {}, "k": 5, "exact": True}, [png(16, 16)])
    nb = ctx.ok(r, "knn by image on an empty catalog").get("neighbours")
    if nb != []:
        raise Fail("knn by image on an empty store: neighbours %r, not []" % (nb,))
    res, r = _export_page(ctx, 0, 100)
    if res["ids"] != [] or res["next_after"] is not None:
        raise Fail("export of an empty store: ids %r, next_after %r (want [], null)"
                   % (res["ids"], res["next_after"]))
    if len(r.payload) != 1 or r.payload[0] != b"":
        raise Fail("empty export page came with frames %r, not one frame of 0 bytes"
                   % [len(f) for f in r.payload])


@check("b_ids_start_at_1_fresh", fresh=True)
def b_ids_start_at_1_fresh(ctx):
    # §3 ingest: "Ids are 64-bit, start at 1, increase with commit order and are never
    # reused." "the ids of one request are consecutive, in image order."
    s = ctx.ok(ctx.req({"cmd": "status"}), "status")
    if s.get("store", {}).get("ingested") != 0:
        raise Note("something was ingested already (%r)" % s.get("store", {}).get("ingested"))
    ids = ctx.ingest([({}, png(8, 8)) for _ in range(3)], "first ingest of a fresh daemon")
    if ids != [1, 2, 3]:
        raise Fail("the first ingest of 3 images on a fresh store got ids %r, not [1, 2, 3]"
                   % ids)


# ---------------------------------------------------------------- basics

def _is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


@check("basic_status_shape")
def basic_status_shape(ctx):
    # §3 status: "Request: {"cmd": "status"}. Result: {"protocol_version": "glfd/1",
    # "uptime_seconds": ..., "store": {"items", "bytes", "ingested", "replay_policy",
    # "replay_members", "replay_embedded", "map_used_bytes", "map_size"}, "training": {"method",
    # "step", "images_per_second", "loss": {...}, "gradient_share": {...}, "collapse",
    # "rolled_back"}, "model": {"version", "path", "step", "published_at"},
    # "catalog": {"version", "items", "building", "complete", "next_build_at"},
    # "memory": {"resident_bytes", "resident_file_bytes", "heap_in_use_bytes", "heap_held_bytes",
    # "networks_bytes", "catalog_bytes", "catalog_building_bytes", "replay_bytes"}}"
    # §2: "Clients must ignore unknown result fields." (extra keys are fine)
    s = ctx.ok(ctx.req({"cmd": "status"}), "status")
    if s.get("protocol_version") != "glfd/1":
        raise Fail("protocol_version is %r, not 'glfd/1'" % s.get("protocol_version"))
    if not _is_num(s.get("uptime_seconds")) or s["uptime_seconds"] < 0:
        raise Fail("uptime_seconds is %r" % s.get("uptime_seconds"))
    want = {
        "store": {"items": _is_num, "bytes": _is_num, "ingested": _is_num,
                  "replay_policy": lambda x: x in ("fifo", "reservoir", "minred", "reservoir-minred"),
                  "replay_members": _is_num,
                  "replay_embedded": _is_num, "map_used_bytes": _is_num, "map_size": _is_num},
        "training": {"method": lambda x: isinstance(x, str), "step": _is_num,
                     "images_per_second": _is_num, "collapse": _is_num, "rolled_back": _is_num,
                     "loss": lambda x: isinstance(x, dict) and all(map(_is_num, x.values())),
                     "gradient_share":
                         lambda x: isinstance(x, dict) and all(map(_is_num, x.values()))},
        "model": {"version": _is_num, "path": lambda x: x is None or isinstance(x, str),
                  "step": _is_num, "published_at": lambda x: x is None or _is_num(x)},
        "catalog": {"version": _is_num, "items": _is_num, "building": lambda x: True,
                    "complete": lambda x: isinstance(x, bool), "next_build_at": lambda x: x is None or _is_num(x)},
        "memory": {key: lambda x: _is_num(x) and x >= 0 for key in (
            "resident_bytes", "resident_file_bytes", "heap_in_use_bytes", "heap_held_bytes",
            "networks_bytes", "catalog_bytes", "catalog_building_bytes", "replay_bytes")},
    }
    bad = []
    for section, fields in want.items():
        obj = s.get(section)
        if not isinstance(obj, dict):
            bad.append("%s missing or not an object" % section)
            continue
        for key, ok in fields.items():
            if key not in obj:
                bad.append("%s.%s missing" % (section, key))
            elif not ok(obj[key]):
                bad.append("%s.%s has the wrong type: %r" % (section, key, obj[key]))
    if not bad:
        bad = _model_problems(s["model"], "status.model")
    if bad:
        raise Fail("; ".join(bad))
    m = s["memory"]
    if m["resident_file_bytes"] > m["resident_bytes"] or m["heap_in_use_bytes"] > m["heap_held_bytes"]:
        raise Fail("memory: file-backed pages above the resident set, or heap in use above heap held: %r" % m)
    if s["store"]["replay_policy"] in ("fifo", "reservoir") and s["store"]["replay_embedded"]:
        raise Fail("replay_embedded is %r under %s; §3: 0 under fifo and reservoir"
                   % (s["store"]["replay_embedded"], s["store"]["replay_policy"]))
    # §3 status: "`drift` ... is absent until a catalog with at least two replay members is
    # built": when present, {"version", "score" (null until arrivals are measured), "arrivals",
    # "arrival_distance" (null likewise), "replay_spacing", "reference_members", "checked_through"};
    # "A new version ... (`arrivals` 0, `score` and `arrival_distance` null ...)".
    d = s.get("drift")
    if d is not None:
        shape = {"version": _is_num, "arrivals": lambda x: _is_num(x) and x >= 0,
                 "score": lambda x: x is None or (_is_num(x) and x >= 0),
                 "arrival_distance": lambda x: x is None or (_is_num(x) and 0 <= x <= 2),
                 "replay_spacing": lambda x: _is_num(x) and 0 <= x <= 2,
                 "reference_members": lambda x: _is_num(x) and x >= 2, "checked_through": _is_num}
        bad = ["drift.%s %s" % (k, "missing" if k not in d else "is %r" % d[k]) for k, ok in shape.items()
               if k not in d or not ok(d[k])]
        if not bad and (d["score"] is None) != (d["arrivals"] == 0):
            bad.append("drift.score is %r with %r arrivals: null exactly when none is measured" % (d["score"], d["arrivals"]))
        if bad:
            raise Fail("; ".join(bad))
    # §3 status: "`jetstream` is present when the daemon ingests from a NATS JetStream stream":
    # {"stream", "consumer", "connected", "pending" (null before the first check), "stored",
    # "duplicates", "rejected", "last_error" (null unless paused)}.
    # §3 status: "`role` says what the daemon is: "trainer" ..., "replica" ..., or "serving"".
    if "role" in s and s["role"] not in ("trainer", "replica", "serving"):
        raise Fail("status.role is %r; §3: trainer, replica or serving" % s["role"])
    j = s.get("jetstream")
    if j is not None:
        count = lambda x: _is_num(x) and x >= 0
        shape = {"stream": lambda x: isinstance(x, str) and x, "consumer": lambda x: isinstance(x, str) and x,
                 "connected": lambda x: isinstance(x, bool), "pending": lambda x: x is None or count(x),
                 "stored": count, "duplicates": count, "rejected": count,
                 "last_error": lambda x: x is None or isinstance(x, str)}
        bad = ["jetstream.%s %s" % (k, "missing" if k not in j else "is %r" % j[k]) for k, ok in shape.items()
               if k not in j or not ok(j[k])]
        if bad:
            raise Fail("; ".join(bad))


@check("basic_model_files")
def basic_model_files(ctx):
    # §3 model_files: the served version's "files": [{"name", "bytes", "crc32"}] (config.json and
    # model.safetensors); model_file returns one frame of at most 4 MiB from "offset", with
    # "next_offset" null at the end; "the concatenation must have the listed size and CRC-32";
    # not_found for a version not kept, or a name model_files does not list.
    version = ctx.ok(ctx.req({"cmd": "model"}), "model")["version"]
    if not version:
        raise Note("no model version yet")
    listed = ctx.ok(ctx.req({"cmd": "model_files", "version": version}), "model_files")
    names = [f.get("name") for f in listed.get("files", [])]
    if listed.get("version") != version or sorted(names) != ["config.json", "model.safetensors"]:
        raise Fail("model_files of version %r: %r" % (version, listed))
    for f in listed["files"]:
        data, offset, chunks = b"", 0, 0
        while offset is not None:
            reply = ctx.req({"cmd": "model_file", "version": version, "name": f["name"], "offset": offset})
            r = ctx.ok(reply, "model_file %s at %d" % (f["name"], offset))
            if len(reply.payload) != 1 or len(reply.payload[0]) != r.get("bytes") or r.get("offset") != offset:
                raise Fail("model_file %s at %d: %r with %d frames" % (f["name"], offset, r, len(reply.payload)))
            if len(reply.payload[0]) > 4 << 20:
                raise Fail("model_file chunk of %d bytes; §3: at most 4 MiB" % len(reply.payload[0]))
            data += reply.payload[0]
            offset = r.get("next_offset")
            chunks += 1
            if chunks > 1000:
                raise Fail("model_file %s: over 1,000 chunks" % f["name"])
        if len(data) != f["bytes"] or zlib.crc32(data) != f["crc32"]:
            raise Fail("%s: %d bytes, CRC-32 %08x; listed %d bytes, %08x" % (f["name"], len(data), zlib.crc32(data), f["bytes"], f["crc32"]))
    ctx.err(ctx.req({"cmd": "model_files", "version": version + 1000}), "not_found", "model_files of a version never published")
    ctx.err(ctx.req({"cmd": "model_file", "version": version, "name": "training.json"}), "not_found", "model_file of a file not listed")
    ctx.err(ctx.req({"cmd": "model_files"}), "bad_header", "model_files without version")


@check("basic_unknown_command")
def basic_unknown_command(ctx):
    # §4: "`unknown_command` | `cmd` is not a command of this version"
    # §7: → {"cmd":"fly","id":9}  ← {"error":{"code":"unknown_command",...},"id":9,"ok":false}
    r = ctx.req({"cmd": "fly", "id": 9})
    ctx.err(r, "unknown_command", "cmd fly", need_id=True)


@check("basic_malformed_json")
def basic_malformed_json(ctx):
    # §4: "`bad_header` | header not a JSON object, `cmd` missing, a field of the wrong type or
    # value". §2: "`id` is absent only when the request had none, or frame 1 is not such an
    # object" (an id in these replies is not forbidden, but would be odd: a NOTE).
    for raw in (b'{"cmd": "status", "id": 1', b'[1, 2]', b'"status"', b'\xff\xfe{}', b'',
                b'{"cmd": "status", "id": 1} x', b'null'):
        r = ctx.client.request(raw)
        ctx.err(r, "bad_header", "header %r" % raw)
        if "id" in r.header:
            ctx.note("header %r is not a JSON object, yet the reply carries id %r"
                     % (raw, r.header["id"]))


@check("basic_bad_header_fields")
def basic_bad_header_fields(ctx):
    # §4: "`bad_header` | ... `cmd` missing, a field of the wrong type or value"
    # §2: "`"cmd"` (string, required)"; §3 get: "`"ids": [u64, …]`"; §3 knn: "`"k"` (1–1000)"
    cases = [({"id": "bh-1"}, "cmd missing"),
             ({"cmd": 5, "id": "bh-2"}, "cmd not a string"),
             ({"cmd": "get", "ids": "7", "id": "bh-3"}, "ids a string"),
             ({"cmd": "get", "ids": [-1], "id": "bh-4"}, "negative id"),
             ({"cmd": "export", "after": "zero", "limit": 10, "id": "bh-5"}, "after a string")]
    for header, what in cases:
        ctx.err(ctx.req(header), "bad_header", what)


@check("basic_unknown_fields_ignored")
def basic_unknown_fields_ignored(ctx):
    # §2: "**Unknown fields are ignored**, so clients may add tracing or future fields freely."
    ctx.ok(ctx.req({"cmd": "status", "trace": {"span": "abc"}, "future_field": [1, 2]}),
           "status with unknown fields")
    ctx.ok(ctx.req({"cmd": "model", "x_debug": None}), "model with an unknown field")


@check("basic_id_echo")
def basic_id_echo(ctx):
    # §2: "`"id"` (integer or string, optional, echoed in the reply)"; "`id` is absent only when
    # the request had none, or frame 1 is not such an object"
    for rid in (42, "s-1", 0, "ünïcode-id"):
        r = ctx.req({"cmd": "status", "id": rid})
        ctx.ok(r, "status id %r" % (rid,))
        if type(r.header.get("id")) is not type(rid):
            raise Fail("id %r echoed as %r (type changed)" % (rid, r.header.get("id")))
    r = ctx.client.request({"cmd": "status"})
    ctx.ok(r, "status without id")
    if "id" in r.header:
        raise Fail("request had no id, reply carries id %r (§2: absent)" % r.header["id"])


@check("basic_bad_frames")
def basic_bad_frames(ctx):
    # §4: "`bad_frames` | wrong number of frames for the command, or a frame where none belongs"
    # §2: "Each image frame has a descriptor in the header, in the same order."
    img = png(8, 8)
    ctx.err(ctx.req({"cmd": "status"}, [b"stray"]), "bad_frames", "status + a frame")
    ctx.err(ctx.req({"cmd": "ingest", "images": [{}]}), "bad_frames",
            "ingest: 1 descriptor, no frame")
    ctx.err(ctx.req({"cmd": "ingest", "images": [{}]}, [img, img]), "bad_frames",
            "ingest: 1 descriptor, 2 frames")
    ctx.err(ctx.req({"cmd": "embed", "images": [{}, {}]}, [img]), "bad_frames",
            "embed: 2 descriptors, 1 frame")
    ctx.err(ctx.req({"cmd": "get", "ids": [1]}, [b"x"]), "bad_frames", "get + a frame")


@check("basic_dealer")
def basic_dealer(ctx):
    # §1: "DEALER clients may have several requests in flight and match replies by the request
    # `id`." "The server keeps the routing envelope ... so both kinds of client are served"
    # §7: "A DEALER client's view" has no empty delimiter frame.
    c = Client(ctx.zctx, ctx.args.endpoint, ctx.args.timeout, kind=zmq.DEALER)
    try:
        ids = {"dl-%d-%d" % (os.getpid(), i): cmd for i, cmd in
               enumerate(("status", "model", "last_announcement", "status"))}
        for rid, cmd in ids.items():
            c.sock.send_multipart([VERSION, dumps({"cmd": cmd, "id": rid})])
        got = {}
        deadline = time.monotonic() + ctx.args.timeout
        while len(got) < len(ids):
            left = deadline - time.monotonic()
            if left <= 0 or not c.sock.poll(int(left * 1000) + 1):
                raise Fail("DEALER: %d of %d replies within %.0f s"
                           % (len(got), len(ids), ctx.args.timeout))
            r = Reply(c.sock.recv_multipart(), None)  # checks frame 0 is glfd/1 (no delimiter)
            rid = r.header.get("id")
            if rid not in ids or rid in got:
                raise Fail("DEALER: unexpected reply id %r" % rid)
            got[rid] = r
        for rid, r in got.items():
            r.sent_id = rid
            ctx.ok(r, "DEALER %s" % ids[rid])
    finally:
        c.close()


@check("a4_non_protocol_frame")
def a4_non_protocol_frame(ctx):
    # §2: "A server answers a version it does not speak with `unsupported_version` (in the
    # version it does speak)."  §4: "`unsupported_version` | frame 0 is not `glfd/1`"
    # §7: "→ HTTP/1.1 …  (anything not starting with glfd/1)
    #      ← glfd/1  {"error":{"code":"unsupported_version",...},"ok":false}"
    # §2: "`id` is absent only when the request had none, or frame 1 is not such an object."
    for kind, label in ((zmq.REQ, "REQ"), (zmq.DEALER, "DEALER")):
        c = Client(ctx.zctx, ctx.args.endpoint, ctx.args.timeout, kind=kind)
        try:
            r = c.request(None, raw=[b"HTTP/1.1 GET /"])  # Reply() checks frame 0 is glfd/1
        except Timeout:
            raise Fail("%s: no reply to the single frame b'HTTP/1.1 GET /'" % label)
        finally:
            c.close()
        ctx.err(r, "unsupported_version", "%s: single frame b'HTTP/1.1 GET /'" % label)
        if "id" in r.header:
            raise Fail("%s: reply carries id %r though there was no header" % (label, r.header["id"]))
        if r.payload:
            raise Fail("%s: error reply has %d payload frame(s)" % (label, len(r.payload)))


MISSING_ID = 2 ** 52 + 12345  # below 2^53, far beyond any real store


@check("basic_ingest_get")
def basic_ingest_get(ctx):
    # §3 ingest: "Result: {"ids": [u64, …]}, one id per image in request order." "Ids are
    # 64-bit, start at 1, increase with commit order and are never reused." "the ids of one
    # request are consecutive, in image order."
    # §3 get: "Result: {"items": [item or null, …]} in request order, `null` where there is no
    # such item; item = {"id", "source", "meta", "width", "height", "format"
    # ("jpeg"|"png"|"raw"), "ingested_at" (seconds since 1970, UTC), "stored_side",
    # "stored_channels"} — width/height/format describe the image as it was sent. With
    # "pixels": true, one frame per found item: ... stored_side × stored_side ×
    # stored_channels bytes."  §2: "`meta` (≤ 64 KiB, kept verbatim)"
    meta = '{"label": "cat",  "ü": [1, 2.50]}\n\t'
    ids = ctx.ingest([({"source": "sc-cam", "meta": meta}, png(20, 12)),
                      (raw_desc(32, 32, 3, source="sc-raw"), raw_frame(32, 32, 3, True))])
    later = ctx.one_item()
    if ids[1] != ids[0] + 1 or not ids[1] < later or ids[0] < 1:
        raise Fail("ids of one request not consecutive from >= 1, or not increasing with "
                   "commit order: %r then %r" % (ids, later))
    r = ctx.req({"cmd": "get", "ids": [ids[0], MISSING_ID, ids[1]]})
    items = ctx.ok(r, "get").get("items")
    if not isinstance(items, list) or len(items) != 3:
        raise Fail("get of 3 ids returned items %r" % (items,))
    if r.payload:
        raise Fail("get without pixels returned %d frame(s)" % len(r.payload))
    if items[1] is not None:
        raise Fail("missing id %d gave %r, not null" % (MISSING_ID, items[1]))
    now = time.time()
    for it, want in ((items[0], dict(id=ids[0], source="sc-cam", meta=meta, width=20, height=12,
                                     format="png")),
                     (items[2], dict(id=ids[1], source="sc-raw", width=32, height=32,
                                     format="raw"))):
        if not isinstance(it, dict):
            raise Fail("stored item came back as %r" % (it,))
        for k, v in want.items():
            if it.get(k) != v:
                raise Fail("item %d: %s is %r, sent %r" % (want["id"], k, it.get(k), v))
        ts = it.get("ingested_at")
        if not _is_num(ts) or abs(ts - now) > 3600:
            raise Fail("item %d: ingested_at %r is not about now (%.0f)" % (want["id"], ts, now))
        for k in ("stored_side", "stored_channels"):
            if not isinstance(it.get(k), int) or it[k] <= 0:
                raise Fail("item %d: %s is %r" % (want["id"], k, it.get(k)))
    r = ctx.req({"cmd": "get", "ids": [ids[0], MISSING_ID, ids[1]], "pixels": True})
    ctx.ok(r, "get with pixels")
    if len(r.payload) != 2:
        raise Fail("get pixels of 2 found items + 1 missing gave %d frames" % len(r.payload))
    for f, it in zip(r.payload, (items[0], items[2])):
        if len(f) != it["stored_side"] ** 2 * it["stored_channels"]:
            raise Fail("pixel frame of %d bytes, stored_side %d, stored_channels %d"
                       % (len(f), it["stored_side"], it["stored_channels"]))


@check("basic_ingest_all_or_nothing")
def basic_ingest_all_or_nothing(ctx):
    # §3 ingest: "A request is all or nothing: if any image is bad, nothing is stored and the
    # error's `index` names the first bad image."  §2: "`index` is present only for errors
    # about one image of a request (0-based)."  §7: [{}, {}] ⟨JPEG⟩ ⟨"hello"⟩ → bad_image, index 1
    marker = "sc-aon-%d-%d" % (os.getpid(), time.time_ns())
    before = ctx.one_item()
    r = ctx.req({"cmd": "ingest", "images": [{"source": marker}, {}, {}]},
                [png(8, 8), b"hello", b"world"])
    e = ctx.err(r, "bad_image", "ingest [png, 'hello', 'world']")
    if e.get("index") != 1:
        raise Fail("bad_image index is %r, the first bad image is 1" % e.get("index"))
    e = ctx.err(ctx.req({"cmd": "ingest", "images": [raw_desc(4, 4, 3)]}, [bytes(47)]),
                "bad_image", "raw 4x4x3 with 47 bytes")
    if e.get("index") != 0:
        raise Fail("bad_image index for the only image is %r, not 0" % e.get("index"))
    after = ctx.one_item()
    span = list(range(before + 1, after))
    if len(span) > 10000:  # §6: ids per get 10,000
        raise Note("too many concurrent ingests to look for a half-stored request")
    items = ctx.ok(ctx.req({"cmd": "get", "ids": span}), "get").get("items") if span else []
    for it in items or []:
        if isinstance(it, dict) and it.get("source") == marker:
            raise Fail("item %r of the refused request was stored" % it.get("id"))


@check("basic_embed")
def basic_embed(ctx):
    # §3 embed: "Result: {"version": int, "dim": int} + one vector frame per image. The same
    # image embedded twice under one version gives the same vector up to float32 rounding (each
    # component within 1e-6 ...)."
    # §2: "Vectors ... little-endian IEEE-754 float32, `dim` values ... Embeddings are
    # L2-normalised."
    p = png(24, 24)
    r = ctx.req({"cmd": "embed", "images": [{}, {}]}, [p, p])
    ctx.need_catalog(r, "embed")
    res = ctx.ok(r, "embed of two images")
    dim, ver = res.get("dim"), res.get("version")
    if not isinstance(dim, int) or dim <= 0 or not isinstance(ver, int) or ver < 1:
        raise Fail("embed result %r" % res)
    if len(r.payload) != 2 or any(len(f) != 4 * dim for f in r.payload):
        raise Fail("embed of 2 images: frames of %r bytes, dim %d" % ([len(f) for f in r.payload], dim))
    for f in r.payload:
        if abs(norm(f32_unpack(f)) - 1) > 1e-3:
            raise Fail("embedding norm %.6f, not 1" % norm(f32_unpack(f)))
    diff = lambda f, g: max(abs(a - b) for a, b in zip(f32_unpack(f), f32_unpack(g)))
    if diff(r.payload[0], r.payload[1]) > 1e-6:
        raise Fail("the same image twice in one request gave vectors %.3g apart (at most 1e-6)"
                   % diff(r.payload[0], r.payload[1]))
    r2 = ctx.req({"cmd": "embed", "images": [{}]}, [p])
    res2 = ctx.ok(r2, "embed again")
    if res2.get("version") == ver and diff(r2.payload[0], r.payload[0]) > 1e-6:
        raise Fail("the same image under version %d gave a different vector (largest "
                   "difference %.3g)" % (ver, diff(r.payload[0], r2.payload[0])))
    e = ctx.err(ctx.req({"cmd": "embed", "images": [{}, {}]}, [p, b"hello"]), "bad_image",
                "embed [png, 'hello']")
    if e.get("index") != 1:
        raise Fail("bad_image index %r, expected 1" % e.get("index"))


@check("basic_delete")
def basic_delete(ctx):
    # §3 delete: "Result: {"deleted": [u64, …]}, the ids that existed (each once; ids that did
    # not exist are left out, without an error)." §3 get: "`null` where there is no such item"
    x = ctx.one_item()
    d = ctx.ok(ctx.req({"cmd": "delete", "ids": [x, MISSING_ID, x]}), "delete").get("deleted")
    if d != [x]:
        raise Fail("delete [%d, missing, %d] reported deleted %r, expected [%d]" % (x, x, d, x))
    items = ctx.ok(ctx.req({"cmd": "get", "ids": [x]}), "get").get("items")
    if items != [None]:
        raise Fail("deleted item still returned by get: %r" % (items,))
    d = ctx.ok(ctx.req({"cmd": "delete", "ids": [x]}), "delete again").get("deleted")
    if d != []:
        raise Fail("deleting an already deleted id reported %r" % (d,))


# ---------------------------------------------------------------- a1: image format field

@check("a1_format_auto")
def a1_format_auto(ctx):
    # §2: "JPEG or PNG, recognised by their signature (`format` `auto`, the default, or
    # `jpeg`/`png` to insist)". "An image descriptor: {"format": "auto"|"jpeg"|"png"|"raw", ...}
    # — every field optional except the raw ones for raw images"
    # So {"format": "auto"} must behave exactly like {} for ingest and embed.
    p = png(16, 16)
    r_omit = ctx.req({"cmd": "ingest", "images": [{}]}, [p])
    r_auto = ctx.req({"cmd": "ingest", "images": [{"format": "auto"}]}, [p])
    ctx.created.extend(ctx.ok(r_omit, "ingest of a PNG with format omitted").get("ids") or [])
    if not r_auto.ok:
        raise Fail("ingest with explicit \"format\": \"auto\" refused: %s (the same PNG with the "
                   "field omitted was accepted; §2 names auto as the default)" % r_auto.describe())
    ids = [r_omit.result["ids"][0], ctx.ok(r_auto, "ingest auto")["ids"][0]]
    ctx.created.append(ids[1])
    items = ctx.ok(ctx.req({"cmd": "get", "ids": ids}), "get").get("items") or []
    fmts = [it.get("format") if isinstance(it, dict) else it for it in items]
    if fmts != ["png", "png"]:
        raise Fail("get reports formats %r for a PNG sent with format omitted / auto" % fmts)
    e_omit = ctx.req({"cmd": "embed", "images": [{}]}, [p])
    e_auto = ctx.req({"cmd": "embed", "images": [{"format": "auto"}]}, [p])
    if not e_omit.ok and e_omit.code == "not_ready":
        ctx.note("embed not_ready (no model yet): only ingest was judged")
        return
    ctx.ok(e_omit, "embed with format omitted")
    if not e_auto.ok:
        raise Fail("embed with explicit \"format\": \"auto\" refused: %s (format omitted was "
                   "accepted)" % e_auto.describe())
    ctx.ok(e_auto, "embed with format auto")
    if e_auto.result.get("version") == e_omit.result.get("version") \
            and e_auto.payload != e_omit.payload:
        raise Fail("embed gave different vectors for format auto and format omitted")


@check("a1_format_explicit")
def a1_format_explicit(ctx):
    # §2: "`jpeg`/`png` to insist"; "`width`/`height` are ignored for JPEG and PNG (the image
    # says its size)". §3 get: "width/height/format describe the image as it was sent."
    p, j = png(16, 12), jpeg_grey(3, 2)
    ids = ctx.ingest([({"format": "png", "width": 5, "height": 7}, p),
                      ({"format": "jpeg"}, j), ({}, j)], "ingest of PNG + JPEG (explicit/auto)")
    items = ctx.ok(ctx.req({"cmd": "get", "ids": ids}), "get").get("items") or []
    got = [(it.get("format"), it.get("width"), it.get("height")) if isinstance(it, dict) else it
           for it in items]
    want = [("png", 16, 12), ("jpeg", 24, 16), ("jpeg", 24, 16)]
    if got != want:
        raise Fail("get reports (format, width, height) %r, sent %r" % (got, want))


# ---------------------------------------------------------------- a2: nullable fields

@check("a2_nulls_keys_present")
def a2_nulls_keys_present(ctx):
    # §2: "A result field typed `T|null` below is always present, as `null` when it has no
    # value." §3 model: "{"version": int, "path": string|null, "step": int, "published_at":
    # float|null}"; §3 last_announcement: "{"announcement": announcement or null}"
    m = ctx.ok(ctx.req({"cmd": "model"}), "model")
    bad = _model_problems(m)
    s = ctx.ok(ctx.req({"cmd": "status"}), "status")
    bad += _model_problems(s.get("model") if isinstance(s.get("model"), dict) else {},
                           "status.model")
    if bad:
        raise Fail("; ".join(bad))
    a = ctx.ok(ctx.req({"cmd": "last_announcement"}), "last_announcement")
    if "announcement" not in a:
        raise Fail("last_announcement result omits 'announcement': %r" % a)


@check("a2_nulls_get_missing")
def a2_nulls_get_missing(ctx):
    # §3 get: "{"items": [item or null, …]} in request order, `null` where there is no such
    # item" "Ids may repeat; each is answered where it stands."
    x = ctx.one_item()
    ids = [MISSING_ID, x, MISSING_ID + 1, x]
    r = ctx.req({"cmd": "get", "ids": ids, "pixels": True})
    items = ctx.ok(r, "get")["items"]
    if not isinstance(items, list) or len(items) != 4 or items[0] is not None \
            or items[2] is not None or not all(isinstance(items[i], dict)
                                               and items[i].get("id") == x for i in (1, 3)):
        raise Fail("get [missing, %d, missing, %d] gave %r; expected [null, item, null, item]"
                   % (x, x, items))
    if len(r.payload) != 2 or r.payload[0] != r.payload[1]:
        raise Fail("get with pixels of [missing, x, missing, x]: %d frame(s), not 2 equal ones"
                   % len(r.payload))


@check("a2_nulls_status_building")
def a2_nulls_status_building(ctx):
    # §3 status: "catalog": {"version": 3, "items": 50000, "building": null}; "`building` is set
    # from the moment a build is due ... until the build and its index are done, so `building:
    # null` with `items` equal to `store.items` means the catalog is complete and settled."
    seen = []
    for i in range(40):
        s = ctx.ok(ctx.req({"cmd": "status"}), "status")
        cat = s.get("catalog")
        if not isinstance(cat, dict) or "building" not in cat:
            raise Fail("status.catalog omits 'building' (null when idle): %r" % (cat,))
        if cat["building"] is None:
            return
        seen.append(cat["building"])
        time.sleep(0.5)
    raise Note("catalog was building throughout 20 s (building = %r); idle state not seen"
               % seen[-1])


def _settle(ctx, seconds=20.0):
    """Wait until status shows the catalog complete and settled (§3 status: "`building: null`
    with `items` equal to `store.items`"); a Note if it does not happen. Each round sends a knn
    (by the zero vector), since "a knn embeds up to 128 of them itself before answering"."""
    deadline = time.monotonic() + seconds
    dim = None
    while True:
        if dim is None:
            e = ctx.req({"cmd": "embed", "images": [{}]}, [png(8, 8)])
            dim = e.result.get("dim") if e.ok else None
        if dim:
            ctx.req({"cmd": "knn", "by": "vector", "dim": dim, "k": 1}, [bytes(4 * dim)])
        s = ctx.ok(ctx.req({"cmd": "status"}), "status")
        cat, store = s.get("catalog") or {}, s.get("store") or {}
        if cat.get("building") is None and cat.get("version", 0) >= 1 \
                and (cat.get("items") == store.get("items")
                     or (ctx.deleted and cat.get("items", 0) >= store.get("items", 0))):
            return s  # (silence 19: catalog.items may count deleted items)
        if time.monotonic() > deadline:
            raise Note("the catalog did not settle within %.0f s (catalog %r, store.items %r)"
                       % (seconds, cat, store.get("items")))
        time.sleep(0.2)


def _export_page(ctx, after, limit=None):
    """One export page, its shape checked against §3 export; returns (result, reply)."""
    # §3 export: "Result: {"version": int, "dim": int, "ids": [u64, …], "next_after": u64|null}
    # + one frame of ids.length × dim float32 (row i is the unit embedding of ids[i]; a frame
    # of 0 bytes for an empty page). Pages are in id order"; "(`after` default 0, exclusive:
    # the page holds ids > `after`; `limit` default 1024, 1–10,000)"
    h = {"cmd": "export"}
    if after is not None:
        h["after"] = after
    if limit is not None:
        h["limit"] = limit
    r = ctx.req(h)
    ctx.need_catalog(r, "export")
    after, limit = after or 0, limit or 1024
    res = ctx.ok(r, "export after=%d limit=%d" % (after, limit))
    for k in ("version", "dim", "ids", "next_after"):
        if k not in res:
            raise Fail("export result omits %r (present, null if need be): %r"
                       % (k, {a: b for a, b in res.items() if a != "ids"}))
    ids, dim = res["ids"], res["dim"]
    if not isinstance(ids, list) or len(ids) > limit or ids != sorted(set(ids)) \
            or any(not isinstance(i, int) or i <= after for i in ids):
        raise Fail("export after=%d limit=%d: ids not ascending, above after, at most limit: %r"
                   % (after, limit, ids[:20]))
    na = res["next_after"]
    if na is not None and (not isinstance(na, int) or na < after or (ids and na < ids[-1])):
        raise Fail("export after=%d: next_after %r does not move past the page (last id %r)"
                   % (after, na, ids[-1] if ids else None))
    if len(r.payload) != 1 or len(r.payload[0]) != 4 * dim * len(ids):
        raise Fail("export: %d frame(s) of %r bytes for %d ids × dim %r; §3: one frame of "
                   "ids.length × dim float32, 0 bytes for an empty page"
                   % (len(r.payload), [len(f) for f in r.payload], len(ids), dim))
    if ids:
        for row in range(min(len(ids), 8)):
            v = f32_unpack(r.payload[0][4 * dim * row:4 * dim * (row + 1)])
            if abs(norm(v) - 1) > 1e-3:
                raise Fail("export row of id %d has norm %.5f, not 1" % (ids[row], norm(v)))
    return res, r


@check("a2_nulls_export_empty_page")
def a2_nulls_export_empty_page(ctx):
    # §3 export: ""next_after": u64|null" ... "ask again with "after": next_after until it is
    # null"; "a frame of 0 bytes for an empty page" (checked by _export_page)
    res, r = _export_page(ctx, MISSING_ID, 10)
    if res["ids"]:
        raise Note("ids exist above %d; no empty page to look at" % MISSING_ID)
    if res["next_after"] is not None:
        raise Fail("empty page above every id has next_after %r, not null" % res["next_after"])


def _walk(ctx, after, limit, max_pages=2000):
    """Walk export pages from `after` until next_after is null (§3 export). Returns (ids,
    pages, version) or raises Note when a new version was published meanwhile."""
    out, pages, version, empties = [], 0, None, 0
    while True:
        res, _ = _export_page(ctx, after, limit)
        pages += 1
        if version is None:
            version = res["version"]
        elif res["version"] != version:
            raise Note("version changed %r -> %r during the walk" % (version, res["version"]))
        out.extend(res["ids"])
        empties += not res["ids"]
        if res["next_after"] is None:
            return out, pages, version, empties, res
        if pages >= max_pages:
            raise Fail("export walk from %d did not end within %d pages" % (after, max_pages))
        after = res["next_after"]


@check("a2_nulls_export_last_page")
def a2_nulls_export_last_page(ctx):
    # §3 export: "Pages are in id order; ask again with "after": next_after until it is null.
    # A page may hold fewer than `limit` ids, even none, with `next_after` not null"
    x = ctx.one_item()
    for attempt in range(3):
        try:
            ids, pages, _, empties, last = _walk(ctx, x - 1, 10000)
            break
        except Note:
            continue
    else:
        raise Note("a new version was published during each of 3 walks")
    if not ids or ids[0] != x:
        raise Fail("walk from after=%d did not start with our item %d: %r" % (x - 1, x, ids[:5]))
    if not last["ids"]:
        ctx.note("the walk ended on an empty page (next_after null) after %d page(s); spec "
                 "silent on whether the last non-empty page says null" % pages)


# ---------------------------------------------------------------- a5: knn by item

def _knn_item(ctx, item, exact, k=5, **extra):
    h = {"cmd": "knn", "by": "item", "item": item, "k": k, "exact": exact}
    h.update(extra)
    r = ctx.req(h)
    ctx.need_catalog(r, "knn by item")
    res = ctx.ok(r, "knn by item %d exact=%s %s" % (item, exact, extra or ""))
    nb = res.get("neighbours")
    if not isinstance(nb, list) or not isinstance(res.get("version"), int) \
            or not isinstance(res.get("exact"), bool):
        raise Fail("knn result %r lacks version/exact/neighbours" % (res,))
    # §3 knn: "Every answer says what it covered: `catalog_items`, the items it searched ...
    # and `store_items`, the items stored when it was answered"; "never with an empty list
    # while items are stored".
    cov = (res.get("catalog_items"), res.get("store_items"))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in cov):
        raise Fail("knn result %r lacks catalog_items/store_items (non-negative integers)" % (res,))
    if cov[1] > 0 and not nb and not extra:
        raise Fail("knn by item %d answered no neighbours while %d items are stored" % (item, cov[1]))
    if exact and res["exact"] is not True:
        # §3 knn: "`"exact"` (true: exact search over every item ...)"; "`exact` says how it
        # was answered"
        raise Fail("knn by item %d asked exact=true, answered exact=%r" % (item, res["exact"]))
    scores = [n.get("score") if isinstance(n, dict) else None for n in nb]
    if any(not _is_num(s) or s < -1.0001 or s > 1.0001 for s in scores) \
            or scores != sorted(scores, reverse=True) or len(nb) > k:
        raise Fail("knn by item %d: scores not in [-1, 1] nearest first (or > k): %r"
                   % (item, scores))
    ids = [n.get("id") for n in nb]
    if len(set(ids)) != len(ids):
        raise Fail("knn by item %d: an id comes back twice: %r" % (item, ids))
    return nb


@check("a5_item_first_with_duplicate")
def a5_item_first_with_duplicate(ctx):
    # §3 knn: "Knn by item excludes nothing: the item itself comes first, with score 1, even
    # when an exact duplicate scores as high". "`score` is the cosine similarity in [−1, 1]"
    # The same image bytes ingested twice in one request and once more: for each id, knn by
    # item must put that id first with score 1.
    p = png(32, 32)
    a, b = ctx.ingest([({}, p), ({}, p)], "ingest of one PNG twice")
    c = ctx.ingest([({}, p)], "ingest of the same PNG again")[0]
    for item in (a, b, c):
        for exact in (True, False):
            nb = _knn_item(ctx, item, exact)
            if not nb or nb[0].get("id") != item:
                raise Fail("knn by item %d (exact=%s; stored duplicates %s): first neighbour is "
                           "%r, not the item itself; neighbours %r"
                           % (item, exact, [i for i in (a, b, c) if i != item],
                              nb[0].get("id") if nb else None, nb))
            if abs(nb[0]["score"] - 1) > 1e-3:
                raise Fail("knn by item %d: the item itself scores %r, not 1"
                           % (item, nb[0]["score"]))
    ctx.err(ctx.req({"cmd": "knn", "by": "item", "item": MISSING_ID, "k": 5}), "not_found",
            "knn by a missing item")


@check("a5_duplicates_groups_copies")
def a5_duplicates_groups_copies(ctx):
    # §3 duplicates: "Two items are duplicates when their distance ... is at most `within` x the
    # catalog's spacing"; result {"version", "items", "store_items", "spacing", "within",
    # "max_distance", "groups_found", "groups": [{"ids", "weakest_link"}]}, "`ids` ascending",
    # "`max_distance` = `within` x `spacing` but at least 10^-5 (identical items are duplicates
    # even when copies make the spacing 0)";
    # errors "bad_header (`within` or `max_groups` out of range), too_large (`max_groups` above
    # 10,000)". The same PNG stored three times under its own source: its copies are identical
    # (distance 0), so they form one group, whatever the model.
    p = png(32, 32)
    source = "conformance-dup"
    ids = ctx.ingest([({"source": source}, p)] * 3, "ingest of one PNG three times")
    _wait_catalog(ctx)
    r = ctx.ok(ctx.req({"cmd": "duplicates", "source": source}), "duplicates of one source")
    for key in ("version", "items", "store_items", "spacing", "within", "max_distance", "groups_found", "groups"):
        if key not in r:
            raise Fail("duplicates: no %r in %r" % (key, r))
    if abs(r["max_distance"] - max(r["within"] * r["spacing"], 1e-5)) > 1e-9 or r["within"] != 0.15:
        raise Fail("duplicates: max_distance %r is not within %r x spacing %r (default within 0.15)"
                   % (r["max_distance"], r["within"], r["spacing"]))
    if r["items"] != 3 or r["groups_found"] != 1 or [g["ids"] for g in r["groups"]] != [sorted(ids)]:
        raise Fail("duplicates of three identical images of one source: %r (ids %r)" % (r, ids))
    if abs(r["groups"][0]["weakest_link"] - 1) > 1e-3:
        raise Fail("duplicates: identical images link at %r, not 1" % r["groups"][0]["weakest_link"])
    ctx.err(ctx.req({"cmd": "duplicates", "within": 0}), "bad_header", "duplicates with within 0")
    ctx.err(ctx.req({"cmd": "duplicates", "max_groups": 10001}), "too_large", "duplicates with max_groups 10001")


@check("a5_knn_time_filter")
def a5_knn_time_filter(ctx):
    # §3 knn: "`ingested_after` and `ingested_before` (only items ingested after / before these
    # times, seconds since the Unix epoch as `get`'s `ingested_at` gives them, both exclusive)";
    # "A window no item falls in answers an empty list; knn by an item outside the filter leaves
    # the item itself out too."
    a = ctx.ingest([({}, png(32, 32))], "first ingest")[0]
    time.sleep(0.05)
    b = ctx.ingest([({}, png(32, 32))], "second ingest")[0]
    _wait_catalog(ctx)
    got = ctx.ok(ctx.req({"cmd": "get", "ids": [a, b]}), "get of both")["items"]
    ta, tb = got[0]["ingested_at"], got[1]["ingested_at"]
    if not ta < tb:
        raise Fail("ingest times do not grow: %r then %r" % (ta, tb))
    for exact in (True, False):
        nb = _knn_item(ctx, a, exact, k=50, ingested_after=ta)
        ids = [n["id"] for n in nb]
        if a in ids or b not in ids:
            raise Fail("knn by item %d with ingested_after its own time (exact=%s): %r; want %d in, %d out" % (a, exact, ids, b, a))
        times = [i["ingested_at"] for i in ctx.ok(ctx.req({"cmd": "get", "ids": ids}), "get of the answers")["items"] if i]
        if any(t <= ta for t in times):
            raise Fail("knn with ingested_after %r answered items ingested at %r" % (ta, [t for t in times if t <= ta]))
    empty = _knn_item(ctx, a, True, ingested_after=tb + 3600)
    if empty:
        raise Fail("knn with a window in the future answered %r" % empty)


@check("a5_item_source_filter")
def a5_item_source_filter(ctx):
    # §3 knn: "the item itself comes first ... (unless a `source` filter excludes it: then only
    # items with that source come back)". "Fewer than `k` neighbours come back when fewer items
    # match."
    tag = "sc-flt-%d-%d" % (os.getpid(), time.time_ns())
    a, = ctx.ingest([({"source": tag + "-a"}, png(16, 16))], "ingest source a")
    b, c = ctx.ingest([({"source": tag + "-b"}, png(16, 16)), ({"source": tag + "-b"},
                                                                png(16, 16))], "ingest source b")
    for exact in (True, False):
        nb = _knn_item(ctx, a, exact, k=10, source=tag + "-a")
        if [n["id"] for n in nb] != [a]:
            raise Fail("knn by item %d, source = its own (1 item): %r, not just the item"
                       % (a, nb))
        nb = _knn_item(ctx, a, exact, k=10, source=tag + "-b")
        if sorted(n["id"] for n in nb) != [b, c]:
            raise Fail("knn by item %d (source a), filter source b: %r; only %d and %d carry "
                       "source b" % (a, nb, b, c))


# ---------------------------------------------------------------- b: ingest, get, delete

@check("b_delete_leaves_knn_at_once")
def b_delete_leaves_knn_at_once(ctx):
    # §3 knn: "Deleted items leave the answers at once." §3 delete: "Deleted items leave the
    # replay set, knn answers and export pages at once." §3 export: "items deleted since they
    # were embedded are left out"
    p = png(32, 32)
    x, y = ctx.ingest([({}, p), ({}, p)], "ingest of one PNG twice")
    _settle(ctx)
    nb = _knn_item(ctx, x, True, k=10)
    if x not in [n["id"] for n in nb]:
        raise Fail("knn by item %d does not hold the item before deletion: %r" % (x, nb))
    res, r = _export_page(ctx, x - 1, 2)
    if x not in res["ids"]:
        raise Fail("export from %d lacks the embedded item %d before deletion" % (x - 1, x))
    vec = r.payload[0][:4 * res["dim"]]
    d = ctx.ok(ctx.req({"cmd": "delete", "ids": [x]}), "delete").get("deleted")
    if d != [x]:
        raise Fail("delete [%d] reported %r" % (x, d))
    for exact in (True, False):
        for by in ("item", "vector", "image"):
            h = {"cmd": "knn", "k": 50, "exact": exact, "by": by}
            frames = []
            if by == "item":
                h["item"] = y
            elif by == "vector":
                h["dim"] = res["dim"]
                frames = [vec]
            else:
                h["image"] = {}
                frames = [p]
            nb = ctx.ok(ctx.req(h, frames), "knn by %s after delete" % by).get("neighbours")
            if x in [n.get("id") for n in nb]:
                raise Fail("right after delete, knn by %s (exact=%s) still answers the deleted "
                           "item %d: %r" % (by, exact, x, nb[:5]))
    ctx.err(ctx.req({"cmd": "knn", "by": "item", "item": x, "k": 5}), "not_found",
            "knn by the deleted item")
    res, _ = _export_page(ctx, x - 1, 2)
    if x in res["ids"]:
        raise Fail("right after delete, export still holds the deleted item %d" % x)


@check("b_delete_catalog_items")
def b_delete_catalog_items(ctx):
    # §3 status: "`catalog` is what knn and export answer from: ... and how many items it
    # holds"; "`building: null` with `items` equal to `store.items` means the catalog is
    # complete and settled"; §3 delete: "Deleted items leave the replay set, knn answers and
    # export pages at once." Whether catalog.items still counts a deleted item is not said
    # (silence 19): observed and reported as a NOTE.
    x = ctx.one_item()
    before = _settle(ctx)
    ctx.ok(ctx.req({"cmd": "delete", "ids": [x]}), "delete")
    after = ctx.ok(ctx.req({"cmd": "status"}), "status")
    cb, ca = before["catalog"]["items"], after["catalog"]["items"]
    sb, sa = before["store"]["items"], after["store"]["items"]
    if sa != sb - 1:
        raise Note("store.items went %d -> %d around one delete (something else changed)"
                   % (sb, sa))
    if ca != cb - 1:
        raise Note("after deleting one item of a settled catalog: store.items %d -> %d, "
                   "catalog.items %d -> %d (building %r): catalog.items counts the deleted item, "
                   "so 'items equal to store.items' no longer signals a settled catalog"
                   % (sb, sa, cb, ca, after["catalog"].get("building")))


@check("b_ingest_conversion")
def b_ingest_conversion(ctx):
    # §3 ingest: "Every image is converted to the store's colour mode (grey into RGB by
    # copying; colour into grey by BT.601 luma; alpha dropped, transparent PNG pixels on white)
    # and resized to the store's square side by stretching; `get` reports what was sent and
    # what is stored." §2: "channels ∈ {1, 3, 4}; rows top to bottom, channels interleaved,
    # alpha dropped". Uniform images stay uniform under any resize.
    w, h = 64, 16   # stretched, left half red, right half blue (no crop, no padding)
    half = (b"\xff\x00\x00" * (w // 2) + b"\x00\x00\xff" * (w // 2)) * h
    cases = [("grey PNG 77", {}, png(8, 8, 1, bytes([77]) * 64), (77, 77, 77)),
             ("RGB PNG (10,200,30)", {}, png(8, 8, 3, bytes([10, 200, 30]) * 64), (10, 200, 30)),
             ("RGBA PNG alpha 0", {}, png(8, 8, 4, bytes([10, 200, 30, 0]) * 64),
              (255, 255, 255)),
             ("raw RGBA alpha 0", raw_desc(8, 8, 4), bytes([10, 200, 30, 0]) * 64, (10, 200, 30)),
             ("raw grey 200", raw_desc(5, 9, 1), bytes([200]) * 45, (200, 200, 200)),
             ("halves 64x16", raw_desc(w, h, 3), half, None)]
    ids = ctx.ingest([(d, f) for _, d, f, _ in cases], "ingest of conversion probes")
    r = ctx.req({"cmd": "get", "ids": ids, "pixels": True})
    items = ctx.ok(r, "get with pixels")["items"]
    if len(r.payload) != len(ids):
        raise Fail("get with pixels of %d items gave %d frames" % (len(ids), len(r.payload)))
    side, ch = items[0]["stored_side"], items[0]["stored_channels"]
    if ch not in (1, 3):
        raise Fail("stored_channels %r (the store's colour mode: grey or RGB)" % ch)
    for (what, _, _, want), it, f in zip(cases, items, r.payload):
        if (it["stored_side"], it["stored_channels"]) != (side, ch) or len(f) != side * side * ch:
            raise Fail("%s: stored %r × %r × %r in %d bytes" % (what, it["stored_side"],
                                                               it["stored_side"],
                                                               it["stored_channels"], len(f)))
        if want is None:
            continue
        if ch == 1:
            want = (round(0.299 * want[0] + 0.587 * want[1] + 0.114 * want[2]),)
        px = {tuple(f[i:i + ch]) for i in range(0, len(f), ch)}
        if len(px) != 1 or any(abs(a - b) > 1 for a, b in zip(next(iter(px)), want)):
            raise Fail("%s: stored pixels %r, expected all %r" % (what, sorted(px)[:4], want))
    f = r.payload[-1]
    pix = lambda row, col: tuple(f[(row * side + col) * ch:(row * side + col) * ch + ch])
    red, blue = ((255, 0, 0), (0, 0, 255)) if ch == 3 else ((76,), (29,))
    for row in (0, side - 1):
        for col, want in ((0, red), (side // 4, red), (3 * side // 4, blue), (side - 1, blue)):
            if any(abs(a - b) > 2 for a, b in zip(pix(row, col), want)):
                raise Fail("64×16 halves image stretched to %d×%d: pixel (%d, %d) is %r, not "
                           "%r (stretched, not cropped or padded)"
                           % (side, side, row, col, pix(row, col), want))


# ---------------------------------------------------------------- a6: error ids
# §2: "An error reply carries the request's `id` whenever frame 1 is a JSON object of at most
# 4 MiB with a valid `id`, whatever else is wrong with the request (another version frame, a
# header or a request over its limit, a bad field); `id` is absent only when the request had
# none, or frame 1 is not such an object." (ctx.err enforces the echo for every probe.)

FRAME16 = None


def frame16():
    """One 16 MiB raw frame (2048 × 2048 × 4), shared by the big probes."""
    global FRAME16
    if FRAME16 is None:
        FRAME16 = bytes(16 * MIB)
    return FRAME16


def _expect_refusal(ctx, r, codes, what, need_id=True):
    """Like ctx.err, but an ok reply's ids are still recorded for cleanup."""
    if r.ok and isinstance(r.result, dict) and isinstance(r.result.get("ids"), list):
        ctx.created.extend(r.result["ids"])
    return ctx.err(r, codes, what, need_id=need_id)


def _request_of_size(total, rid):
    """An ingest whose frames (frame 0, header, payloads: §6 "whole request (all frames)") add up
    to exactly `total` bytes (64 MiB ± a little): three 16 MiB raw frames, a 16 MiB − 4 KiB grey
    raw frame, and a header padded to fill the rest."""
    descs = [raw_desc(2048, 2048, 4)] * 3 + [raw_desc(4096, 4095, 1)]
    frames = [frame16()] * 3 + [bytes(4096 * 4095)]
    hsize = total - len(VERSION) - sum(map(len, frames))
    header = padded_header(hsize, {"cmd": "ingest", "id": rid, "images": descs})
    return header, frames


@check("a6_id_unsupported_version")
def a6_id_unsupported_version(ctx):
    # §2: "A server answers a version it does not speak with `unsupported_version` (in the
    # version it does speak)"; the id rule above names "another version frame".
    for v in (b"glfd/2", b"HTTP/1.1 GET /"):
        r = ctx.client.request({"cmd": "status", "id": "a6-ver"}, version=v)
        ctx.err(r, "unsupported_version", "frame 0 %r with a valid header" % v)


@check("a6_id_header_over_limit")
def a6_id_header_over_limit(ctx):
    # §6: "header (frame 1) | 1 MiB | `too_large`"; the id rule names "a header ... over its
    # limit" and "frame 1 is a JSON object of at most 4 MiB".
    for size in (MIB + 1, 4 * MIB):
        r = ctx.client.request(padded_header(size, {"id": "a6-hdr-%d" % size, "cmd": "status"}),
                               timeout=ctx.args.big_timeout)
        ctx.err(r, "too_large", "a header of %d bytes" % size)
    r = ctx.client.request(padded_header(4 * MIB + 1, {"id": "a6-hdr-big", "cmd": "status"}),
                           timeout=ctx.args.big_timeout)
    ctx.err(r, "too_large", "a header of 4 MiB + 1 bytes", need_id=False)
    if "id" in r.header and r.header["id"] != "a6-hdr-big":
        raise Fail("too_large for a 4 MiB + 1 header carries a wrong id %r" % r.header["id"])


@check("a6_id_request_over_limit")
def a6_id_request_over_limit(ctx):
    # §6: "whole request (all frames) | 64 MiB (`server.max_message_bytes`) | `too_large`"; the
    # id rule names "a request over its limit". One byte over, counting every frame.
    header, frames = _request_of_size(64 * MIB + 1, "a6-req")
    r = ctx.client.request(header, frames, timeout=ctx.args.big_timeout)
    ctx.over_request = r
    _expect_refusal(ctx, r, "too_large", "an ingest of 64 MiB + 1 byte in all")


@check("a6_id_bad_field")
def a6_id_bad_field(ctx):
    # §4: "`bad_header` | header not a JSON object, `cmd` missing, a field of the wrong type or
    # value"; the id rule names "a bad field".
    ctx.err(ctx.req({"cmd": "knn", "id": "a6-bh", "by": "item", "item": 1, "k": "ten"}),
            "bad_header", "knn with k \"ten\"")
    ctx.err(ctx.req({"id": "a6-nocmd"}), "bad_header", "header without cmd")
    ctx.err(ctx.req({"cmd": 7, "id": -5}), "bad_header", "cmd a number")
    ctx.err(ctx.req({"cmd": "ingest", "id": 2 ** 63 - 1, "images": [raw_desc(32.5, 8, 1)]},
                    [bytes(256)]), "bad_header", "raw width 32.5")


@check("a6_id_other_errors")
def a6_id_other_errors(ctx):
    # Every other error code a client can provoke, each with an id to echo.
    ctx.err(ctx.req({"cmd": "status", "id": "a6-bf"}, [b"stray"]), "bad_frames",
            "status + a frame")
    ctx.err(ctx.req({"cmd": "ingest", "id": 77, "images": [{}]}), "bad_frames",
            "ingest without its frame")
    ctx.err(ctx.req({"cmd": "fly", "id": -77}), "unknown_command", "cmd fly")
    ctx.err(ctx.req({"cmd": "embed", "id": "a6-bi", "images": [{}]}, [b"hello"]), "bad_image",
            "embed of 'hello'")
    ctx.err(ctx.req({"cmd": "knn", "id": "a6-nf", "by": "item", "item": MISSING_ID}),
            "not_found", "knn by a missing item")
    ctx.err(ctx.req({"cmd": "knn", "id": "a6-k", "by": "item", "item": 1, "k": 1001}),
            "too_large", "k 1001")


@check("a6_id_types")
def a6_id_types(ctx):
    # §2: "Request `id`: an integer (−2⁶³ … 2⁶³−1) or a string, echoed as it came; `null` is the
    # same as no `id`. Any other type (a fraction, a bool, an object) makes the request
    # `bad_header`, and that reply has no `id`."
    for rid in (0, -1, 2 ** 63 - 1, -2 ** 63, "", "x" * 300, "ünïcode-id", "7"):
        r = ctx.client.request({"cmd": "status", "id": rid})
        ctx.ok(r, "status with id %r" % (rid,))
        got = r.header.get("id")
        if got != rid or type(got) is not type(rid):
            raise Fail("id %r (%s) echoed as %r (%s)" % (rid, type(rid).__name__, got,
                                                        type(got).__name__))
        r = ctx.client.request({"cmd": "fly", "id": rid})
        ctx.err(r, "unknown_command", "unknown command with id %r" % (rid,))
    for hdr in (b'{"cmd":"status","id":null}', b'{"cmd":"fly","id":null}'):
        r = ctx.client.request(hdr)
        if "id" in r.header:
            raise Fail("%s: the reply carries id %r; §2: null is the same as no id, and id is "
                       "absent only when the request had none" % (hdr.decode(), r.header["id"]))
    r = ctx.client.request(b'{"cmd":"status","id":null}')
    ctx.ok(r, "status with id null")
    for raw in (b'1.5', b'true', b'false', b'{"a":1}', b'[1]', b'-0.25'):
        for cmd in ("status", "fly"):
            r = ctx.client.request(b'{"cmd":"%s","id":%s}' % (cmd.encode(), raw))
            ctx.err(r, "bad_header", "%s with id %s" % (cmd, raw.decode()), need_id=False)
            if "id" in r.header:
                raise Fail("%s with id %s: the reply carries id %r; §2: that reply has no id"
                           % (cmd, raw.decode(), r.header["id"]))
    for raw in (b'9223372036854775808', b'-9223372036854775809', b'1.0', b'1e3'):
        r = ctx.client.request(b'{"cmd":"status","id":%s}' % raw)
        ctx.note("id %s (outside the stated integer range or integral float; spec silent): %s, "
                 "reply id %r" % (raw.decode(), r.describe(), r.header.get("id", "<absent>")))


# ---------------------------------------------------------------- a7: limits (§6)
# §6: "Sizes are in bytes, KiB = 1,024 bytes, MiB = 1,048,576; every limit is inclusive (a
# request at the limit is served). Each can be reached on its own: 10,000 ids of 20 digits, or
# a 64 KiB `meta` that JSON escapes byte by byte, fit the header."

@check("a7_limits_header")
def a7_limits_header(ctx):
    # §6: "header (frame 1) | 1 MiB | `too_large`"
    r = ctx.client.request(padded_header(MIB, {"cmd": "status", "id": "a7-h0"}))
    if not r.ok:
        raise Fail("a header of exactly 1 MiB was refused: %s" % r.describe())
    ctx.ok(r, "status with a 1 MiB header")
    r = ctx.client.request(padded_header(MIB + 1, {"cmd": "status", "id": "a7-h1"}))
    ctx.err(r, "too_large", "a header of 1 MiB + 1 bytes")


def _ingest_meta(ctx, meta, rid):
    h = {"cmd": "ingest", "id": rid, "images": [{"meta": meta}]}
    return ctx.req(h, [png(8, 8)]), len(dumps(h))


@check("a7_limits_meta")
def a7_limits_meta(ctx):
    # §2: "`meta` (≤ 64 KiB, kept verbatim)"; "Sizes of `source` and `meta` are UTF-8 bytes of
    # the decoded string; the metas of one request together must fit the header (1 MiB)."
    # §6: "meta | 64 KiB | `too_large`"; "a 64 KiB `meta` that JSON escapes byte by byte, fit
    # the header."
    cases = (("m" * (64 * KIB), "64 KiB of 'm'"), ("\x01" * (64 * KIB), "64 KiB of U+0001"),
             ("é" * (32 * KIB), "32 Ki × 'é' (64 KiB UTF-8)"))
    for meta, what in cases:
        r, hsize = _ingest_meta(ctx, meta, "a7-m0")
        x = ctx.ok(r, "meta %s (header %d bytes)" % (what, hsize))["ids"][0]
        ctx.created.append(x)
        it = ctx.ok(ctx.req({"cmd": "get", "ids": [x]}), "get")["items"][0]
        if not isinstance(it, dict) or it.get("meta") != meta:
            raise Fail("meta %s not kept verbatim" % what)
    for meta, what in (("m" * (64 * KIB + 1), "65,537 bytes"),
                       ("é" * (32 * KIB) + "a", "65,537 UTF-8 bytes, 32,769 chars")):
        r, _ = _ingest_meta(ctx, meta, "a7-m1")
        _expect_refusal(ctx, r, "too_large", "meta of %s" % what)
    # the metas of one request together must fit the header: 16 × 64 KiB do not, 15 do
    big = "m" * (64 * KIB)
    r = ctx.req({"cmd": "ingest", "images": [{"meta": big}] * 16}, [png(8, 8)] * 16)
    _expect_refusal(ctx, r, "too_large", "16 metas of 64 KiB (a header over 1 MiB)")
    ctx.ingest([({"meta": big}, png(8, 8))] * 15, "15 metas of 64 KiB (a header under 1 MiB)")


@check("a7_limits_source")
def a7_limits_source(ctx):
    # §2: "`source` (≤ 256 bytes)"; §6: "source | 256 bytes | `too_large`" (UTF-8 bytes)
    for src in ("s" * 256, "é" * 128):
        x = ctx.ingest([({"source": src}, png(8, 8))], "source of 256 bytes (%d chars)"
                       % len(src))[0]
        it = ctx.ok(ctx.req({"cmd": "get", "ids": [x]}), "get")["items"][0]
        if not isinstance(it, dict) or it.get("source") != src:
            raise Fail("source of 256 bytes not returned as sent: %r"
                       % (it.get("source") if isinstance(it, dict) else it))
    for src in ("s" * 257, "é" * 128 + "s"):
        r = ctx.req({"cmd": "ingest", "images": [{"source": src}]}, [png(8, 8)])
        _expect_refusal(ctx, r, "too_large", "source of %d bytes (%d chars)"
                        % (len(src.encode()), len(src)))


@check("a7_limits_images_per_request")
def a7_limits_images_per_request(ctx):
    # §6: "images per request | 256 | `too_large`"
    p = png(8, 8)
    ids = ctx.ingest([({}, p)] * 256, "ingest of 256 images")
    if ids != list(range(ids[0], ids[0] + 256)):
        raise Fail("256 images of one request got ids that are not consecutive: %r..." % ids[:4])
    r = ctx.req({"cmd": "ingest", "images": [{}] * 257}, [p] * 257)
    _expect_refusal(ctx, r, "too_large", "ingest of 257 images")
    e = ctx.req({"cmd": "embed", "images": [{}] * 256}, [p] * 256)
    ctx.ok(e, "embed of 256 images")
    if len(e.payload) != 256:
        raise Fail("embed of 256 images gave %d vectors" % len(e.payload))
    ctx.err(ctx.req({"cmd": "embed", "images": [{}] * 257}, [p] * 257), "too_large",
            "embed of 257 images")


@check("a7_limits_frame")
def a7_limits_frame(ctx):
    # §6: "one image frame | 16 MiB | `too_large`"; "any one frame | 17 MiB | none: ZeroMQ
    # closes the connection before the daemon sees the frame" (so up to 17 MiB reaches it)
    ctx.ingest([(raw_desc(2048, 2048, 4), frame16())], "a raw frame of exactly 16 MiB",
               timeout=ctx.args.big_timeout)
    for w, h in ((4097, 4096), (4352, 4096)):  # 16 MiB + 4 KiB, exactly 17 MiB
        r = ctx.req({"cmd": "ingest", "images": [raw_desc(w, h, 1)]}, [bytes(w * h)],
                    timeout=min(30.0, ctx.args.big_timeout))
        _expect_refusal(ctx, r, "too_large", "a raw frame of %d bytes (%d × %d)" % (w * h, w, h))


@check("a7_limits_frame_over_17mib")
def a7_limits_frame_over_17mib(ctx):
    # §6: "any one frame | 17 MiB | none: ZeroMQ closes the connection before the daemon sees
    # the frame (`ZMQ_MAXMSGSIZE`); replies still owed to it are lost, and a DEALER reconnects"
    c = Client(ctx.zctx, ctx.args.endpoint, ctx.args.timeout, kind=zmq.DEALER)
    try:
        c.sock.send_multipart([VERSION, dumps({"cmd": "ingest", "id": "a7-17",
                                               "images": [{}]}), bytes(17 * MIB + 1)])
        if c.sock.poll(5000):
            got = c.sock.recv_multipart()
            raise Fail("a frame of 17 MiB + 1 byte got a reply %r; §6: ZeroMQ closes the "
                       "connection before the daemon sees it" % got[1][:200])
        for attempt in range(5):  # the DEALER reconnects by itself
            c.sock.send_multipart([VERSION, dumps({"cmd": "status", "id": "a7-17-%d" % attempt})])
            if c.sock.poll(3000):
                r = Reply(c.sock.recv_multipart(), "a7-17-%d" % attempt)
                ctx.ok(r, "status on the same DEALER after the connection was closed")
                return
        raise Fail("the DEALER got no reply to status within 15 s after its connection was "
                   "closed for a 17 MiB + 1 frame (§6: a DEALER reconnects)")
    finally:
        c.close()


@check("a7_limits_request")
def a7_limits_request(ctx):
    # §6: "whole request (all frames) | 64 MiB (`server.max_message_bytes`) | `too_large`";
    # exactly 64 MiB counting frame 0, the header and every payload must be served.
    header, frames = _request_of_size(64 * MIB, "a7-req")
    r = ctx.client.request(header, frames, timeout=ctx.args.big_timeout)
    if not r.ok:
        raise Fail("an ingest of exactly 64 MiB in all (frame 0 + header + 4 frames) was "
                   "refused: %s (§6: every limit is inclusive)" % r.describe())
    ctx.created.extend(ctx.ok(r, "ingest of exactly 64 MiB").get("ids") or [])
    r = getattr(ctx, "over_request", None)
    if r is None:
        header, frames = _request_of_size(64 * MIB + 1, "a7-req1")
        r = ctx.client.request(header, frames, timeout=ctx.args.big_timeout)
    _expect_refusal(ctx, r, "too_large", "an ingest of 64 MiB + 1 byte in all")


@check("a7_limits_declared_side")
def a7_limits_declared_side(ctx):
    # §6: "declared image size | 40,000,000 pixels, 16,384 pixels a side | `bad_image`"
    # §4: "`bad_image` | ... or declares too many pixels"
    ctx.ingest([(raw_desc(16384, 1, 1), bytes(16384)), (raw_desc(1, 16384, 1), bytes(16384)),
                ({}, png_blank(16384, 1))], "images 16,384 pixels wide / high")
    for desc, frame, what in ((raw_desc(16385, 1, 1), bytes(16385), "raw 16,385 × 1"),
                              (raw_desc(1, 16385, 1), bytes(16385), "raw 1 × 16,385"),
                              ({}, png_blank(16385, 1), "PNG 16,385 × 1"),
                              ({}, png_blank(1, 16385), "PNG 1 × 16,385")):
        r = ctx.req({"cmd": "ingest", "images": [{}, desc]}, [png(8, 8), frame])
        e = _expect_refusal(ctx, r, "bad_image", what)
        if e.get("index") != 1:
            raise Fail("%s as image 1: bad_image index %r" % (what, e.get("index")))


@check("a7_limits_declared_pixels")
def a7_limits_declared_pixels(ctx):
    # §6: "declared image size | 40,000,000 pixels, ... | `bad_image`". A raw image of 40 Mpx
    # would exceed the 16 MiB frame limit, so the probes are PNGs of zeros.
    big = ctx.args.big_timeout
    ctx.ingest([({}, png_blank(8000, 5000))], "PNG of 8000 × 5000 = 40,000,000 pixels",
               timeout=big)
    r = ctx.req({"cmd": "ingest", "images": [{}]}, [png_blank(8000, 5001)], timeout=big)
    _expect_refusal(ctx, r, "bad_image", "PNG of 8000 × 5001 = 40,008,000 pixels")


@check("a7_limits_k")
def a7_limits_k(ctx):
    # §3 knn: "`"k"` (1–1000, default 10)"; §6: "`k` | 1–1,000 | `bad_header` below 1,
    # `too_large` above"
    x = ctx.one_item()
    r = ctx.req({"cmd": "knn", "by": "item", "item": x, "k": 1000})
    ctx.need_catalog(r, "knn k=1000")
    nb = ctx.ok(r, "knn k=1000").get("neighbours")
    if not isinstance(nb, list) or not 1 <= len(nb) <= 1000:
        raise Fail("knn k=1000 gave %r neighbours" % (len(nb) if isinstance(nb, list) else nb))
    nb = ctx.ok(ctx.req({"cmd": "knn", "by": "item", "item": x, "k": 1}), "knn k=1")["neighbours"]
    if [n.get("id") for n in nb] != [x]:
        raise Fail("knn by item %d with k=1 gave %r, not the item alone" % (x, nb))
    nb = ctx.ok(ctx.req({"cmd": "knn", "by": "item", "item": x}), "knn, k omitted")["neighbours"]
    total = ctx.ok(ctx.req({"cmd": "status"}), "status")["catalog"]["items"]
    if len(nb) != min(10, total) and total >= 10:
        raise Fail("knn with k omitted (default 10) gave %d neighbours, catalog holds %d"
                   % (len(nb), total))
    ctx.err(ctx.req({"cmd": "knn", "by": "item", "item": x, "k": 1001}), "too_large", "k=1001")
    for k in (0, -1):
        ctx.err(ctx.req({"cmd": "knn", "by": "item", "item": x, "k": k}), "bad_header",
                "k=%d" % k)


def _pixels_limit(ctx):
    x = ctx.one_item()
    it = ctx.ok(ctx.req({"cmd": "get", "ids": [x]}), "get")["items"][0]
    return x, (4 * MIB) // (it["stored_side"] ** 2 * it["stored_channels"]), it


@check("a7_limits_ids_get")
def a7_limits_ids_get(ctx):
    # §3 get: "(≤ 10,000 ids; ...)"; §6: "ids per get/delete | 10,000 | `too_large`"; "10,000
    # ids of 20 digits ... fit the header"; edges: "get of ids that do not exist, or ids above
    # 2⁵³ | `null` in their place"
    huge = [2 ** 64 - 1 - i for i in range(10000)]
    h = {"cmd": "get", "ids": huge}
    items = ctx.ok(ctx.req(h), "get of 10,000 ids of 20 digits").get("items")
    if items != [None] * 10000:
        raise Fail("get of 10,000 ids near 2^64 did not give 10,000 nulls: %r"
                   % ([i for i in items if i is not None][:3] if isinstance(items, list)
                      else items))
    ctx.err(ctx.req({"cmd": "get", "ids": huge + [1]}), "too_large", "get of 10,001 ids")
    x = ctx.one_item()
    ids = list(range(x, max(0, x - 10000), -1))
    real = len(ids)
    ids += [2 ** 53 + 1 + i for i in range(10000 - real)]
    items = ctx.ok(ctx.req({"cmd": "get", "ids": ids}), "get of 10,000 ids down from ours"
                   ).get("items")
    if not isinstance(items, list) or len(items) != 10000 or not isinstance(items[0], dict) \
            or items[0].get("id") != x or any(i is not None for i in items[real:]):
        raise Fail("get of 10,000 ids down from %d (then ids above 2^53): %r"
                   % (x, (items or [None])[:1]))


@check("a7_limits_ids_get_pixels")
def a7_limits_ids_get_pixels(ctx):
    # §3 get: "with `"pixels": true`, at most as many as 4 MiB of stored pixels hold: 1,365 ids
    # at the default 32 × 32 × 3, else `too_large` naming the number". §6: "ids per get with
    # pixels | 4 MiB of stored pixels (1,365 at 32 × 32 × 3) | `too_large`"
    x, n, it = _pixels_limit(ctx)
    if (it["stored_side"], it["stored_channels"]) == (32, 3) and n != 1365:
        raise Fail("internal: 4 MiB / 3072 is not 1,365")
    r = ctx.req({"cmd": "get", "ids": [x] * n, "pixels": True}, timeout=ctx.args.big_timeout)
    ctx.ok(r, "get with pixels of %d ids" % n)
    if len(r.payload) != n:
        raise Fail("get with pixels of %d found ids gave %d frames" % (n, len(r.payload)))
    e = ctx.err(ctx.req({"cmd": "get", "ids": [x] * (n + 1), "pixels": True}), "too_large",
                "get with pixels of %d ids" % (n + 1))
    msg = e.get("message", "")
    forms = lambda k: (str(k), "{:,}".format(k))
    if not any(f in msg for f in forms(n)):
        if any(f in msg for f in forms(n + 1)):
            ctx.note("too_large names the count asked (%d), not the number that fits (%d): %r"
                     % (n + 1, n, msg))
        else:
            raise Fail("too_large for %d ids with pixels does not name the number (%d): %r"
                       % (n + 1, n, msg))
    r = ctx.req({"cmd": "get", "ids": [MISSING_ID] * (n + 1), "pixels": True})
    ctx.err(r, "too_large", "get with pixels of %d missing ids" % (n + 1))
    ctx.ok(ctx.req({"cmd": "get", "ids": [x] * 10000}), "get without pixels of 10,000 ids")


@check("a7_limits_ids_delete")
def a7_limits_ids_delete(ctx):
    # §6: "ids per get/delete | 10,000 | `too_large`"; §3 delete: "the ids that existed (each
    # once; ids that did not exist are left out, without an error)". One of our own ids among
    # 20-digit ids, so nothing else can be deleted.
    x = ctx.one_item()
    huge = [2 ** 64 - 1 - i for i in range(9999)]
    r = ctx.req({"cmd": "delete", "ids": huge + [x, x]})
    ctx.err(r, "too_large", "delete of 10,001 ids")
    items = ctx.ok(ctx.req({"cmd": "get", "ids": [x]}), "get").get("items")
    if not items or not isinstance(items[0], dict):
        raise Fail("a delete refused as too_large deleted item %d anyway" % x)
    d = ctx.ok(ctx.req({"cmd": "delete", "ids": huge + [x]}), "delete of 10,000 ids").get("deleted")
    if d != [x]:
        raise Fail("delete of 9,999 absent 20-digit ids + %d reported deleted %r" % (x, d))


@check("a7_limits_dim")
def a7_limits_dim(ctx):
    # §3 knn: "`"vector"` (`"dim": d`, one vector frame; `d` must be the embedding dimension,
    # as `embed` and `export` report it, else `bad_header`)"; §6: "`dim` | 1–65,536 |
    # `bad_header` below 1 or missing, `too_large` above" (silence 1: 65,537 is both).
    e = ctx.req({"cmd": "embed", "images": [{}]}, [png(16, 16)])
    ctx.need_catalog(e, "embed")
    d = ctx.ok(e, "embed")["dim"]
    r = ctx.req({"cmd": "knn", "by": "vector", "dim": d, "k": 3}, [e.payload[0]])
    ctx.need_catalog(r, "knn by vector")
    ctx.ok(r, "knn by vector of the model's dim %d" % d)
    n = 65537
    ctx.err(ctx.req({"cmd": "knn", "by": "vector", "dim": n, "k": 3}, [bytes(4 * n)]),
            "too_large", "knn by vector, dim 65,537 (over the §6 limit)")
    n = 65536
    r = ctx.req({"cmd": "knn", "by": "vector", "dim": n, "k": 3}, [f32_pack([1.0] * n)])
    if d == n:
        ctx.ok(r, "knn by vector of the model's dim %d" % d)
    else:
        ctx.err(r, "bad_header", "knn by vector, dim 65,536 ≠ the model's %d" % d)
    ctx.err(ctx.req({"cmd": "knn", "by": "vector", "dim": 0, "k": 3}, [b""]), "bad_header",
            "knn by vector, dim 0")
    ctx.err(ctx.req({"cmd": "knn", "by": "vector", "k": 3}, [e.payload[0]]), "bad_header",
            "knn by vector, dim missing")


@check("a7_limits_export")
def a7_limits_export(ctx):
    # §3 export: "`limit` default 1024, 1–10,000"; §6: "export `limit` | 1–10,000 |
    # `bad_header` below 1, `too_large` above"
    _export_page(ctx, 0, 10000)
    _export_page(ctx, 0, 1)
    ctx.err(ctx.req({"cmd": "export", "after": 0, "limit": 10001}), "too_large",
            "export limit 10,001")
    for limit in (0, -3):
        ctx.err(ctx.req({"cmd": "export", "after": 0, "limit": limit}), "bad_header",
                "export limit %d" % limit)


@check("a7_limits_unread_replies")
def a7_limits_unread_replies(ctx):
    # §6: "replies queued for a client that does not read | 1,000 per connection
    # (`server.send_high_water_mark`) | none: later replies are dropped"; §1: "a client that
    # does not read its replies eventually has them dropped (ROUTER) rather than stalling the
    # daemon." (silence 10: the exact count is not observable from here)
    c = Client(ctx.zctx, ctx.args.endpoint, ctx.args.timeout, kind=zmq.DEALER,
               opts=((zmq.RCVHWM, 1), (zmq.SNDHWM, 0)))
    try:
        for i in range(1500):
            c.sock.send_multipart([VERSION, dumps({"cmd": "status", "id": i})])
        t0 = time.monotonic()
        ctx.ok(ctx.req({"cmd": "status"}), "status from another client meanwhile")
        if time.monotonic() - t0 > 5:
            raise Fail("another client waited %.1f s while one did not read 1,500 replies"
                       % (time.monotonic() - t0))
        got = 0
        while c.sock.poll(1000):
            c.sock.recv_multipart()
            got += 1
        ctx.note("a DEALER that sent 1,500 status requests without reading got %d replies "
                 "afterwards" % got)
    finally:
        c.close()


@check("a7_limits_inflight_ingests")
def a7_limits_inflight_ingests(ctx):
    # §6: "ingests in flight per connection | 8 (`server.max_inflight_ingests_per_client`) |
    # `busy`"; §3 ingest: "`busy` (too many of this client's ingests are in flight; retry after
    # a reply)"; "Requests in flight at once (a DEALER pipelining ingests) ... their ids follow
    # the order in which they were committed ...; the ids of one request are consecutive, in
    # image order." Limits are inclusive: the first 8 sent can never be busy.
    c = Client(ctx.zctx, ctx.args.endpoint, ctx.args.timeout, kind=zmq.DEALER)
    n, per = 24, 16
    try:
        for i in range(n):
            c.sock.send_multipart([VERSION, dumps({"cmd": "ingest", "id": i,
                                                   "images": [{}] * per})] + [png(16, 16)] * per)
        got = {}
        deadline = time.monotonic() + ctx.args.big_timeout
        while len(got) < n:
            if not c.sock.poll(int(max(0, deadline - time.monotonic()) * 1000) + 1):
                raise Fail("%d of %d pipelined ingests answered" % (len(got), n))
            r = Reply(c.sock.recv_multipart(), None)
            got[r.header.get("id")] = r
    finally:
        c.close()
    busy, ranges = [], []
    for i in range(n):
        r = got.get(i)
        if r is None:
            raise Fail("no reply with id %d among %r" % (i, sorted(got, key=str)))
        r.sent_id = i
        if not r.ok and r.code == "busy":
            ctx.err(r, "busy", "pipelined ingest %d" % i)
            busy.append(i)
            continue
        ids = ctx.ok(r, "pipelined ingest %d" % i).get("ids")
        ctx.created.extend(ids)
        if ids != list(range(ids[0], ids[0] + per)):
            raise Fail("ingest %d of a pipeline got ids that are not consecutive: %r" % (i, ids))
        ranges.append((ids[0], ids[-1]))
    if any(i < 8 for i in busy):
        raise Fail("busy for pipelined ingest(s) %r: at most 7 were ahead of them (limit 8, "
                   "inclusive)" % [i for i in busy if i < 8])
    ranges.sort()
    if any(a[1] >= b[0] for a, b in zip(ranges, ranges[1:])):
        raise Fail("id ranges of pipelined ingests overlap: %r" % ranges)
    ctx.note("%d of %d pipelined ingests answered busy" % (len(busy), n))


# ---------------------------------------------------------------- e: §6 "What happens at the edges"

def _raw_probe(ctx, frames, kind=None, strip_delimiter=False, what="probe"):
    """Send exactly `frames` on a fresh socket (a DEALER unless kind says otherwise)."""
    c = Client(ctx.zctx, ctx.args.endpoint, ctx.args.timeout,
               kind=zmq.DEALER if kind is None else kind)
    try:
        return c.request(None, raw=list(frames), strip_delimiter=strip_delimiter)
    except Timeout:
        raise Fail("%s: no reply within %.0f s" % (what, ctx.args.timeout))
    finally:
        c.close()


@check("e_not_glfd1")
def e_not_glfd1(ctx):
    # edges: "a message whose frame 0 is not `glfd/1` (an HTTP request, one stray frame) |
    # answered in `glfd/1` | `unsupported_version`"
    for frames, kind in (([b"hello"], None), ([b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"], None),
                         ([b"HTTP/1.1", b"Host: x"], None), ([b"glfd/0", b"{}"], None),
                         ([b"GLFD/1", b'{"cmd":"status"}'], None), ([b"x"], zmq.REQ)):
        r = _raw_probe(ctx, frames, kind, what="frames %r" % frames)
        ctx.err(r, "unsupported_version", "frames %r" % (frames,))
        if "id" in r.header:
            raise Fail("frames %r: the reply carries id %r without any id sent"
                       % (frames, r.header["id"]))


@check("e_empty_message")
def e_empty_message(ctx):
    # edges: "an empty message, or `glfd/1` alone | | `bad_frames`" (silence 2: a single empty
    # frame is also "one stray frame" whose frame 0 is not glfd/1)
    r = _raw_probe(ctx, [b""], strip_delimiter=True, what="one empty frame")
    e = ctx.err(r, ("bad_frames", "unsupported_version"), "a DEALER's single empty frame")
    ctx.note("a single empty frame got %s (an empty message → bad_frames, or a stray frame → "
             "unsupported_version)" % e["code"])


@check("e_version_alone")
def e_version_alone(ctx):
    # edges: "an empty message, or `glfd/1` alone | | `bad_frames`"
    for kind, label in ((zmq.REQ, "REQ"), (zmq.DEALER, "DEALER")):
        r = _raw_probe(ctx, [VERSION], kind, what="%s: glfd/1 alone" % label)
        ctx.err(r, "bad_frames", "%s: glfd/1 alone" % label)


@check("e_payload_frame_count")
def e_payload_frame_count(ctx):
    # edges: "more or fewer payload frames than the header describes | | `bad_frames`"
    # Probes use the model's dim and a stored item, so that no other rule applies.
    p = png(8, 8)
    d, v, _ = _model_dim(ctx)
    x = ctx.one_item()
    cases = [({"cmd": "ingest", "images": [{}]}, [], "ingest, 1 descriptor, 0 frames"),
             ({"cmd": "ingest", "images": [{}]}, [p, p], "ingest, 1 descriptor, 2 frames"),
             ({"cmd": "embed", "images": [{}, {}]}, [p], "embed, 2 descriptors, 1 frame"),
             ({"cmd": "embed", "images": [{}]}, [p, p, p], "embed, 1 descriptor, 3 frames"),
             ({"cmd": "knn", "by": "image", "image": {}}, [], "knn by image, no frame"),
             ({"cmd": "knn", "image": {}}, [p, p], "knn by image (default), 2 frames"),
             ({"cmd": "knn", "by": "item", "item": x}, [p], "knn by item + a frame"),
             ({"cmd": "knn", "by": "vector", "dim": d}, [], "knn by vector, no frame"),
             ({"cmd": "knn", "by": "vector", "dim": d}, [v, v], "knn by vector, 2 frames"),
             ({"cmd": "get", "ids": [1]}, [b"x"], "get + a frame"),
             ({"cmd": "delete", "ids": [MISSING_ID]}, [b"x"], "delete + a frame"),
             ({"cmd": "export"}, [b""], "export + an empty frame"),
             ({"cmd": "model"}, [b"x"], "model + a frame"),
             ({"cmd": "last_announcement"}, [b"x"], "last_announcement + a frame")]
    for h, frames, what in cases:
        _expect_refusal(ctx, ctx.req(h, frames), "bad_frames", what)


@check("e_raw_wrong_length")
def e_raw_wrong_length(ctx):
    # edges: "a raw frame whose length is not width × height × channels | the request is
    # refused, `index` names the image | `bad_image`"
    for n in (47, 49, 0):
        for cmd in ("ingest", "embed"):
            r = ctx.req({"cmd": cmd, "images": [{}, raw_desc(4, 4, 3)]}, [png(8, 8), bytes(n)])
            e = _expect_refusal(ctx, r, "bad_image", "%s: raw 4×4×3 in %d bytes" % (cmd, n))
            if e.get("index") != 1:
                raise Fail("%s: raw 4×4×3 in %d bytes as image 1: index %r"
                           % (cmd, n, e.get("index")))


@check("e_raw_descriptor_incomplete")
def e_raw_descriptor_incomplete(ctx):
    # edges: "a raw descriptor without `width`, `height` or `channels`, a side below 1,
    # channels not 1, 3 or 4 | refused, with `index` | `bad_header`"
    full = raw_desc(4, 4, 1)
    cases = []
    for k in ("width", "height", "channels"):
        d = dict(full)
        del d[k]
        cases.append((d, "without %s" % k))
    for k, v in (("width", 0), ("height", 0), ("width", -4), ("channels", 0), ("channels", 2),
                 ("channels", 5)):
        cases.append((dict(full, **{k: v}), "%s %d" % (k, v)))
    # The frame has the length the descriptor implies (0 bytes for a side below 1 or channels
    # 0), so that no other row ("a raw frame whose length is not width × height × channels")
    # applies. Every case is tried; the failures are reported together.
    bad = []
    for d, what in cases:
        n = max(0, d.get("width", 4)) * max(0, d.get("height", 4)) * max(0, d.get("channels", 1))
        for cmd in ("ingest", "embed"):
            r = ctx.req({"cmd": cmd, "images": [{}, d]}, [png(8, 8), bytes(n)])
            try:
                e = _expect_refusal(ctx, r, "bad_header", "%s: raw descriptor %s, %d-byte frame"
                                    % (cmd, what, n))
                if e.get("index") != 1:
                    bad.append("%s: raw descriptor %s as image 1: bad_header index %r"
                               % (cmd, what, e.get("index")))
            except Fail as f:
                bad.append(str(f))
    if bad:
        raise Fail("%d of %d probes: %s" % (len(bad), 2 * len(cases), "; ".join(bad)))


@check("e_raw_side_over")
def e_raw_side_over(ctx):
    # edges: "a raw side over 16,384 | refused, with `index` | `bad_image`"
    for cmd in ("ingest", "embed"):
        for d, n in ((raw_desc(16385, 2, 1), 32770), (raw_desc(2, 16385, 3), 98310)):
            r = ctx.req({"cmd": cmd, "images": [{}, d]}, [png(8, 8), bytes(n)])
            e = _expect_refusal(ctx, r, "bad_image", "%s: raw %d×%d" % (cmd, d["width"],
                                                                        d["height"]))
            if e.get("index") != 1:
                raise Fail("%s: raw side over 16,384 as image 1: index %r" % (cmd, e.get("index")))


@check("e_format_unknown")
def e_format_unknown(ctx):
    # edges: "`format` other than `auto`, `jpeg`, `png`, `raw` (case matters) | refused |
    # `bad_header`"; §2: "`format` values are lower case"
    for fmt in ("gif", "PNG", "Auto", "JPEG", "jpg", "", "RAW"):
        for cmd in ("ingest", "embed"):
            r = ctx.req({"cmd": cmd, "images": [{"format": fmt}]}, [png(8, 8)])
            _expect_refusal(ctx, r, "bad_header", "%s: format %r" % (cmd, fmt))
    r = ctx.req({"cmd": "knn", "by": "image", "image": {"format": "Png"}}, [png(8, 8)])
    ctx.err(r, "bad_header", "knn by image, format 'Png'")


@check("e_format_mismatch")
def e_format_mismatch(ctx):
    # edges: "`format` `jpeg` or `png` while the bytes are the other | refused, with `index` |
    # `bad_image`"
    for cmd in ("ingest", "embed"):
        for fmt, frame, what in (("jpeg", png(8, 8), "a PNG"), ("png", jpeg_grey(), "a JPEG")):
            r = ctx.req({"cmd": cmd, "images": [{}, {"format": fmt}]}, [png(8, 8), frame])
            e = _expect_refusal(ctx, r, "bad_image", "%s: %s sent with format %s"
                                % (cmd, what, fmt))
            if e.get("index") != 1:
                raise Fail("%s: %s with format %s as image 1: index %r"
                           % (cmd, what, fmt, e.get("index")))


@check("e_integer_not_integer")
def e_integer_not_integer(ctx):
    # edges: "a number where an integer belongs that is not one (`"width": 32.5`, an id of −1)
    # | refused; the message names the field | `bad_header`"
    x = ctx.one_item()
    cases = [({"cmd": "ingest", "images": [raw_desc(32.5, 2, 1)]}, [bytes(65)], "width"),
             ({"cmd": "embed", "images": [raw_desc(2, 2.5, 1)]}, [bytes(5)], "height"),
             ({"cmd": "ingest", "images": [raw_desc(2, 2, 1.5)]}, [bytes(6)], "channels"),
             ({"cmd": "get", "ids": [-1]}, [], "ids"),
             ({"cmd": "get", "ids": [x, 1.5]}, [], "ids"),
             ({"cmd": "delete", "ids": [-1]}, [], "ids"),
             ({"cmd": "knn", "by": "item", "item": -1}, [], "item"),
             ({"cmd": "knn", "by": "item", "item": x + 0.5}, [], "item"),
             ({"cmd": "knn", "by": "item", "item": x, "k": 10.5}, [], "k"),
             ({"cmd": "knn", "by": "vector", "dim": 2.5}, [bytes(10)], "dim"),
             ({"cmd": "export", "after": -1}, [], "after"),
             ({"cmd": "export", "after": 0.5}, [], "after"),
             ({"cmd": "export", "limit": 2.5}, [], "limit")]
    for h, frames, field in cases:
        e = _expect_refusal(ctx, ctx.req(h, frames), "bad_header",
                            "%s with a non-integer %s" % (h["cmd"], field))
        if not re.search(r"(?<![A-Za-z_])%s(?![A-Za-z_])" % re.escape(field), e["message"]):
            raise Fail("%s with a bad %s: the message %r does not name the field"
                       % (h["cmd"], field, e["message"]))
    items = ctx.ok(ctx.req({"cmd": "get", "ids": [x]}), "get").get("items")
    if not items or not isinstance(items[0], dict):
        raise Fail("item %d gone after refused requests" % x)


@check("e_images_missing_or_empty")
def e_images_missing_or_empty(ctx):
    # edges: "`images` missing or empty (ingest, embed) | refused | `bad_header`"
    for cmd in ("ingest", "embed"):
        for extra, what in (({}, "images missing"), ({"images": []}, "images []")):
            h = {"cmd": cmd}
            h.update(extra)
            _expect_refusal(ctx, ctx.req(h), "bad_header", "%s with %s" % (cmd, what))


def _model_dim(ctx):
    e = ctx.req({"cmd": "embed", "images": [{}]}, [png(16, 16)])
    ctx.need_catalog(e, "embed")
    res = ctx.ok(e, "embed")
    return res["dim"], e.payload[0], res["version"]


@check("e_knn_vector_frame_length")
def e_knn_vector_frame_length(ctx):
    # edges: "knn by vector: a frame that is not 4 × `dim` bytes | refused | `bad_frames`"
    d, v, _ = _model_dim(ctx)
    for frame in (v[:-4], v + bytes(4), v[:-1], b""):
        r = ctx.req({"cmd": "knn", "by": "vector", "dim": d, "k": 3}, [frame])
        ctx.need_catalog(r, "knn by vector")
        ctx.err(r, "bad_frames", "knn by vector, dim %d, frame of %d bytes" % (d, len(frame)))


@check("e_knn_vector_bad_dim_or_values")
def e_knn_vector_bad_dim_or_values(ctx):
    # edges: "knn by vector: `dim` that is not the model's embedding dimension; a NaN or
    # infinity | refused | `bad_header`"
    d, v, _ = _model_dim(ctx)
    for n in (d - 1, d + 1, 1):
        r = ctx.req({"cmd": "knn", "by": "vector", "dim": n, "k": 3}, [f32_pack([0.5] * n)])
        ctx.need_catalog(r, "knn by vector")
        ctx.err(r, "bad_header", "knn by vector of dim %d (model's %d)" % (n, d))
    for bad in (float("nan"), float("inf"), float("-inf")):
        vec = f32_unpack(v)
        vec[d // 2] = bad
        r = ctx.req({"cmd": "knn", "by": "vector", "dim": d, "k": 3}, [f32_pack(vec)])
        ctx.err(r, "bad_header", "knn by vector holding %r" % bad)


@check("e_knn_zero_vector")
def e_knn_zero_vector(ctx):
    # edges: "knn by the zero vector | every score 0 | —"; §3 knn: "the zero vector scores 0
    # against everything (no error)."
    ctx.one_item()
    d, _, _ = _model_dim(ctx)
    for exact in (True, False):
        r = ctx.req({"cmd": "knn", "by": "vector", "dim": d, "k": 20, "exact": exact},
                    [bytes(4 * d)])
        nb = ctx.ok(r, "knn by the zero vector exact=%s" % exact).get("neighbours")
        if not nb or any(not _is_num(n.get("score")) or abs(n["score"]) > 1e-6 for n in nb):
            raise Fail("knn by the zero vector (exact=%s): %r; every score must be 0"
                       % (exact, (nb or [])[:5]))
    r = ctx.req({"cmd": "knn", "by": "vector", "dim": d, "k": 3}, [f32_pack([-0.0] * d)])
    ctx.ok(r, "knn by the negative-zero vector")


@check("e_knn_vector_normalised")
def e_knn_vector_normalised(ctx):
    # §3 knn: "The query vector is normalised"; "`score` is the cosine similarity"
    ctx.one_item()
    d, v, _ = _model_dim(ctx)
    out = []
    for scale in (1.0, 3.5, 0.01):
        vec = f32_pack([scale * a for a in f32_unpack(v)])
        res = ctx.ok(ctx.req({"cmd": "knn", "by": "vector", "dim": d, "k": 10, "exact": True},
                             [vec]), "knn by vector × %g" % scale)
        if res.get("exact") is not True:
            raise Fail("knn asked exact=true answered exact=%r" % res.get("exact"))
        out.append((res["version"], [(n["id"], n["score"]) for n in res["neighbours"]]))
    if len({o[0] for o in out}) != 1:
        raise Note("a new version was published between the queries")
    base = out[0][1]
    for (_, nb), scale in zip(out[1:], (3.5, 0.01)):
        if len(nb) != len(base) or any(abs(a[1] - b[1]) > 1e-4 for a, b in zip(nb, base)):
            raise Fail("knn by the same vector × %g gave %r, × 1 gave %r" % (scale, nb[:3],
                                                                              base[:3]))


@check("e_k_above_matches")
def e_k_above_matches(ctx):
    # edges: "`k` above the number of matching items | all of them | —"; §3 knn: "Fewer than
    # `k` neighbours come back when fewer items match."
    tag = "sc-k-%d-%d" % (os.getpid(), time.time_ns())
    _settle(ctx)  # after a burst, a backlog is left out of answers until embedded (§3 knn)
    ids = ctx.ingest([({"source": tag}, png(16, 16)) for _ in range(3)], "ingest of 3 tagged")
    d, v, _ = _model_dim(ctx)
    for exact in (True, False):
        for h, frames in (({"by": "vector", "dim": d}, [v]), ({"by": "image", "image": {}},
                                                              [png(16, 16)]),
                          ({"by": "item", "item": ids[1]}, [])):
            h = dict(h, cmd="knn", k=1000, source=tag, exact=exact)
            nb = ctx.ok(ctx.req(h, frames), "knn %s source=tag" % h["by"]).get("neighbours")
            if sorted(n.get("id") for n in nb) != ids:
                raise Fail("knn by %s (exact=%s), k=1000, source of 3 items: %r, not all 3 %r"
                           % (h["by"], exact, [n.get("id") for n in nb], ids))


@check("e_get_missing_or_huge_ids")
def e_get_missing_or_huge_ids(ctx):
    # edges: "get of ids that do not exist, or ids above 2⁵³ | `null` in their place (ids count
    # up from 1) | —"
    ids = [MISSING_ID, 2 ** 53 + 1, 2 ** 63 + 5, 2 ** 64 - 1, 0]
    r = ctx.req({"cmd": "get", "ids": ids, "pixels": True})
    items = ctx.ok(r, "get of missing / huge ids").get("items")
    if items != [None] * len(ids) or r.payload:
        raise Fail("get %r: items %r with %d frame(s); want all null, no frame"
                   % (ids, items, len(r.payload)))


@check("e_delete_missing")
def e_delete_missing(ctx):
    # edges: "delete of ids that do not exist | left out of `deleted` | —"
    d = ctx.ok(ctx.req({"cmd": "delete", "ids": [MISSING_ID, MISSING_ID, 0]}),
               "delete of missing ids").get("deleted")
    if d != []:
        raise Fail("delete of ids that do not exist reported %r" % (d,))


@check("e_source_meta_on_embed_knn")
def e_source_meta_on_embed_knn(ctx):
    # edges: "`source` or `meta` on an embed or knn descriptor | size-checked, then ignored |
    # `too_large`"; §2: "(checked, then ignored, by embed and knn)"
    p = png(16, 16)
    tag = "sc-ign-%d-%d" % (os.getpid(), time.time_ns())
    ctx.ingest([({"source": tag + "-stored"}, p)], "ingest")[0]
    long_src, long_meta = "s" * 257, "m" * (64 * KIB + 1)
    for cmd, h in (("embed", {"images": [{"source": long_src}]}),
                   ("embed", {"images": [{"meta": long_meta}]}),
                   ("knn", {"image": {"source": long_src}}),
                   ("knn", {"image": {"meta": long_meta}})):
        desc = h["image"] if cmd == "knn" else h["images"][0]
        ctx.err(ctx.req(dict(h, cmd=cmd), [p]), "too_large", "%s with a descriptor %s over its "
                "limit" % (cmd, list(desc)[0]))
    a = ctx.req({"cmd": "embed", "images": [{}]}, [p])
    b = ctx.req({"cmd": "embed", "images": [{"source": "s" * 256, "meta": "m" * 64 * KIB}]}, [p])
    ra, rb = ctx.ok(a, "embed"), ctx.ok(b, "embed with source and meta")
    if ra["version"] == rb["version"] and a.payload != b.payload:
        raise Fail("embed with source/meta in the descriptor gave another vector")
    r = ctx.req({"cmd": "knn", "by": "image", "image": {"source": "no-such-source-" + tag},
                 "k": 5, "exact": True}, [p])
    nb = ctx.ok(r, "knn by image with a descriptor source").get("neighbours")
    if not nb:
        raise Fail("knn by image whose descriptor carries a source no item has: %r (the "
                   "descriptor's source must be ignored, not used as a filter)" % (nb,))


@check("e_internal_not_provokable")
def e_internal_not_provokable(ctx):
    # edges: "a stored record that cannot be read, or a failure of LMDB | nothing is applied |
    # `internal`"
    raise Note("a client of a healthy daemon cannot provoke `internal` (silence 12)")


# ---------------------------------------------------------------- export (§3)

@check("export_defaults_and_after")
def export_defaults_and_after(ctx):
    # §3 export: "(`after` default 0, exclusive: the page holds ids > `after`; `limit` default
    # 1024, 1–10,000)"
    x = ctx.one_item()
    res, _ = _export_page(ctx, None, None)   # no after, no limit
    if len(res["ids"]) > 1024:
        raise Fail("export with limit omitted gave %d ids (default 1024)" % len(res["ids"]))
    res, _ = _export_page(ctx, x - 1, 1)
    if res["ids"] != [x]:
        raise Fail("export after=%d limit=1 gave %r, not [%d] (our item, just stored)"
                   % (x - 1, res["ids"], x))
    res, _ = _export_page(ctx, x, 5)
    if x in res["ids"]:
        raise Fail("export after=%d holds %d: after is exclusive" % (x, x))


@check("export_row_is_embedding")
def export_row_is_embedding(ctx):
    # §3 export: "row i is the unit embedding of `ids[i]`"; §3 embed: "The same image embedded
    # twice under one version gives the same vector." A raw image already at the stored size
    # and channels is stored as it is, so its export row and its embedding agree.
    _, _, it = _pixels_limit(ctx)
    _settle(ctx)  # after a burst, a backlog is left out of knn answers until embedded
    side, ch = it["stored_side"], it["stored_channels"]
    d, frame = raw_desc(side, side, ch), os.urandom(side * side * ch)
    x = ctx.ingest([(d, frame)], "ingest of a raw image at the stored size")[0]
    e = ctx.req({"cmd": "embed", "images": [d]}, [frame])
    er = ctx.ok(e, "embed of the same raw image")
    res, r = _export_page(ctx, x - 1, 1)
    if res["ids"] != [x]:
        raise Fail("export after=%d limit=1 gave %r" % (x - 1, res["ids"]))
    if res["version"] != er["version"]:
        raise Note("embed (version %d) and export (version %d) differ" % (er["version"],
                                                                          res["version"]))
    a, b = f32_unpack(r.payload[0]), f32_unpack(e.payload[0])
    cos = sum(p * q for p, q in zip(a, b))
    if cos < 0.999:
        raise Fail("export row of item %d and embed of the same pixels have cosine %.5f under "
                   "version %d" % (x, cos, res["version"]))
    nb = ctx.ok(ctx.req({"cmd": "knn", "by": "vector", "dim": res["dim"], "k": 1,
                         "exact": True}, [e.payload[0]]), "knn by that vector")["neighbours"]
    if not nb or abs(nb[0]["score"] - 1) > 1e-3:
        raise Fail("knn by the embedding of a stored item: %r (score 1 expected first)" % nb)


def _stored_ids(ctx, top):
    """Every stored id in 1..top, by get (10,000 ids a request)."""
    out = set()
    for lo in range(1, top + 1, 10000):
        ids = list(range(lo, min(top, lo + 9999) + 1))
        items = ctx.ok(ctx.req({"cmd": "get", "ids": ids}), "get").get("items")
        out.update(i for i, it in zip(ids, items) if it is not None)
    return out


def _walk_covers(ctx, limit, what, deleted=()):
    for attempt in range(3):
        top = ctx.one_item()
        try:
            ids, pages, version, empties, _ = _walk(ctx, 0, limit)
        except Note:
            continue
        break
    else:
        raise Note("a new version was published during each of 3 walks")
    if len(ids) != len(set(ids)) or ids != sorted(ids):
        seen, dup = set(), set()
        for i in ids:
            (dup if i in seen else seen).add(i)
        dup = sorted(dup)[:10]
        raise Fail("%s: the walk returned ids out of order or twice (e.g. %r)" % (what, dup))
    if top > 200000:
        stored = set(i for i in ctx.created if i <= top) - set(deleted)
        missing = stored - set(ids)
        ctx.note("ids reach %d: only our own items were looked for" % top)
    else:
        stored = _stored_ids(ctx, top)
        missing = stored - set(ids)
        extra = {i for i in ids if i <= top} - stored
        if extra:
            raise Fail("%s: the walk holds %d id(s) that get answers null for (deleted or never "
                       "stored), e.g. %r" % (what, len(extra), sorted(extra)[:10]))
    if missing:
        raise Fail("%s: %d stored id(s) missing from a full export walk (limit %d, %d pages, "
                   "%d empty), e.g. %r" % (what, len(missing), limit, pages, empties,
                                           sorted(missing)[:10]))
    gone = set(deleted) & set(ids)
    if gone:
        raise Fail("%s: deleted ids %r still exported" % (what, sorted(gone)[:10]))
    return ids, pages, empties


@check("export_walk_covers_every_item")
def export_walk_covers_every_item(ctx):
    # §3 export: "Pages are in id order; ask again with `"after": next_after` until it is null.
    # A page may hold fewer than `limit` ids, even none, with `next_after` not null: items
    # deleted since they were embedded are left out, and items stored since the catalog was
    # built are embedded a slice (512) per page as the walk reaches them." §3 knn: "Knn by an
    # item of that backlog still answers, with the item itself first."
    _walk_covers(ctx, 100, "a walk of pages of 100")
    burst = []
    for _ in range(3):   # 750 items, a burst larger than 512
        burst += ctx.ingest([({}, png(8, 8)) for _ in range(250)], "burst ingest of 250")
    nb = _knn_item(ctx, burst[-1], False)
    if not nb or nb[0].get("id") != burst[-1]:
        raise Fail("knn by item %d of a backlog of 750: %r; the item itself must come first"
                   % (burst[-1], nb[:3]))
    ids, pages, empties = _walk_covers(ctx, 1000, "a walk right after a burst of 750 items")
    if not set(burst) <= set(ids):
        raise Fail("the walk right after the burst lacks burst ids")
    gone = burst[100:110]
    ctx.ok(ctx.req({"cmd": "delete", "ids": gone}), "delete of 10 burst items")
    _walk_covers(ctx, 10000, "a walk right after deleting 10 items", deleted=gone)


# ---------------------------------------------------------------- announcements (§5)

METHOD_TERMS = {"simclr": ["simclr.positive", "simclr.uniformity"], "byol": ["byol"],
                "barlow-twins": ["barlow.invariance", "barlow.redundancy"],
                "swav": ["swav"]}
ADC_TERMS = ["adc.dcm", "adc.lpm"]


def _expected_metric_keys(method):
    """§5: "The terms by method: simclr `simclr.positive`, `simclr.uniformity`; byol `byol`;
    barlow-twins `barlow.invariance`, `barlow.redundancy`; swav `swav`; with ADC also `adc.dcm`,
    `adc.lpm` (and `gradient_share.adc.dcm`, `gradient_share.adc.lpm`)." None if the method's
    spelling is not one of those (silence 13)."""
    parts = str(method).split("+")
    if parts[0] not in METHOD_TERMS or any(p != "adc" for p in parts[1:]):
        return None
    adc = "adc" in parts[1:]
    terms = METHOD_TERMS[parts[0]] + (ADC_TERMS if adc else [])
    keys = {"loss.total", "collapse", "images_per_second"} | {"loss." + t for t in terms}
    return keys | ({"gradient_share." + t for t in ADC_TERMS} if adc else set())


def _announcement_problems(a):
    # §5 frame 2: "JSON: {"version": 4, "path": "/srv/glfd/state/models/000004", "step": 2000,
    # "published_at": 1.80e9, "metrics": {...}}". "`metrics` is a flat map of numbers from the
    # step before publication: `loss.<term>` for each entry of status's `training.loss`,
    # `gradient_share.<term>` for each of `training.gradient_share`, `collapse` and
    # `images_per_second`, and nothing else." "The initial version, published before any step,
    # has only `collapse` and `images_per_second`, both 0." §3 model: "`path` is the version's
    # directory, an absolute path on the daemon's machine"
    if not isinstance(a, dict):
        return ["announcement is %r, not an object" % (a,)]
    bad = []
    for k, ok in (("version", lambda v: isinstance(v, int) and v >= 1),
                  ("path", lambda v: isinstance(v, str) and os.path.isabs(v)),
                  ("step", lambda v: isinstance(v, int) and v >= 0),
                  ("published_at", _is_num),
                  ("metrics", lambda v: isinstance(v, dict) and all(map(_is_num, v.values())))):
        if k not in a or not ok(a[k]):
            bad.append("%s is %r" % (k, a.get(k, "<missing>")))
    if bad:
        return bad
    m = a["metrics"]
    for k in ("collapse", "images_per_second"):
        if k not in m:
            bad.append("metrics lacks %r" % k)
    other = [k for k in m if k not in ("collapse", "images_per_second")
             and not k.startswith("loss.") and not k.startswith("gradient_share.")]
    if other:
        bad.append("metrics has keys %r beyond loss.*, gradient_share.*, collapse and "
                   "images_per_second (\"and nothing else\")" % other)
    if a["step"] == 0 and m != {"collapse": 0, "images_per_second": 0}:
        bad.append("an initial version (step 0) must have only collapse and images_per_second, "
                   "both 0; metrics %r" % m)
    return bad


@check("announce_last_shape")
def announce_last_shape(ctx):
    # §3 last_announcement: "Result: {"announcement": announcement or null} — exactly the body
    # of the last PUB message (§5)." §5: "A follower asks `model` or `last_announcement` once
    # after subscribing (the latter survives restarts)". §3 model: "Version 1 is published when
    # the daemon first starts"; "`model` (and `status.model`, and the announcement) name a
    # version only once `embed` uses it."
    a = ctx.ok(ctx.req({"cmd": "last_announcement"}), "last_announcement").get("announcement")
    m = ctx.ok(ctx.req({"cmd": "model"}), "model")
    if a is None:
        if isinstance(m.get("version"), int) and m["version"] >= 1:
            raise Fail("no announcement although model is at version %d (every version was "
                       "announced, and last_announcement survives restarts)" % m["version"])
        raise Note("no model published yet")
    bad = _announcement_problems(a)
    if bad:
        raise Fail("last announcement: " + "; ".join(bad))
    if a["version"] > m.get("version", 0):
        raise Fail("announcement version %d is newer than model's %r" % (a["version"], m.get("version")))
    if a["version"] == m["version"]:
        for k in ("path", "step", "published_at"):
            if a[k] != m.get(k):
                raise Fail("announcement and model disagree on %s for version %d: %r vs %r"
                           % (k, a["version"], a[k], m.get(k)))


@check("announce_metrics_keys")
def announce_metrics_keys(ctx):
    # §5 metrics (see _announcement_problems and _expected_metric_keys); §3 status: "`loss`
    # holds every term of the latest healthy step, unweighted, and `total`"; "`gradient_share`
    # gives, for each ADC term, ... (empty without ADC). Both maps are `{}` before the first
    # step."
    drain_announcements(ctx)
    bodies = []
    for msg in ctx.announcements:
        try:
            bodies.append(json.loads(msg[2].decode("utf-8")))
        except Exception:
            pass
    a = ctx.ok(ctx.req({"cmd": "last_announcement"}), "last_announcement").get("announcement")
    if isinstance(a, dict):
        bodies.append(a)
    s = ctx.ok(ctx.req({"cmd": "status"}), "status")
    tr = s.get("training") or {}
    want = _expected_metric_keys(tr.get("method"))
    loss, share = tr.get("loss") or {}, tr.get("gradient_share") or {}
    if loss and want is not None:
        got = {"loss." + k for k in loss} | {"gradient_share." + k for k in share} \
            | {"collapse", "images_per_second"}
        if got != want:
            raise Fail("status training.loss %r / gradient_share %r under method %r: keys %r, "
                       "the §5 list gives %r" % (sorted(loss), sorted(share), tr.get("method"),
                                                 sorted(got), sorted(want)))
    trained = [b for b in bodies if isinstance(b, dict) and b.get("step", 0) > 0
               and isinstance(b.get("metrics"), dict)]
    if not trained:
        raise Note("no announcement of a trained version (step > 0) was seen")
    for b in trained:
        keys = set(b["metrics"])
        if want is None:
            ctx.note("method %r is not spelled as §5 lists the methods; metrics keys %r"
                     % (tr.get("method"), sorted(keys)))
            continue
        if keys != want:
            raise Fail("version %d (step %d) under method %r: metrics keys %r, expected exactly "
                       "%r" % (b["version"], b["step"], tr.get("method"), sorted(keys),
                               sorted(want)))


@check("announce_pub")
def announce_pub(ctx):
    # §5: "On every model publication the daemon sends on its PUB socket a 3-frame message:
    # 0 topic `model`, 1 `glfd/1`, 2 JSON". §3 last_announcement: "exactly the body of the last
    # PUB message". "The files under `path` are complete when the announcement is sent". "The
    # daemon keeps the last K versions (`models.keep`)".
    if ctx.sub is None:
        raise Note("not watching announcements (give --announce-wait S, or --fresh / --spawn)")
    drain_announcements(ctx, 0 if ctx.announcements else ctx.args.announce_wait)
    if not ctx.announcements:
        raise Note("no announcement within %.0f s" % ctx.args.announce_wait)
    bodies = []
    for msg in ctx.announcements:
        if len(msg) != 3 or msg[0] != b"model" or msg[1] != VERSION:
            raise Fail("PUB message of %d frames starting %r, not [model, glfd/1, JSON]"
                       % (len(msg), [f[:16] for f in msg[:2]]))
        try:
            body = json.loads(msg[2].decode("utf-8"))
        except Exception as e:
            raise Fail("PUB body is not UTF-8 JSON: %s" % e)
        bad = _announcement_problems(body)
        if bad:
            raise Fail("PUB body: " + "; ".join(bad))
        bodies.append(body)
    vs = [b["version"] for b in bodies]
    if vs != sorted(set(vs)):
        raise Fail("announced versions not increasing: %r" % vs)
    a = ctx.ok(ctx.req({"cmd": "last_announcement"}), "last_announcement").get("announcement")
    drain_announcements(ctx)
    last = json.loads(ctx.announcements[-1][2].decode("utf-8"))
    if isinstance(a, dict) and a.get("version") == last["version"] and a != last:
        raise Fail("last_announcement %r differs from the PUB body %r" % (a, last))
    if a is None or a.get("version", 0) < last["version"]:
        raise Fail("last_announcement %r is older than the PUB message of version %d"
                   % (a, last["version"]))
    d = last["path"]
    missing = [f for f in ("model.safetensors", "config.json", "stats.json")
               if not os.path.isfile(os.path.join(d, f))]
    if missing and ctx.args.spawn:
        raise Fail("the latest announced version's directory %s lacks %s" % (d, missing))
    if missing and os.path.isdir(d):
        ctx.note("%s lacks %s (it may already have been pruned: last K versions)" % (d, missing))


# ---------------------------------------------------------------- spawn: stop and restart

@check("spawn_sigterm_exit_0", spawn=True)
def spawn_sigterm_exit_0(ctx):
    # The service's contract with its supervisor (not PROTOCOL.md): SIGTERM stops glfd with
    # exit status 0. Before stopping, what a restart must keep is recorded.
    ctx.before = {
        "model": ctx.ok(ctx.req({"cmd": "model"}), "model"),
        "announcement": ctx.ok(ctx.req({"cmd": "last_announcement"}),
                               "last_announcement").get("announcement"),
        "top": ctx.one_item()}
    st = ctx.ok(ctx.req({"cmd": "status"}), "status")
    print("(before SIGTERM: %r items, training step %r, model version %r, catalog %r, %d PUB "
          "message(s) seen)" % (st["store"]["items"], st["training"]["step"],
                                st["model"]["version"], st["catalog"], len(ctx.announcements)),
          flush=True)
    status = stop_glfd(ctx.proc)
    if status != 0:
        raise Fail("glfd exited with status %r after SIGTERM; its last log lines:\n%s"
                   % (status, "".join(ctx.proc.log_tail)))


@check("spawn_restart_keeps_state", spawn=True)
def spawn_restart_keeps_state(ctx):
    # §3 ingest: "an acknowledged id survives any crash after the reply"; "Ids ... are never
    # reused". §5: "`last_announcement` ... (the latter survives restarts)"; "nothing is sent
    # again after a restart". §3 model: "Version 1 is published when the daemon first starts".
    before = getattr(ctx, "before", None)
    if before is None:
        raise Note("spawn_sigterm_exit_0 did not run")
    ctx.proc, ctx.args.endpoint, ctx.args.announce = start_glfd(ctx.args.spawn, ctx.state)
    ctx.client.close()
    ctx.client = Client(ctx.zctx, ctx.args.endpoint, ctx.args.timeout)
    deadline = time.monotonic() + 60
    while True:
        m = ctx.ok(ctx.req({"cmd": "model"}), "model after restart")
        if m.get("version", 0) >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    bm = before["model"]
    a = ctx.ok(ctx.req({"cmd": "last_announcement"}), "last_announcement").get("announcement")
    if m.get("version", 0) > bm["version"]:
        ctx.note("a version (%r) newer than the one served before SIGTERM (%r) is served after "
                 "the restart" % (m.get("version"), bm["version"]))
        if not isinstance(a, dict) or a.get("version") != m["version"]:
            raise Fail("after a restart model is at version %r but last_announcement is %r"
                       % (m["version"], a))
    else:
        if (m.get("version"), m.get("path"), m.get("step")) \
                != (bm["version"], bm["path"], bm["step"]):
            raise Fail("after a restart model is %r, before it was %r" % (m, bm))
        if a != before["announcement"]:
            raise Fail("last_announcement after a restart is %r, before it was %r (§5: it "
                       "survives restarts)" % (a, before["announcement"]))
    top = before["top"]
    items = ctx.ok(ctx.req({"cmd": "get", "ids": [top]}), "get after restart").get("items")
    if not items or not isinstance(items[0], dict) or items[0].get("id") != top:
        raise Fail("acknowledged item %d is gone after a restart: %r" % (top, items))
    x = ctx.one_item()
    if x <= top:
        raise Fail("after a restart a new item got id %d, not above %d (ids are never reused)"
                   % (x, top))
    drain_announcements(ctx, 0.5)


@check("spawn_sigterm_exit_0_again", spawn=True)
def spawn_sigterm_exit_0_again(ctx):
    status = stop_glfd(ctx.proc)
    if status != 0:
        raise Fail("glfd exited with status %r after SIGTERM (after a restart); its last log "
                   "lines:\n%s" % (status, "".join(ctx.proc.log_tail)))


# (end of the checks; they run in the order registered above)


def drain_announcements(ctx, wait=0.0):
    """Collect PUB messages that arrived (§5), waiting up to `wait` seconds for one."""
    if ctx.sub is None:
        return
    deadline = time.monotonic() + wait
    while True:
        left = max(0.0, deadline - time.monotonic())
        if not ctx.sub.poll(int(left * 1000)):
            return
        ctx.announcements.append(ctx.sub.recv_multipart())
        deadline = time.monotonic()  # got one: just drain the rest


# ---------------------------------------------------------------- --spawn

SPAWN_SETTINGS = [  # as tools/python/scenario.py starts glfd: loopback, free ports, a tiny model
    "server.request_endpoint=tcp://127.0.0.1:*", "server.announce_endpoint=tcp://127.0.0.1:*",
    "training.width=4", "training.batch=16", "training.adc_perplexity=5",
    "training.min_items=32", "training.updates_per_image=2",
    "models.publish_every_steps=24", "metrics.endpoint=127.0.0.1:0"]


def start_glfd(glfd, state):
    """Start glfd in `state`; returns (process, request endpoint, announce endpoint), read from
    the log line that names them."""
    process = subprocess.Popen([glfd] + [a for s in SPAWN_SETTINGS for a in ("--set", s)],
                               cwd=state, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    lines, match = [], None
    for _ in range(40):  # the line naming the endpoints comes among the first log lines
        lines.append(process.stderr.readline())
        match = re.search(r"on (tcp://\S+), announcing on (tcp://\S+);", lines[-1])
        if match or not lines[-1]:
            break
    if not match:
        process.kill()
        raise SystemExit("FAIL setup: glfd did not start: %s%s"
                         % ("".join(lines), process.stderr.read()))
    # keep draining its log so glfd never blocks on a full pipe; the tail explains a failure
    import collections
    process.log_tail = collections.deque(lines, maxlen=40)
    threading.Thread(target=lambda: process.log_tail.extend(process.stderr), daemon=True).start()
    return process, match.group(1), match.group(2)


def stop_glfd(process):
    """SIGTERM, then the exit status (None if it did not exit within 60 s: then killed)."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description="glfd/1 conformance checks from PROTOCOL.md")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5555")
    p.add_argument("--announce", default="tcp://127.0.0.1:5556")
    p.add_argument("--only", action="append", default=[],
                   help="check names or patterns, comma-separated or repeated")
    p.add_argument("--fresh", action="store_true",
                   help="glfd was started moments ago on an empty state directory")
    p.add_argument("--spawn", metavar="PATH_TO_GLFD",
                   help="start this glfd on a fresh temporary state directory, run every check "
                        "(fresh ones included), stop it with SIGTERM")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.add_argument("--big-timeout", type=float, default=60.0,
                   help="seconds for requests of many MiB")
    p.add_argument("--startup-timeout", type=float, default=120.0,
                   help="a3: seconds to wait for the first model version")
    p.add_argument("--announce-wait", type=float, default=None,
                   help="announce_pub: seconds to wait for a PUB message (default 0: skip; "
                        "30 with --spawn)")
    p.add_argument("--keep", action="store_true",
                   help="do not delete the items we ingested (nor, with --spawn, the state)")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    args = p.parse_args(argv)

    if args.list:
        for name, _, kind in CHECKS:
            print(name + ("  (--%s)" % kind if kind else ""))
        return 0
    if zmq is None:
        print("FAIL setup: pyzmq is not installed (pip install pyzmq)")
        return 1
    patterns = [s.strip() for o in args.only for s in o.split(",") if s.strip()]
    selected = [c for c in CHECKS
                if not patterns or any(fnmatch.fnmatchcase(c[0], pat) for pat in patterns)]
    if not selected:
        print("FAIL setup: no check matches %s" % patterns)
        return 1
    if args.announce_wait is None:
        args.announce_wait = 30.0 if args.spawn else 0.0

    proc = state = None
    if args.spawn:
        args.spawn = os.path.abspath(args.spawn)
        state = tempfile.mkdtemp(prefix="glfd-conformance-")
        proc, args.endpoint, args.announce = start_glfd(args.spawn, state)
        args.fresh = True
        print("(spawned glfd pid %d in %s on %s, announcing on %s)"
              % (proc.pid, state, args.endpoint, args.announce), flush=True)

    zctx = zmq.Context()
    ctx = Ctx(args, zctx)
    ctx.proc, ctx.state = proc, state
    if args.fresh or args.announce_wait > 0:
        ctx.sub = zctx.socket(zmq.SUB)
        ctx.sub.setsockopt(zmq.LINGER, 0)
        ctx.sub.setsockopt(zmq.SUBSCRIBE, b"model")
        ctx.sub.connect(args.announce)

    started = time.monotonic()
    for name, fn, kind in selected:
        ctx.name = name
        if kind == "fresh" and not args.fresh:
            print("NOTE %s: needs --fresh or --spawn (a daemon just started on an empty state); "
                  "skipped" % name, flush=True)
            COUNTS["notes"] += 1
            continue
        if kind == "spawn" and not args.spawn:
            continue
        t0 = time.monotonic()
        try:
            fn(ctx)
            COUNTS["passed"] += 1
            print("PASS %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
        except Fail as e:
            COUNTS["failed"] += 1
            print("FAIL %s: %s" % (name, e), flush=True)
        except Note as e:
            COUNTS["notes"] += 1
            print("NOTE %s: %s" % (name, e), flush=True)
        except Timeout as e:
            COUNTS["failed"] += 1
            print("FAIL %s: %s (a request got no reply)" % (name, e), flush=True)
        except Exception as e:  # a bug here or a reply of the wrong shape
            COUNTS["failed"] += 1
            print("FAIL %s: unexpected %s: %s" % (name, type(e).__name__, e), flush=True)
        drain_announcements(ctx)

    ctx.name = "cleanup"
    if ctx.created and not args.keep and not args.spawn:
        try:
            ctx.delete(sorted(set(ctx.created)))
        except (Fail, Note, Timeout) as e:
            ctx.note("could not delete our %d items: %s" % (len(ctx.created), e))
    ctx.client.close()
    if ctx.sub is not None:
        ctx.sub.close(linger=0)
    zctx.term()
    if ctx.proc is not None and ctx.proc.poll() is None:
        status = stop_glfd(ctx.proc)
        if status != 0:
            COUNTS["failed"] += 1
            print("FAIL spawn_stop: glfd exited with %r after SIGTERM; its last log lines:\n%s"
                  % (status, "".join(ctx.proc.log_tail)), flush=True)
    if state and not args.keep:
        shutil.rmtree(state, ignore_errors=True)
    print("(%.0f s)" % (time.monotonic() - started))
    print("conformance: %d passed, %d failed, %d notes"
          % (COUNTS["passed"], COUNTS["failed"], COUNTS["notes"]), flush=True)
    return 1 if COUNTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
