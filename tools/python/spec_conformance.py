#!/usr/bin/env python3
"""Conformance checks for a running glfd, written only from protocol/PROTOCOL.md (glfd/1).

Usage:
    python3 tools/python/spec_conformance.py [--endpoint tcp://127.0.0.1:5555]
        [--announce tcp://127.0.0.1:5556] [--only NAME[,NAME...]] [--fresh]
        [--timeout S] [--big-timeout S] [--startup-timeout S] [--announce-wait S]
        [--keep] [--list]

Each check prints `PASS name`, `FAIL name: why` or `NOTE name: text` (a NOTE alone means the
check could not be decided, e.g. no catalog yet, or the spec is silent); the exit status is 1
if any check FAILed. `--only` takes names, comma-separated or repeated, and shell-style
patterns (`a7_limits_*`). Checks marked fresh run only with `--fresh`: start glfd on an empty
state directory, then this script at once (the fresh checks run first). Every other check
makes its own data by ingesting (and deletes it at the end unless `--keep`), and assumes
nothing about what else is stored. Needs pyzmq; nothing else outside the standard library.

Every request waits at most `--timeout` seconds (longer for the 64 MiB ones); a REQ socket
that timed out is discarded and a fresh one connected.

Checks (PROTOCOL.md sections in brackets):
    a1_*        the "format" field of image descriptors [§2]
    a2_nulls_*  nullable fields are present as null, not omitted [§3 export/status/model/
                last_announcement/get]
    a3_*        start-up race between model publication and embed [§3 status, embed] (fresh)
    a4_*        a message that does not start with the version frame [§2, §7]
    a5_*        knn by item puts the item itself first [§3 knn]
    a6_*        errors echo the request id when the header was readable [§2]
    a7_limits_* every limit of §6, at the limit and just over
    basic_*     things a stranger relies on: unknown command, bad JSON, status shape, ...
    announce_*  announcements and last_announcement [§5]

Ambiguities and silences of PROTOCOL.md, and the guess each check makes:
 1. §2/§6 `meta` ≤ 64 KiB travels inside the header, whose limit is also 64 KiB: a meta at its
    limit cannot fit. a7_limits_meta FAILs naming both if the daemon refuses it.
 2. §6 `ids per get/delete` 10,000 vs §6 `header` 64 KiB: 10,000 ids of 6+ digits (any id
    ≥ 100,000) need ≥ 70,000 header bytes. a7_limits_ids_get FAILs naming both if refused.
 3. §6 says `dim` over 65,536 is `bad_header`; §4 lists dim among the counts whose excess is
    `too_large`. Either is accepted (with a NOTE).
 4. §3 export `limit` (1–10,000) has no row in §6 and is not among §4's counts: the code for
    an out-of-range limit is unspecified; too_large or bad_header accepted.
 5. Units: KiB/MiB taken as 1024-based; "40 megapixels" may be 40,000,000 or 40 × 2^20 (only
    sizes valid or invalid under both readings are judged; the other is a NOTE).
 6. §6 "whole request" 64 MiB: which frames count (frame 0? header?) is unstated; the at-limit
    probe stays 4 KiB under 64 MiB of payload, the over-limit probe is over by any count.
 7. Limits are taken as inclusive (at the limit works); the spec says "≤" only for source,
    meta and ids.
 8. `source`/`meta` sizes are taken as UTF-8 bytes of the decoded string, not of its JSON
    escaping.
 9. §2 "`id` is absent when ... its header could not be read": whether a valid JSON header
    under an unsupported frame 0, or a header over 64 KiB, counts as read is not said. The
    first is treated as readable (FAIL without id), the second as unknown (NOTE).
10. Error precedence when several apply (too_large vs not_ready, too_large vs bad_image,
    bad_frames vs bad_header) is unstated; probes are built so only one applies where possible.
11. §3 export: whether a page that ends exactly at the last item has `next_after` null or
    points at an empty page; whether `next_after` is the page's last id; whether an empty
    page carries a zero-length frame or none (NOTE if none).
12. §3 model: `published_at` is typed float|null but the text only says "version 0 and path
    null before the first publication"; a non-null published_at at version 0 is a NOTE.
13. §3 status: what `catalog.building` holds while building (a version? an object?) is not
    said; status's `model` object is assumed to follow the model command's nullability.
14. §3 last_announcement: whether it survives a daemon restart (null until the next
    publication?) is not said; null while model.version ≥ 1 is a NOTE, not a FAIL.
15. Duplicate ids in get/delete: allowed? reported once in `deleted`? (assumed allowed; the
    at-limit delete repeats one of our own ids so as to delete nothing else).
16. knn by vector whose `dim` differs from the model's: error code unspecified.
17. `k` = 0 and export `limit` = 0 are taken as "a field of the wrong value": bad_header.
18. Ids are u64 but JSON numbers above 2^53 are not discussed; probes stay below 2^53.
19. `id` of another type (float, object, null): unspecified.
20. A frame over 16 MiB "may" be dropped by ZeroMQ: no reply at all is then allowed, so a
    silent daemon and a dropped frame look alike (NOTE).
21. A raw descriptor missing width/height/channels: bad_header or bad_image? A raw frame whose
    length is not width × height × channels: bad_image assumed ("truncated").
22. knn by item with a `source` filter the item does not carry: "excludes nothing: the item
    itself comes first" vs "only items with that source tag" (not probed).
23. "embed answers under model.version as soon as the version is published": taken to mean
    from the moment `model` reports the version.
24. The first id a store hands out (0 or 1?) is unstated; small-id probes use get only.
25. An empty message, or frame 0 alone without a header: bad_frames or bad_header? (NOTE).
26. Reply-frame count of export with an empty page, and of get with pixels when nothing is
    found, follow "one frame of ids.length × dim" / "one frame per found item" literally.
"""

import argparse
import array
import fnmatch
import json
import math
import os
import struct
import sys
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
    def __init__(self, frames, sent_id):
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

    def __init__(self, zctx, endpoint, timeout, kind=None):
        self.zctx, self.endpoint, self.timeout = zctx, endpoint, timeout
        self.kind = zmq.REQ if kind is None else kind
        self.sock = None
        self._connect()

    def _connect(self):
        if self.sock is not None:
            self.sock.close(linger=0)
        self.sock = self.zctx.socket(self.kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.endpoint)

    def close(self):
        self.sock.close(linger=0)

    def request(self, header, frames=(), version=VERSION, timeout=None, raw=None):
        """Send version + header + frames (or exactly `raw` frames); return a Reply."""
        sent_id = None
        if raw is None:
            if isinstance(header, dict):
                sent_id = header.get("id")
                header = dumps(header)
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
            return Reply(got, sent_id)


class Ctx:
    def __init__(self, args, zctx):
        self.args, self.zctx = args, zctx
        self.client = Client(zctx, args.endpoint, args.timeout)
        self.name = None
        self.created = []      # ids we ingested, deleted at the end unless --keep
        self.sub = None        # SUB socket, when announcements are watched
        self.announcements = []
        self._n = 0

    def new_id(self):
        self._n += 1
        return "sc-%d-%d" % (os.getpid(), self._n)

    def note(self, text):
        print("NOTE %s: %s" % (self.name, text), flush=True)

    def req(self, header, frames=(), timeout=None, **kw):
        """Send a request; dict headers without "id" get a fresh string id."""
        if isinstance(header, dict) and "id" not in header:
            header = dict(header, id=self.new_id())
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

    def err(self, reply, codes, what, need_id=False):
        """The error of a reply that must fail with one of `codes`."""
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
            msg = ("%s: %s error does not echo the request id %r (got %r); §2: id is absent "
                   "only when the request had none or its header could not be read"
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


CHECKS = []  # (name, function, needs --fresh), run in this order


def check(name, fresh=False):
    def register(fn):
        CHECKS.append((name, fn, fresh))
        return fn
    return register


# ---------------------------------------------------------------- fresh-state checks (first)

@check("a2_nulls_model_fresh", fresh=True)
def a2_nulls_model_fresh(ctx):
    # §3 model: "Result: {"version": int, "path": string|null, "step": int,
    # "published_at": float|null}; version 0 and path null before the first publication."
    r = ctx.ok(ctx.req({"cmd": "model"}, timeout=max(30.0, ctx.args.timeout)), "model")
    for key in ("version", "path", "step", "published_at"):
        if key not in r:
            raise Fail("model result omits %r (it must be present, null if need be): %r" % (key, r))
    if r["version"] != 0:
        raise Note("first model reply already at version %r: the state before the first "
                   "publication was not observable" % r["version"])
    if r["path"] is not None:
        raise Fail("model version 0 but path is %r, not null" % r["path"])
    if r["published_at"] is not None:
        ctx.note("published_at is %r at version 0 (typed float|null; the text only says path "
                 "is null)" % r["published_at"])
    # §3 status shows "model": {"version", "path", "step", "published_at"}: the same object.
    s = ctx.ok(ctx.req({"cmd": "status"}), "status")
    m = s.get("model")
    if not isinstance(m, dict):
        raise Fail("status has no model object: %r" % s)
    if m.get("version") == 0:
        for key in ("path", "published_at"):
            if key not in m:
                raise Fail("status.model omits %r at version 0 (present as null expected)" % key)
        if m["path"] is not None:
            raise Fail("status.model.path is %r at version 0, not null" % m["path"])


@check("a2_nulls_last_announcement_fresh", fresh=True)
def a2_nulls_last_announcement_fresh(ctx):
    # §3 last_announcement: "Result: {"announcement": announcement or null} — exactly the body
    # of the last PUB message (§5)."
    r = ctx.ok(ctx.req({"cmd": "last_announcement"}), "last_announcement")
    if "announcement" not in r:
        raise Fail("result omits 'announcement' (must be present, null when none): %r" % r)
    if r["announcement"] is not None:
        raise Note("an announcement was already sent (version %r): the 'none yet' state was "
                   "not observable" % (r["announcement"] or {}).get("version"))


@check("a3_startup_race", fresh=True)
def a3_startup_race(ctx):
    # §3 status: "`embed` answers under `model.version` as soon as the version is published."
    # §3 embed: "Errors: `bad_image`, `too_large`, `not_ready` (no model)."
    # §4: "`not_ready` | no model version yet (embed), ..."
    # A strict loop (model, embed, model, embed, ...): once model said version >= 1, no embed
    # may answer not_ready, and none may answer under an older version.
    img = png(16, 16)
    deadline = time.monotonic() + ctx.args.startup_timeout
    first = seen = None
    after = 0
    early_ok = False
    while after < 60:
        if time.monotonic() > deadline:
            raise Note("model never reported version >= 1 within %.0f s; nothing to test"
                       % ctx.args.startup_timeout)
        try:
            m = ctx.req({"cmd": "model"}, timeout=5.0)
        except Timeout:
            continue  # still starting; the client has a fresh socket
        v = ctx.ok(m, "model").get("version")
        if not isinstance(v, int):
            raise Fail("model version is %r, not an integer" % v)
        first = v if first is None else first
        if v >= 1 and seen is None:
            seen = v
        e = ctx.req({"cmd": "embed", "images": [{}]}, [img])
        if seen is None:
            if e.ok:
                early_ok = True
            else:
                ctx.err(e, "not_ready", "embed while model reports version 0")
            continue
        if not e.ok and e.code == "not_ready":
            raise Fail("embed answered not_ready (%s) right after model reported version %d "
                       "(%d embeds after the first version)" % (e.describe(), v, after))
        ev = ctx.ok(e, "embed after publication").get("version")
        if not isinstance(ev, int) or ev < v:
            raise Fail("embed answered under version %r after model reported version %d" % (ev, v))
        after += 1
    if first is not None and first >= 1:
        ctx.note("the first model reply already showed version %d: the start-up window may "
                 "have been missed" % first)
    if early_ok:
        ctx.note("embed succeeded while model still reported version 0")


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
    # "catalog": {"version", "items", "building"}}"
    # §2: "Clients must ignore unknown result fields." (extra keys are fine)
    s = ctx.ok(ctx.req({"cmd": "status"}), "status")
    if s.get("protocol_version") != "glfd/1":
        raise Fail("protocol_version is %r, not 'glfd/1'" % s.get("protocol_version"))
    if not _is_num(s.get("uptime_seconds")) or s["uptime_seconds"] < 0:
        raise Fail("uptime_seconds is %r" % s.get("uptime_seconds"))
    want = {
        "store": {"items": _is_num, "bytes": _is_num, "ingested": _is_num,
                  "replay_policy": lambda x: isinstance(x, str), "replay_members": _is_num,
                  "replay_embedded": _is_num, "map_used_bytes": _is_num, "map_size": _is_num},
        "training": {"method": lambda x: isinstance(x, str), "step": _is_num,
                     "images_per_second": _is_num, "collapse": _is_num, "rolled_back": _is_num,
                     "loss": lambda x: isinstance(x, dict) and all(map(_is_num, x.values())),
                     "gradient_share":
                         lambda x: isinstance(x, dict) and all(map(_is_num, x.values()))},
        "model": {"version": _is_num, "path": lambda x: x is None or isinstance(x, str),
                  "step": _is_num, "published_at": lambda x: x is None or _is_num(x)},
        "catalog": {"version": _is_num, "items": _is_num, "building": lambda x: True},
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
    if bad:
        raise Fail("; ".join(bad))
    if s["store"]["replay_policy"] in ("fifo", "reservoir") and s["store"]["replay_embedded"]:
        raise Fail("replay_embedded is %r under %s; §3: 0 under fifo and reservoir"
                   % (s["store"]["replay_embedded"], s["store"]["replay_policy"]))


@check("basic_unknown_command")
def basic_unknown_command(ctx):
    # §4: "`unknown_command` | `cmd` is not a command of this version"
    # §7: → {"cmd":"fly","id":9}  ← {"error":{"code":"unknown_command",...},"id":9,"ok":false}
    r = ctx.req({"cmd": "fly", "id": 9})
    ctx.err(r, "unknown_command", "cmd fly", need_id=True)


@check("basic_malformed_json")
def basic_malformed_json(ctx):
    # §4: "`bad_header` | header not a JSON object, `cmd` missing, a field of the wrong type or
    # value". §2: "`id` is absent when the request had none (or its header could not be read)."
    for raw in (b'{"cmd": "status", "id": 1', b'[1, 2]', b'"status"', b'\xff\xfe{}', b''):
        r = ctx.client.request(raw)
        ctx.err(r, "bad_header", "header %r" % raw)
        if "id" in r.header:
            raise Fail("header %r could not be read, yet the reply carries id %r (§2: absent)"
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
    # §2: "`"id"` (integer or string, optional, echoed in the reply)"; "`id` is absent when the
    # request had none"
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


@check("basic_version_frame_only")
def basic_version_frame_only(ctx):
    # §1: "a request, then its reply"; §2 frame table: frame 1 (the header) follows frame 0.
    # Which code a lone version frame gets is not said (bad_frames or bad_header).
    r = ctx.client.request(None, raw=[VERSION])
    e = ctx.err(r, ("bad_frames", "bad_header"), "a lone glfd/1 frame")
    ctx.note("a lone version frame got %s (spec does not say which code)" % e["code"])


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
    # §2: "`id` is absent when the request had none (or its header could not be read)."
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


MISSING_ID = 2 ** 52 + 12345  # below 2^53 (ambiguity 18), far beyond any real store


@check("basic_ingest_get")
def basic_ingest_get(ctx):
    # §3 ingest: "Result: {"ids": [u64, …]}, one id per image in request order." "Ids are
    # 64-bit, increase with ingest order and are never reused."
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
    if not ids[0] < ids[1] < later:
        raise Fail("ids do not increase with ingest order: %r then %r" % (ids, later))
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
    if len(span) > 2000:  # keeps the get header well under 64 KiB
        raise Note("too many concurrent ingests to look for a half-stored request")
    items = ctx.ok(ctx.req({"cmd": "get", "ids": span}), "get").get("items") if span else []
    for it in items or []:
        if isinstance(it, dict) and it.get("source") == marker:
            raise Fail("item %r of the refused request was stored" % it.get("id"))


@check("basic_embed")
def basic_embed(ctx):
    # §3 embed: "Result: {"version": int, "dim": int} + one vector frame per image. The same
    # image embedded twice under one version gives the same vector."
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
    if r.payload[0] != r.payload[1]:
        raise Fail("the same image twice in one request gave different vectors")
    r2 = ctx.req({"cmd": "embed", "images": [{}]}, [p])
    res2 = ctx.ok(r2, "embed again")
    if res2.get("version") == ver and r2.payload[0] != r.payload[0]:
        raise Fail("the same image under version %d gave a different vector" % ver)
    e = ctx.err(ctx.req({"cmd": "embed", "images": [{}, {}]}, [p, b"hello"]), "bad_image",
                "embed [png, 'hello']")
    if e.get("index") != 1:
        raise Fail("bad_image index %r, expected 1" % e.get("index"))


@check("basic_delete")
def basic_delete(ctx):
    # §3 delete: "Result: {"deleted": [u64, …]}, the ids that existed."
    # §3 get: "`null` where there is no such item"
    x = ctx.one_item()
    d = ctx.ok(ctx.req({"cmd": "delete", "ids": [x, MISSING_ID]}), "delete").get("deleted")
    if d != [x]:
        raise Fail("delete [%d, missing] reported deleted %r, expected [%d]" % (x, d, x))
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
    # §2: "`jpeg`/`png` to insist"; §4 "`bad_image` | an image does not decode"; "`bad_header`
    # | ... a field of the wrong type or value"
    p = png(16, 16)
    ctx.ingest([({"format": "png"}, p)], "ingest of a PNG with format png")
    e = ctx.err(ctx.req({"cmd": "ingest", "images": [{"format": "jpeg"}]}, [p]), "bad_image",
                "a PNG sent with format jpeg")
    if e.get("index") != 0:
        raise Fail("bad_image for the only image has index %r, not 0" % e.get("index"))
    e = ctx.err(ctx.req({"cmd": "ingest", "images": [{"format": "gif"}]}, [p]),
                ("bad_header", "bad_image"), "format gif (not a value of the enum)")
    if e["code"] != "bad_header":
        ctx.note("format \"gif\" got bad_image; §4 suggests bad_header (a field of the wrong value)")


# ---------------------------------------------------------------- a2: nullable fields

@check("a2_nulls_keys_present")
def a2_nulls_keys_present(ctx):
    # §3 model: "Result: {"version": int, "path": string|null, "step": int,
    # "published_at": float|null}"; §3 last_announcement: "{"announcement": announcement or null}"
    m = ctx.ok(ctx.req({"cmd": "model"}), "model")
    missing = [k for k in ("version", "path", "step", "published_at") if k not in m]
    if missing:
        raise Fail("model result omits %s: %r" % (missing, m))
    a = ctx.ok(ctx.req({"cmd": "last_announcement"}), "last_announcement")
    if "announcement" not in a:
        raise Fail("last_announcement result omits 'announcement': %r" % a)


@check("a2_nulls_get_missing")
def a2_nulls_get_missing(ctx):
    # §3 get: "{"items": [item or null, …]} in request order, `null` where there is no such item"
    x = ctx.one_item()
    items = ctx.ok(ctx.req({"cmd": "get", "ids": [MISSING_ID, x, MISSING_ID + 1]}), "get")["items"]
    if not isinstance(items, list) or len(items) != 3 or items[0] is not None \
            or items[2] is not None or not isinstance(items[1], dict) or items[1].get("id") != x:
        raise Fail("get [missing, %d, missing] gave %r; expected [null, item, null]" % (x, items))


@check("a2_nulls_status_building")
def a2_nulls_status_building(ctx):
    # §3 status: "catalog": {"version": 3, "items": 50000, "building": null} — "it trails
    # `model.version` while the catalog of a new version is built, which `building` names, as
    # it does while the catalog's approximate index is built". Idle: building is null, present.
    seen = []
    for i in range(20):
        s = ctx.ok(ctx.req({"cmd": "status"}), "status")
        cat = s.get("catalog")
        if not isinstance(cat, dict) or "building" not in cat:
            raise Fail("status.catalog omits 'building' (null when idle): %r" % (cat,))
        if cat["building"] is None:
            return
        seen.append(cat["building"])
        time.sleep(0.5)
    raise Note("catalog was building throughout 10 s (building = %r); idle state not seen"
               % seen[-1])


def _export_page(ctx, after, limit):
    """One export page, its shape checked against §3 export; returns (result, reply)."""
    # §3 export: "Result: {"version": int, "dim": int, "ids": [u64, …], "next_after": u64|null}
    # + one frame of ids.length × dim float32 (row i is the unit embedding of ids[i]). Pages are
    # in id order"
    r = ctx.req({"cmd": "export", "after": after, "limit": limit})
    ctx.need_catalog(r, "export")
    res = ctx.ok(r, "export after=%d limit=%d" % (after, limit))
    for k in ("version", "dim", "ids", "next_after"):
        if k not in res:
            raise Fail("export result omits %r (present, null if need be): %r"
                       % (k, {a: b for a, b in res.items() if a != "ids"}))
    ids, dim = res["ids"], res["dim"]
    if not isinstance(ids, list) or len(ids) > limit or ids != sorted(ids) \
            or any(not isinstance(i, int) or i <= after for i in ids):
        raise Fail("export after=%d limit=%d: ids not ascending, above after, at most limit: %r"
                   % (after, limit, ids[:20]))
    if len(r.payload) > 1 or (r.payload and len(r.payload[0]) != 4 * dim * len(ids)):
        raise Fail("export: %d frame(s) of %r bytes for %d ids × dim %r"
                   % (len(r.payload), [len(f) for f in r.payload], len(ids), dim))
    if not r.payload and ids:
        raise Fail("export: no embedding frame for %d ids" % len(ids))
    return res, r


@check("a2_nulls_export_empty_page")
def a2_nulls_export_empty_page(ctx):
    # §3 export: ""next_after": u64|null" ... "ask again with "after": next_after until it is null"
    res, r = _export_page(ctx, MISSING_ID, 10)
    if res["ids"]:
        raise Note("ids exist above %d; no empty page to look at" % MISSING_ID)
    if res["next_after"] is not None:
        raise Fail("empty page has next_after %r, not null" % res["next_after"])
    if not r.payload:
        ctx.note("empty page came without the (zero-length) embedding frame; §3 says one frame "
                 "of ids.length × dim float32")


@check("a2_nulls_export_last_page")
def a2_nulls_export_last_page(ctx):
    # §3 export: "Pages are in id order; ask again with "after": next_after until it is null."
    # Find a non-empty page near the top of the id range (behind an item of ours), then walk.
    x = ctx.one_item()
    step, after = 1, None
    while True:
        a = max(0, x - step)
        res, _ = _export_page(ctx, a, 10000)
        if res["ids"]:
            after = a
            break
        if res["next_after"] is not None:
            raise Fail("page after=%d is empty but next_after is %r" % (a, res["next_after"]))
        if a == 0:
            raise Note("the catalog is empty; there is no last page to look at")
        step *= 16
    pages, version = 0, res["version"]
    while res["next_after"] is not None:
        pages += 1
        if pages > 100:
            raise Note("more than 100 pages of 10,000 above our item; gave up walking")
        prev = res
        res, _ = _export_page(ctx, res["next_after"], 10000)
        if res["version"] != version:
            raise Note("a new version was published during the walk; try again")
        if not res["ids"]:
            if res["next_after"] is not None:
                raise Fail("empty page with next_after %r" % res["next_after"])
            ctx.note("a page of %d ids had next_after %r, then an empty page with null (spec "
                     "silent on whether the last full page says null)" % (len(prev["ids"]),
                                                                          prev["next_after"]))
            return
    # reached a page with next_after present and null (checked present by _export_page)


# ---------------------------------------------------------------- a5: knn by item

@check("a5_knn_item_first")
def a5_knn_item_first(ctx):
    # §3 knn: "Knn by item excludes nothing: the item itself comes first (score 1)."
    # "Knn by an item of that backlog still answers, with the item itself first."
    # "`score` is the cosine similarity in [−1, 1]"; "nearest first"
    # Exact duplicates all score 1: the queried item must still be first.
    p = png(32, 32)
    a, b = ctx.ingest([({}, p), ({}, p)], "ingest of one PNG twice")
    c = ctx.ingest([({}, p)], "ingest of the same PNG again")[0]
    for item in (a, b, c):
        for exact in (True, False):
            r = ctx.req({"cmd": "knn", "by": "item", "item": item, "k": 5, "exact": exact})
            ctx.need_catalog(r, "knn by item")
            nb = ctx.ok(r, "knn by item %d exact=%s" % (item, exact)).get("neighbours")
            if not isinstance(nb, list) or not nb:
                raise Fail("knn by item %d: neighbours %r" % (item, nb))
            scores = [n.get("score") for n in nb]
            if any(not _is_num(s) or s < -1.0001 or s > 1.0001 for s in scores) \
                    or scores != sorted(scores, reverse=True):
                raise Fail("knn by item %d: scores not in [-1, 1] nearest first: %r" % (item, scores))
            if nb[0].get("id") != item:
                raise Fail("knn by item %d (exact=%s; stored duplicates %s): first neighbour is "
                           "%r, not the item itself; neighbours %r"
                           % (item, exact, [i for i in (a, b, c) if i != item], nb[0].get("id"), nb))
            if abs(scores[0] - 1) > 1e-3:
                raise Fail("knn by item %d: the item itself scores %r, not 1" % (item, scores[0]))
    ctx.err(ctx.req({"cmd": "knn", "by": "item", "item": MISSING_ID, "k": 5}), "not_found",
            "knn by a missing item")


# ---------------------------------------------------------------- a6: error ids
# §2: "Reply header: ... {"id": <request id>, "ok": false, "error": {...}}. `id` is absent when
# the request had none (or its header could not be read)." Hence: a readable header's id is
# echoed in every error reply.

FRAME16 = None


def frame16():
    """One 16 MiB raw frame (2048 × 2048 × 4), shared by the big probes."""
    global FRAME16
    if FRAME16 is None:
        FRAME16 = bytes(16 * MIB)
    return FRAME16


def _expect_refusal(ctx, r, codes, what, need_id=False):
    """Like ctx.err, but an ok reply's ids are still recorded for cleanup."""
    if r.ok and isinstance(r.result, dict) and isinstance(r.result.get("ids"), list):
        ctx.created.extend(r.result["ids"])
    return ctx.err(r, codes, what, need_id=need_id)


@check("a6_error_ids_oversized_request")
def a6_error_ids_oversized_request(ctx):
    # §6: "whole request | 64 MiB | `too_large`"; "one image frame | 16 MiB" (so 4 × 16 MiB
    # frames are each allowed and reach the daemon). The header is small and readable.
    descs = [raw_desc(2048, 2048, 4)] * 4 + [{}]
    frames = [frame16()] * 4 + [png(8, 8)]
    r = ctx.req({"cmd": "ingest", "id": "a6-req", "images": descs}, frames,
                timeout=ctx.args.big_timeout)
    _expect_refusal(ctx, r, "too_large", "ingest of 4 × 16 MiB + a PNG (> 64 MiB in all)",
                    need_id=True)


@check("a6_error_ids_unsupported_version")
def a6_error_ids_unsupported_version(ctx):
    # §2: "A server answers a version it does not speak with `unsupported_version` (in the
    # version it does speak)." The header here is valid JSON with an id (ambiguity 9).
    r = ctx.client.request({"cmd": "status", "id": "a6-ver"}, version=b"glfd/2")
    ctx.err(r, "unsupported_version", "frame 0 glfd/2 with a valid header", need_id=True)


@check("a6_error_ids_oversized_header")
def a6_error_ids_oversized_header(ctx):
    # §6: "header | 64 KiB | `too_large`". Whether a header over the limit "could be read" is
    # not said (ambiguity 9): a missing id is a NOTE, a wrong one a FAIL.
    h = padded_header(64 * KIB + 4 * KIB, {"id": "a6-hdr", "cmd": "status"})
    r = ctx.client.request(h)
    ctx.err(r, "too_large", "a 68 KiB header")
    if "id" not in r.header:
        raise Note("too_large for a 68 KiB header came without the id (spec silent whether an "
                   "oversized header counts as readable)")
    if r.header["id"] != "a6-hdr":
        raise Fail("too_large reply carries id %r, the request's was 'a6-hdr'" % r.header["id"])


@check("a6_error_ids_bad_header")
def a6_error_ids_bad_header(ctx):
    # §4: "`bad_header` | ... a field of the wrong type or value". The header itself is readable.
    r = ctx.req({"cmd": "knn", "id": "a6-bh", "by": "item", "item": 1, "k": "ten"})
    ctx.err(r, "bad_header", "knn with k \"ten\"", need_id=True)
    r = ctx.req({"id": "a6-nocmd"})
    ctx.err(r, "bad_header", "header without cmd", need_id=True)


@check("a6_error_ids_bad_frames")
def a6_error_ids_bad_frames(ctx):
    # §4: "`bad_frames` | wrong number of frames for the command, or a frame where none belongs"
    ctx.err(ctx.req({"cmd": "status", "id": "a6-bf"}, [b"stray"]), "bad_frames",
            "status + a frame", need_id=True)
    ctx.err(ctx.req({"cmd": "ingest", "id": 77, "images": [{}]}), "bad_frames",
            "ingest without its frame", need_id=True)


@check("a6_error_ids_oversized_frame")
def a6_error_ids_oversized_frame(ctx):
    # §6: "one image frame | 16 MiB | `too_large` (ZeroMQ may also drop a larger frame before
    # it reaches the daemon)" — so no reply at all is allowed (NOTE), a reply must echo the id.
    w, h = 4097, 4096  # 16 MiB + 4 KiB of valid raw gray pixels, 16.8 Mpx
    try:
        r = ctx.req({"cmd": "ingest", "id": "a6-frm", "images": [raw_desc(w, h, 1)]},
                    [bytes(w * h)], timeout=ctx.args.big_timeout)
    except Timeout:
        ctx.ok(ctx.req({"cmd": "status"}), "status after the dropped frame")
        raise Note("no reply to a 16 MiB + 4 KiB frame (allowed: ZeroMQ may drop it)")
    _expect_refusal(ctx, r, "too_large", "a 16 MiB + 4 KiB image frame", need_id=True)


# ---------------------------------------------------------------- a7: limits (§6)
# §6 table: "header 64 KiB too_large; images per request 256 too_large; one image frame 16 MiB
# too_large; whole request 64 MiB too_large; declared image size 40 megapixels, 16,384 pixels a
# side bad_image; k 1000 too_large; ids per get/delete 10,000 too_large; dim 65,536 bad_header;
# source 256 bytes too_large; meta 64 KiB too_large". Limits are taken as inclusive.

@check("a7_limits_header")
def a7_limits_header(ctx):
    # §6: "header | 64 KiB | `too_large`"
    r = ctx.client.request(padded_header(64 * KIB, {"cmd": "status", "id": "a7-h0"}))
    if not r.ok:
        raise Fail("a header of exactly 65,536 bytes was refused: %s" % r.describe())
    r = ctx.client.request(padded_header(64 * KIB + 1, {"cmd": "status", "id": "a7-h1"}))
    ctx.err(r, "too_large", "a header of 65,537 bytes")


def _ingest_meta(ctx, meta, rid):
    h = {"cmd": "ingest", "id": rid, "images": [{"meta": meta}]}  # rid: 5 chars
    return ctx.req(h, [png(8, 8)]), len(dumps(h))


@check("a7_limits_meta")
def a7_limits_meta(ctx):
    # §2: "`meta` (≤ 64 KiB, kept verbatim)"; §6: "meta | 64 KiB | `too_large`" and
    # "header | 64 KiB | `too_large`" — but the meta is carried in the header (ambiguity 1).
    overhead = len(dumps({"cmd": "ingest", "id": "a7-m0", "images": [{"meta": ""}]}))
    fit = 64 * KIB - overhead
    r, hsize = _ingest_meta(ctx, "m" * fit, "a7-m0")
    x = ctx.ok(r, "meta of %d bytes (header exactly %d bytes)" % (fit, hsize))["ids"][0]
    ctx.created.append(x)
    it = ctx.ok(ctx.req({"cmd": "get", "ids": [x]}), "get")["items"][0]
    if not isinstance(it, dict) or it.get("meta") != "m" * fit:
        raise Fail("meta of %d bytes not kept verbatim" % fit)
    r, hsize = _ingest_meta(ctx, "m" * (64 * KIB + 1), "a7-m1")
    _expect_refusal(ctx, r, "too_large", "meta of 65,537 bytes")
    r, hsize = _ingest_meta(ctx, "m" * (64 * KIB), "a7-m2")
    if r.ok:
        ctx.created.extend(r.result.get("ids") or [])
        ctx.note("meta of 65,536 bytes accepted in a header of %d bytes, over the 64 KiB "
                 "header limit of §6" % hsize)
        return
    if r.code == "too_large":
        raise Fail("meta at its limit (65,536 bytes; §2 \"meta (≤ 64 KiB)\", §6 meta 64 KiB) is "
                   "refused: it travels inside the header (a %d-byte header here), whose limit is "
                   "also 64 KiB (§6 header). The two limits contradict: the meta limit cannot be "
                   "reached (largest meta that fits: %d bytes)" % (hsize, fit))
    raise Fail("meta of 65,536 bytes: %s" % r.describe())


@check("a7_limits_source")
def a7_limits_source(ctx):
    # §2: "`source` (≤ 256 bytes)"; §6: "source | 256 bytes | `too_large`" (bytes of UTF-8)
    for src in ("s" * 256, "é" * 128):
        x = ctx.ingest([({"source": src}, png(8, 8))], "source of 256 bytes (%d chars)"
                       % len(src))[0]
        it = ctx.ok(ctx.req({"cmd": "get", "ids": [x]}), "get")["items"][0]
        if not isinstance(it, dict) or it.get("source") != src:
            raise Fail("source of 256 bytes not returned as sent: %r"
                       % (it.get("source") if isinstance(it, dict) else it))
    for src in ("s" * 257, "é" * 129):
        r = ctx.req({"cmd": "ingest", "images": [{"source": src}]}, [png(8, 8)])
        _expect_refusal(ctx, r, "too_large", "source of %d bytes (%d chars)"
                        % (len(src.encode()), len(src)))


@check("a7_limits_images_per_request")
def a7_limits_images_per_request(ctx):
    # §6: "images per request | 256 | `too_large`"
    p = png(8, 8)
    ids = ctx.ingest([({}, p)] * 256, "ingest of 256 images")
    if len(set(ids)) != 256:
        raise Fail("256 images got %d distinct ids" % len(set(ids)))
    r = ctx.req({"cmd": "ingest", "images": [{}] * 257}, [p] * 257)
    _expect_refusal(ctx, r, "too_large", "ingest of 257 images")
    r = ctx.req({"cmd": "embed", "images": [{}] * 257}, [p] * 257)
    ctx.err(r, ("too_large", "not_ready"), "embed of 257 images")
    if r.code == "not_ready":
        ctx.note("embed of 257 images answered not_ready (no model) rather than too_large")


@check("a7_limits_frame")
def a7_limits_frame(ctx):
    # §6: "one image frame | 16 MiB | `too_large` (ZeroMQ may also drop a larger frame before it
    # reaches the daemon)"
    ctx.ingest([(raw_desc(2048, 2048, 4), frame16())], "a raw frame of exactly 16 MiB",
               timeout=ctx.args.big_timeout)
    w, h = 4097, 4096
    try:
        r = ctx.req({"cmd": "ingest", "images": [raw_desc(w, h, 1)]}, [bytes(w * h)],
                    timeout=ctx.args.big_timeout)
    except Timeout:
        ctx.ok(ctx.req({"cmd": "status"}), "status after the dropped frame")
        raise Note("at 16 MiB: ok; 16 MiB + 4 KiB: no reply (allowed: ZeroMQ may drop it)")
    _expect_refusal(ctx, r, "too_large", "a raw frame of 16 MiB + 4 KiB")


@check("a7_limits_request")
def a7_limits_request(ctx):
    # §6: "whole request | 64 MiB | `too_large`" (which frames count is unstated, ambiguity 6:
    # the probe under the limit has 4 KiB to spare for frame 0 and the header).
    descs = [raw_desc(2048, 2048, 4)] * 3 + [raw_desc(4096, 4095, 1)]
    frames = [frame16()] * 3 + [bytes(4096 * 4095)]
    total = sum(map(len, frames))
    assert total == 64 * MIB - 4 * KIB
    ctx.ingest(list(zip(descs, frames)), "ingest of 4 frames, 64 MiB - 4 KiB in all",
               timeout=ctx.args.big_timeout)
    descs = [raw_desc(2048, 2048, 4)] * 4 + [{}]
    frames = [frame16()] * 4 + [png(8, 8)]
    r = ctx.req({"cmd": "ingest", "images": descs}, frames, timeout=ctx.args.big_timeout)
    _expect_refusal(ctx, r, "too_large", "ingest of 4 × 16 MiB + a PNG (> 64 MiB)")


@check("a7_limits_declared_side")
def a7_limits_declared_side(ctx):
    # §6: "declared image size | 40 megapixels, 16,384 pixels a side | `bad_image`"
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
    # §6: "declared image size | 40 megapixels, ... | `bad_image`". A raw image of 40 Mpx
    # would exceed the 16 MiB frame limit, so the probes are PNGs of zeros (ambiguity 5:
    # 40,000,000 or 40 × 2^20 pixels; 8000 × 5000 is within both, 8192 × 5121 over both).
    big = ctx.args.big_timeout
    ctx.ingest([({}, png_blank(8000, 5000))], "PNG of 8000 × 5000 = 40,000,000 pixels",
               timeout=big)
    r = ctx.req({"cmd": "ingest", "images": [{}]}, [png_blank(8192, 5121)], timeout=big)
    _expect_refusal(ctx, r, "bad_image", "PNG of 8192 × 5121 = 41,951,232 pixels (> 40 × 2^20)")
    r = ctx.req({"cmd": "ingest", "images": [{}]}, [png_blank(8000, 5001)], timeout=big)
    if r.ok:
        ctx.created.extend(r.result.get("ids") or [])
        ctx.note("8000 × 5001 = 40,008,000 pixels accepted: 40 megapixels read as 40 × 2^20")
    else:
        ctx.err(r, "bad_image", "PNG of 8000 × 5001")
        ctx.note("8000 × 5001 = 40,008,000 pixels refused: 40 megapixels read as 40,000,000")


@check("a7_limits_k")
def a7_limits_k(ctx):
    # §3 knn: "`"k"` (1–1000, default 10)"; §6: "`k` | 1000 | `too_large`";
    # §4 bad_header: "a field of the wrong type or value" (k = 0, ambiguity 17)
    x = ctx.one_item()
    r = ctx.req({"cmd": "knn", "by": "item", "item": x, "k": 1000})
    ctx.need_catalog(r, "knn k=1000")
    nb = ctx.ok(r, "knn k=1000").get("neighbours")
    if not isinstance(nb, list) or not 1 <= len(nb) <= 1000:
        raise Fail("knn k=1000 gave %r neighbours" % (len(nb) if isinstance(nb, list) else nb))
    ctx.err(ctx.req({"cmd": "knn", "by": "item", "item": x, "k": 1001}), "too_large", "k=1001")
    ctx.err(ctx.req({"cmd": "knn", "by": "item", "item": x, "k": 0}), "bad_header", "k=0")


@check("a7_limits_ids_get")
def a7_limits_ids_get(ctx):
    # §3 get: "(≤ 10,000 ids)"; §6: "ids per get/delete | 10,000 | `too_large`" and "header |
    # 64 KiB" (ambiguity 2: 10,000 ids of 6+ digits do not fit in 64 KiB)
    small = list(range(1, 10001))
    items = ctx.ok(ctx.req({"cmd": "get", "ids": small}), "get of ids 1..10000").get("items")
    if not isinstance(items, list) or len(items) != 10000:
        raise Fail("get of 10,000 ids returned %r items" % (len(items) if isinstance(items, list)
                                                           else items))
    ctx.err(ctx.req({"cmd": "get", "ids": small + [10001]}), "too_large", "get of 10,001 ids")
    x = ctx.one_item()
    real = list(range(max(1, x - 9999), x + 1))
    h = {"cmd": "get", "id": ctx.new_id(), "ids": real}
    r = ctx.req(h)
    if r.ok:
        if len(dumps(h)) > 64 * KIB:
            ctx.note("get of the 10,000 ids up to ours accepted in a %d-byte header (> 64 KiB)"
                     % len(dumps(h)))
        return
    if r.code == "too_large" and len(dumps(h)) > 64 * KIB:
        raise Fail("get of the 10,000 ids %d..%d (at the ids limit, §3 get \"≤ 10,000 ids\", §6 "
                   "ids per get/delete 10,000) is refused as too_large: its header is %d bytes, "
                   "over §6's 64 KiB header limit. The two limits contradict for ids of %d digits"
                   % (real[0], real[-1], len(dumps(h)), len(str(x))))
    raise Fail("get of 10,000 ids %d..%d: %s" % (real[0], real[-1], r.describe()))


@check("a7_limits_ids_delete")
def a7_limits_ids_delete(ctx):
    # §6: "ids per get/delete | 10,000 | `too_large`". One of our own ids repeated, so nothing
    # else can be deleted (ambiguity 15: duplicates).
    x = ctx.one_item()
    r = ctx.req({"cmd": "delete", "ids": [x] * 10001})
    if not r.ok and r.code == "bad_header":
        raise Note("delete with repeated ids refused as bad_header: %s" % r.describe())
    ctx.err(r, "too_large", "delete of 10,001 ids")
    items = ctx.ok(ctx.req({"cmd": "get", "ids": [x]}), "get").get("items")
    if not items or not isinstance(items[0], dict):
        raise Fail("a delete refused as too_large deleted item %d anyway" % x)
    h = {"cmd": "delete", "id": ctx.new_id(), "ids": [x] * 10000}
    r = ctx.req(h)
    if r.ok:
        d = r.result.get("deleted")
        if not isinstance(d, list) or set(d) != {x}:
            raise Fail("delete of [%d] × 10,000 reported deleted %r" % (x, d))
        return
    if r.code == "too_large" and len(dumps(h)) > 64 * KIB:
        raise Fail("delete of 10,000 ids (the limit of §6 ids per get/delete) refused as too_large: "
                   "%d ids of %d digits make a %d-byte header, over §6's 64 KiB header limit; "
                   "the two limits contradict" % (10000, len(str(x)), len(dumps(h))))
    raise Fail("delete of 10,000 ids: %s" % r.describe())


@check("a7_limits_dim")
def a7_limits_dim(ctx):
    # §3 knn: "`"vector"` (`"dim": d`, one vector frame)"; §6: "`dim` | 65,536 | `bad_header`";
    # but §4 too_large: "a count (images, ids, k, dim) over its limit" (ambiguity 3).
    e = ctx.req({"cmd": "embed", "images": [{}]}, [png(16, 16)])
    ctx.need_catalog(e, "embed")
    d = ctx.ok(e, "embed")["dim"]
    r = ctx.req({"cmd": "knn", "by": "vector", "dim": d, "k": 3}, [e.payload[0]])
    ctx.need_catalog(r, "knn by vector")
    ctx.ok(r, "knn by vector of the model's dim %d" % d)
    n = 65537
    r = ctx.req({"cmd": "knn", "by": "vector", "dim": n, "k": 3}, [f32_pack([0.0] * n)])
    err = ctx.err(r, ("bad_header", "too_large"), "knn by vector, dim 65,537")
    if err["code"] == "too_large":
        ctx.note("dim 65,537 got too_large: §4 lists dim under too_large, §6 says bad_header")
    n = 65536
    r = ctx.req({"cmd": "knn", "by": "vector", "dim": n, "k": 3}, [f32_pack([0.0] * n)])
    if r.ok:
        return
    if n == d:
        ctx.ok(r, "knn by vector of the model's dim %d" % d)
    if r.code == "too_large":
        raise Fail("dim 65,536 (at the §6 limit) refused as too_large")
    ctx.note("dim 65,536 ≠ the model's %d got %s: the error for a mismatched dim is unspecified, "
             "so the at-limit case cannot be told from the over-limit one" % (d, r.describe()))


@check("a7_limits_export")
def a7_limits_export(ctx):
    # §3 export: "(limit 1–10,000)"; no row in §6 and not among §4's counts (ambiguity 4).
    res, _ = _export_page(ctx, 0, 10000)
    for limit in (10001, 0):
        r = ctx.req({"cmd": "export", "after": 0, "limit": limit})
        e = ctx.err(r, ("too_large", "bad_header"), "export limit %d" % limit)
        if limit == 0 and e["code"] != "bad_header":
            ctx.note("export limit 0 got %s (a wrong value: bad_header expected)" % e["code"])
        if limit == 10001:
            ctx.note("export limit 10,001 got %s (the spec names no code)" % e["code"])


# ---------------------------------------------------------------- announcements (§5)

def _announcement_problems(a):
    # §5 frame 2: "JSON: {"version": 4, "path": "state/models/000004", "step": 2000,
    # "published_at": 1.80e9, "metrics": {...}}". "`metrics` is a flat map of numbers from the
    # step before publication: `loss.<term>` ..., `gradient_share.<term>` ..., `collapse` and
    # `images_per_second`. The initial version, published before any step, has only `collapse`
    # and `images_per_second`, both 0."
    if not isinstance(a, dict):
        return ["announcement is %r, not an object" % (a,)]
    bad = []
    for k, ok in (("version", lambda v: isinstance(v, int) and v >= 1),
                  ("path", lambda v: isinstance(v, str) and v),
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
    if a["step"] == 0 and m != {"collapse": 0, "images_per_second": 0}:
        bad.append("an initial version (step 0) must have only collapse and images_per_second, "
                   "both 0; metrics %r" % m)
    return bad


@check("announce_last_shape")
def announce_last_shape(ctx):
    # §3 last_announcement: "Result: {"announcement": announcement or null} — exactly the body
    # of the last PUB message (§5)."  §3 model: "Result: {"version", "path", "step",
    # "published_at"}"
    a = ctx.ok(ctx.req({"cmd": "last_announcement"}), "last_announcement").get("announcement")
    m = ctx.ok(ctx.req({"cmd": "model"}), "model")
    if a is None:
        if isinstance(m.get("version"), int) and m["version"] >= 1:
            raise Note("no announcement although model is at version %d (the daemon may have "
                       "restarted; spec silent, ambiguity 14)" % m["version"])
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


@check("announce_pub")
def announce_pub(ctx):
    # §5: "On every model publication the daemon sends on its PUB socket a 3-frame message:
    # 0 topic `model`, 1 `glfd/1`, 2 JSON". §3 last_announcement: "exactly the body of the last
    # PUB message". "The files under `path` are complete when the announcement is sent".
    if ctx.sub is None:
        raise Note("not watching announcements (give --announce-wait S, or --fresh)")
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
    if os.path.isdir(d):  # only when run beside the daemon, from its working directory
        missing = [f for f in ("model.safetensors", "config.json", "stats.json")
                   if not os.path.isfile(os.path.join(d, f))]
        if missing:
            ctx.note("%s lacks %s (it may already have been pruned: last K versions)" % (d, missing))


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


def main(argv=None):
    p = argparse.ArgumentParser(description="glfd/1 conformance checks from PROTOCOL.md")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5555")
    p.add_argument("--announce", default="tcp://127.0.0.1:5556")
    p.add_argument("--only", action="append", default=[],
                   help="check names or patterns, comma-separated or repeated")
    p.add_argument("--fresh", action="store_true",
                   help="glfd was started moments ago on an empty state directory")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.add_argument("--big-timeout", type=float, default=120.0,
                   help="seconds for requests of many MiB")
    p.add_argument("--startup-timeout", type=float, default=300.0,
                   help="a3: seconds to wait for the first model version")
    p.add_argument("--announce-wait", type=float, default=0.0,
                   help="announce_pub: seconds to wait for a PUB message (0: skip)")
    p.add_argument("--keep", action="store_true", help="do not delete the items we ingested")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    args = p.parse_args(argv)

    if args.list:
        for name, _, fresh in CHECKS:
            print(name + ("  (--fresh)" if fresh else ""))
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

    zctx = zmq.Context()
    ctx = Ctx(args, zctx)
    if args.fresh or args.announce_wait > 0:
        ctx.sub = zctx.socket(zmq.SUB)
        ctx.sub.setsockopt(zmq.LINGER, 0)
        ctx.sub.setsockopt(zmq.SUBSCRIBE, b"model")
        ctx.sub.connect(args.announce)

    failed = 0
    for name, fn, fresh in selected:
        ctx.name = name
        if fresh and not args.fresh:
            print("NOTE %s: needs --fresh (a daemon just started on an empty state); skipped"
                  % name, flush=True)
            continue
        try:
            fn(ctx)
            print("PASS %s" % name, flush=True)
        except Fail as e:
            failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
        except Note as e:
            print("NOTE %s: %s" % (name, e), flush=True)
        except Timeout as e:
            failed += 1
            print("FAIL %s: %s (a request got no reply)" % (name, e), flush=True)
        except Exception as e:  # a bug here or a reply of the wrong shape
            failed += 1
            print("FAIL %s: unexpected %s: %s" % (name, type(e).__name__, e), flush=True)
        drain_announcements(ctx)

    ctx.name = "cleanup"
    if ctx.created and not args.keep:
        try:
            ctx.delete(sorted(set(ctx.created)))
        except (Fail, Note, Timeout) as e:
            print("NOTE cleanup: could not delete our %d items: %s" % (len(ctx.created), e))
    ctx.client.close()
    if ctx.sub is not None:
        ctx.sub.close(linger=0)
    zctx.term()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
