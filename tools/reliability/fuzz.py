#!/usr/bin/python3
"""Protocol fuzz: many mutated glfd/1 messages over several DEALER sockets, each with a window of
requests in flight, against one daemon.

Families (see `Generator`): wrong frame counts, wrong version frames, empty/truncated/garbage/deep
JSON headers, headers over 64 KiB, missing/wrong-typed/unknown `cmd`, wrong field types, huge and
negative numbers (k, ids, dim, limit, item), NaN/inf vectors, vector frames of the wrong size,
payload frames where none belong, bad image bytes, raw images of the wrong length, wrong declared
formats, weird request ids, random byte mutations of valid requests, and valid requests in between.

Checks:
  hard  every message gets a reply (ZeroMQ drops nothing here: every frame is < 16 MiB); no reply
        is malformed; no `internal`; the daemon does not crash and answers status at the end
  soft  (reported, exit 0) the error code is one the protocol prescribes for that family
        (`unexpected` by family), the request's id is echoed when its header was readable
        (`missing_id`), an error about one image has the right `index` (`index_problems`)

A last step speaks raw ZMTP over TCP and sends --partial-mb MiB of frames of a multipart message it
never finishes, and reports the daemon's RSS growth (unbounded buffering shows as growth ≈ MiB sent).

    /usr/bin/python3 tools/reliability/fuzz.py --glfd /tmp/rel-glfd/glfd --messages 100000

Exit status 1 on a hard failure.
"""
import argparse
import collections
import json
import math
import os
import random
import socket as pysocket
import struct
import sys
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import VERSION, Daemon, DaemonError, Reply  # noqa: E402

NONE, UNKNOWN = "none", "unknown"   # echo expectations besides the tag itself
ANY = None                          # any code (but internal) or ok


class Message:
    __slots__ = ("family", "frames", "expect", "echo", "index", "tag", "sent_at")

    def __init__(self, family, frames, expect, echo, index=None, tag=None):
        self.family, self.frames, self.expect, self.echo, self.index, self.tag = family, frames, expect, echo, index, tag


class Generator:
    """Builds one random message per call; `tag` is the request id it carries when it carries one."""

    def __init__(self, rng, dim, items, images):
        self.rng, self.dim, self.items, self.images = rng, dim, items, images
        self.families = [
            (3, self.frame_counts), (3, self.versions), (6, self.headers), (4, self.commands),
            (10, self.get_delete), (10, self.knn), (4, self.export), (12, self.images_family),
            (4, self.ids_family), (14, self.mutated), (12, self.valid),
        ]
        self.total = sum(w for w, _ in self.families)

    def __call__(self, tag):
        pick = self.rng.uniform(0, self.total)
        for weight, family in self.families:
            pick -= weight
            if pick <= 0:
                return family(tag)
        return self.valid(tag)

    # helpers -------------------------------------------------------------------------------
    def hdr(self, tag, **fields):
        return json.dumps(dict(fields, id=tag), separators=(",", ":")).encode()

    def valid_image(self):
        data, descriptor = self.rng.choice(self.images)
        return data, dict(descriptor)

    def encoded_image(self):
        data, descriptor = self.rng.choice([x for x in self.images if x[1].get("format") != "raw"])
        return data, dict(descriptor)

    def garbage_image(self):
        r = self.rng
        jpeg, _ = self.images[0]
        kind = r.randrange(6)
        if kind == 0:
            return r.randbytes(r.randrange(1, 2000))
        if kind == 1:
            return b"hello, not an image"
        if kind == 2:
            return jpeg[:r.randrange(1, len(jpeg) - 2)]
        if kind == 3:
            return b"GIF89a" + r.randbytes(50)
        if kind == 4:
            return b"\x89PNG\r\n\x1a\n" + r.randbytes(r.randrange(0, 100))
        return b"\xff\xd8\xff" + r.randbytes(r.randrange(0, 300))

    def vector(self, dim, poison=None):
        values = [self.rng.uniform(-1, 1) for _ in range(dim)]
        if poison:
            values[self.rng.randrange(dim)] = poison
        return struct.pack(f"<{dim}f", *values)

    # families ------------------------------------------------------------------------------
    def frame_counts(self, tag):
        r = self.rng
        k = r.randrange(7)
        if k == 0:
            return Message("frames.empty_frame", [b""], {"bad_frames"}, NONE)
        if k == 1:
            return Message("frames.version_only", [VERSION], {"bad_frames"}, NONE)
        if k == 2:  # one frame, not the protocol: PROTOCOL.md §2 says unsupported_version
            return Message("frames.one_foreign_frame", [r.choice([b"hello", b"GET / HTTP/1.1", r.randbytes(20)])],
                           {"unsupported_version"}, NONE)
        if k == 3:
            cmd = r.choice(["status", "model", "last_announcement", "export", "get", "delete"])
            fields = {"ids": [1]} if cmd in ("get", "delete") else {}
            return Message("frames.extra_payload", [VERSION, self.hdr(tag, cmd=cmd, **fields)] + [r.randbytes(8)] * r.randrange(1, 4),
                           {"bad_frames"}, tag)
        if k == 4:
            n = r.randrange(1, 5)
            data, d = self.valid_image()
            frames = [data] * (n + r.choice([-1, 1]))
            return Message("frames.image_count_mismatch", [VERSION, self.hdr(tag, cmd=r.choice(["ingest", "embed"]), images=[d] * n)] + frames,
                           {"bad_frames"}, tag)
        if k == 5:
            return Message("frames.knn_item_with_frame", [VERSION, self.hdr(tag, cmd="knn", by="item", item=1), b"x"], {"bad_frames"}, tag)
        return Message("frames.knn_image_no_frame", [VERSION, self.hdr(tag, cmd="knn", by="image")], {"bad_frames"}, tag)

    def versions(self, tag):
        r = self.rng
        version = r.choice([b"glfd/2", b"GLFD/1", b"glfd/1 ", b"glfd/", b"glfd/10", b"glfd/1\x00", b"", b"HTTP/1.1 200 OK",
                            r.randbytes(r.randrange(1, 40))])
        if version == VERSION:
            version = b"glfd/0"
        frames = [version, self.hdr(tag, cmd="status")] + [b"x"] * r.randrange(0, 3)
        if version == b"":  # an empty first frame reads as a REQ delimiter: the body is what follows
            return Message("version.empty_then_valid", frames, ANY, UNKNOWN)
        return Message("version.wrong", frames, {"unsupported_version"}, NONE)

    def headers(self, tag):
        r = self.rng
        k = r.randrange(11)
        good = self.hdr(tag, cmd="status")
        if k == 0:
            return Message("header.empty", [VERSION, b""], {"bad_header"}, NONE)
        if k == 1:
            return Message("header.truncated", [VERSION, good[:r.randrange(1, len(good) - 1)]], {"bad_header"}, NONE)
        if k == 2:
            return Message("header.not_object", [VERSION, r.choice([b"[]", b'"status"', b"42", b"null", b"true", b'[{"cmd":"status"}]'])],
                           {"bad_header"}, NONE)
        if k == 3:
            return Message("header.garbage", [VERSION, r.randbytes(r.randrange(1, 300))], {"bad_header"}, NONE)
        if k == 4:  # invalid UTF-8 inside a string
            return Message("header.bad_utf8", [VERSION, b'{"cmd":"sta\xff\xfetus","id":' + json.dumps(tag).encode() + b"}"],
                           {"bad_header", "unknown_command"}, UNKNOWN)
        if k == 5:  # deep nesting in an unknown field (a recursive parser without a limit overflows its stack)
            depth = r.choice([100, 1000, 10000, 30000])
            body = b'{"cmd":"status","id":' + json.dumps(tag).encode() + b',"deep":' + b"[" * depth + b"]" * depth + b"}"
            return Message("header.deep_nesting", [VERSION, body], {"bad_header", "ok"}, UNKNOWN)
        if k == 6:  # over 64 KiB
            pad = "p" * (65536 + r.randrange(1, 5000))
            return Message("header.over_64k", [VERSION, self.hdr(tag, cmd="status", pad=pad)], {"too_large"}, NONE)
        if k == 7:  # lenient-parser territory: BOM, comments, NaN literal, trailing comma, single quotes
            body = r.choice([b"\xef\xbb\xbf" + good, b'{"cmd":"status", /* c */ "id":' + json.dumps(tag).encode() + b"}",
                             b'{"cmd":"status","x":NaN,"id":' + json.dumps(tag).encode() + b"}",
                             b'{"cmd":"status","id":' + json.dumps(tag).encode() + b",}", b"{'cmd':'status'}"])
            return Message("header.lenient_json", [VERSION, body], {"bad_header", "ok"}, UNKNOWN)
        if k == 8:  # huge numbers in unknown fields
            body = b'{"cmd":"status","id":' + json.dumps(tag).encode() + b',"n":' + r.choice([b"1e400", b"-1e400", b"9" * 400, b"1e-400"]) + b"}"
            return Message("header.huge_number_unknown_field", [VERSION, body], {"bad_header", "ok"}, UNKNOWN)
        if k == 9:  # duplicate keys
            body = b'{"cmd":"status","cmd":"model","id":' + json.dumps(tag).encode() + b"}"
            return Message("header.duplicate_keys", [VERSION, body], {"bad_header", "ok"}, UNKNOWN)
        return Message("header.unknown_fields", [VERSION, self.hdr(tag, cmd="status", trace={"a": [1, 2, {"b": None}]}, x=1.5)], {"ok"}, tag)

    def commands(self, tag):
        r = self.rng
        k = r.randrange(4)
        if k == 0:
            return Message("cmd.missing", [VERSION, self.hdr(tag, ids=[1])], {"bad_header"}, tag)
        if k == 1:
            return Message("cmd.wrong_type", [VERSION, self.hdr(tag, cmd=r.choice([1, None, ["status"], {"x": 1}, True]))], {"bad_header"}, tag)
        if k == 2:
            cmd = r.choice(["", "STATUS", "fly", "status ", "ingest\x00", "é" * 50, "x" * r.randrange(100, 20000), "get;drop", "__proto__"])
            return Message("cmd.unknown", [VERSION, self.hdr(tag, cmd=cmd)], {"unknown_command"}, tag)
        return Message("cmd.unknown_with_payloads", [VERSION, self.hdr(tag, cmd="teleport")] + [b"x"] * r.randrange(1, 4), {"unknown_command", "bad_frames"}, tag)

    def get_delete(self, tag):
        r = self.rng
        cmd = r.choice(["get", "get", "delete"])
        k = r.randrange(12)
        if k == 0:
            return Message(f"{cmd}.ids_missing", [VERSION, self.hdr(tag, cmd=cmd)], {"bad_header"}, tag)
        if k == 1:
            return Message(f"{cmd}.ids_wrong_type", [VERSION, self.hdr(tag, cmd=cmd, ids=r.choice(["1", 1, {"a": 1}, None, [[1]], ["1"], [True]]))],
                           {"bad_header"}, tag)
        if k == 2:
            return Message(f"{cmd}.ids_negative", [VERSION, self.hdr(tag, cmd=cmd, ids=[1, -r.randrange(1, 1 << 62)])], {"bad_header"}, tag)
        if k == 3:
            return Message(f"{cmd}.ids_over_u64", [VERSION, self.hdr(tag, cmd=cmd, ids=[r.choice([1 << 64, 10 ** 30, (1 << 64) + 5])])], {"bad_header"}, tag)
        if k == 4:
            return Message(f"{cmd}.ids_fraction", [VERSION, self.hdr(tag, cmd=cmd, ids=[1.5])], {"bad_header"}, tag)
        if k == 5:
            n = 10001 + r.randrange(0, 100)  # small ids: the header stays under 64 KiB
            return Message(f"{cmd}.ids_over_limit", [VERSION, self.hdr(tag, cmd=cmd, ids=list(range(1, n + 1)))], {"too_large"}, tag)
        if k == 6 and cmd == "get":
            return Message("get.pixels_wrong_type", [VERSION, self.hdr(tag, cmd="get", ids=[1], pixels=r.choice(["yes", 1, []]))],
                           {"bad_header"}, tag)
        if k == 7:
            return Message(f"{cmd}.ids_empty", [VERSION, self.hdr(tag, cmd=cmd, ids=[])], {"ok"}, tag)
        if cmd == "delete":  # only ids that cannot exist: the store must keep its items for knn
            ids = [r.randrange(1 << 40, 1 << 63) for _ in range(r.randrange(1, 50))]
            return Message("delete.absent", [VERSION, self.hdr(tag, cmd="delete", ids=ids)], {"ok"}, tag)
        ids = [r.choice(self.items) if self.items and r.random() < 0.7 else r.randrange(0, 1 << 63) for _ in range(r.randrange(1, 64))]
        ids.append((1 << 64) - 1)
        return Message("get.valid", [VERSION, self.hdr(tag, cmd="get", ids=ids, pixels=r.random() < 0.3)], {"ok"}, tag)

    def knn(self, tag):
        r = self.rng
        k = r.randrange(16)
        NR = {"not_ready"}  # knn answers not_ready before decoding images or checking items/dim
        if k == 0:
            kk = r.choice([0, -1, -(1 << 40)])
            return Message("knn.k_not_positive", [VERSION, self.hdr(tag, cmd="knn", by="item", item=1, k=kk)], {"bad_header"}, tag)
        if k == 1:
            kk = r.choice([1001, 10 ** 6, (1 << 62)])
            return Message("knn.k_over_limit", [VERSION, self.hdr(tag, cmd="knn", by="item", item=1, k=kk)], {"too_large"}, tag)
        if k == 2:
            body = b'{"cmd":"knn","by":"item","item":1,"id":' + json.dumps(tag).encode() + b',"k":' + r.choice(
                [b"9223372036854775808", b"1e308", b"1.5", b'"5"', b"null", b"[5]", b"-9223372036854775809"]) + b"}"
            expect = {"bad_header"} if b"null" not in body else {"ok", "not_found"} | NR
            return Message("knn.k_wrong_type", [VERSION, body], expect, tag)
        if k == 3:
            return Message("knn.by_unknown", [VERSION, self.hdr(tag, cmd="knn", by=r.choice(["foo", "", "ITEM", "vectors"]))], {"bad_header"}, tag)
        if k == 4:
            return Message("knn.by_wrong_type", [VERSION, self.hdr(tag, cmd="knn", by=r.choice([1, None, ["item"]]), item=1)],
                           {"bad_header", "bad_frames", "ok", "not_found"} | NR, tag)  # by null = default "image"
        if k == 5:
            return Message("knn.item_missing", [VERSION, self.hdr(tag, cmd="knn", by="item")], {"bad_header"}, tag)
        if k == 6:
            return Message("knn.item_bad", [VERSION, self.hdr(tag, cmd="knn", by="item", item=r.choice([-1, 1.5, "1", 1 << 64, None]))],
                           {"bad_header"}, tag)
        if k == 7:
            return Message("knn.item_absent", [VERSION, self.hdr(tag, cmd="knn", by="item", item=r.randrange(1 << 40, 1 << 64))],
                           {"not_found"} | NR, tag)
        if k == 8:
            dim = r.choice([0, -1, 65537, 1 << 40])
            return Message("knn.dim_out_of_range", [VERSION, self.hdr(tag, cmd="knn", by="vector", dim=dim), b"\0" * 8], {"bad_header"}, tag)
        if k == 9:
            dim = self.dim
            frame = self.vector(dim)[:-r.choice([1, 4])] if r.random() < 0.5 else self.vector(dim) + b"\0\0\0\0"
            return Message("knn.vector_frame_size", [VERSION, self.hdr(tag, cmd="knn", by="vector", dim=dim), frame], {"bad_frames"}, tag)
        if k == 10:
            poison = r.choice([math.nan, math.inf, -math.inf])
            return Message("knn.vector_nonfinite", [VERSION, self.hdr(tag, cmd="knn", by="vector", dim=self.dim), self.vector(self.dim, poison)],
                           {"bad_header"}, tag)
        if k == 11:
            dim = r.choice([d for d in (1, 3, 64, 127, 129, 256, 1024) if d != self.dim])
            return Message("knn.vector_wrong_dim", [VERSION, self.hdr(tag, cmd="knn", by="vector", dim=dim), self.vector(dim)],
                           {"bad_header"} | NR, tag)
        if k == 12:
            return Message("knn.bad_image", [VERSION, self.hdr(tag, cmd="knn", by="image"), self.garbage_image()], {"bad_image"} | NR, tag, index=0)
        if k == 13:
            field = r.choice([{"source": 5}, {"exact": "true"}, {"image": []}, {"source": None, "exact": 1}])
            return Message("knn.field_wrong_type", [VERSION, self.hdr(tag, cmd="knn", by="item", item=1, **field)], {"bad_header"}, tag)
        if k == 14:
            header = self.hdr(tag, cmd="knn", by="vector", dim=self.dim, k=r.randrange(1, 1001), exact=r.random() < 0.5,
                              source=r.choice(["fuzz", "nope"]))
            return Message("knn.vector_valid", [VERSION, header, self.vector(self.dim)], {"ok"} | NR, tag)
        item = r.choice(self.items) if self.items else 1
        return Message("knn.item_valid", [VERSION, self.hdr(tag, cmd="knn", by="item", item=item, k=r.randrange(1, 50),
                                                             source=r.choice(["fuzz", "other"]))], {"ok"} | NR, tag)

    def export(self, tag):
        r = self.rng
        k = r.randrange(4)
        if k == 0:
            return Message("export.limit_bad", [VERSION, self.hdr(tag, cmd="export", limit=r.choice([0, -5]))], {"bad_header"}, tag)
        if k == 1:
            return Message("export.limit_over", [VERSION, self.hdr(tag, cmd="export", limit=r.choice([10001, 1 << 40]))], {"too_large"}, tag)
        if k == 2:
            return Message("export.after_bad", [VERSION, self.hdr(tag, cmd="export", after=r.choice([-1, "0", 1 << 64, 0.5]))], {"bad_header"}, tag)
        return Message("export.valid", [VERSION, self.hdr(tag, cmd="export", after=r.randrange(0, 100), limit=r.randrange(1, 64))],
                       {"ok", "not_ready"}, tag)

    def images_family(self, tag):
        r = self.rng
        cmd = "embed" if r.random() < 0.75 else "ingest"
        k = r.randrange(13)
        ok = {"ok", "busy"} if cmd == "ingest" else {"ok"}
        if k == 0:
            return Message(f"{cmd}.images_missing_or_empty", [VERSION, self.hdr(tag, cmd=cmd, **r.choice([{}, {"images": []}]))], {"bad_header"}, tag)
        if k == 1:
            return Message(f"{cmd}.images_wrong_type", [VERSION, self.hdr(tag, cmd=cmd, images=r.choice([{}, "x", [1], [[]], None]))],
                           {"bad_header"}, tag)
        if k == 2:
            n = r.choice([257, 300, 1000])
            return Message(f"{cmd}.over_256_images", [VERSION, self.hdr(tag, cmd=cmd, images=[{}] * n)] + [b"x"] * r.randrange(0, 3),
                           {"too_large"}, tag)
        n = r.randrange(1, 5)
        images = [self.valid_image() for _ in range(n)]
        bad = r.randrange(n)
        data, d = images[bad]
        if k == 3:
            images[bad] = (self.garbage_image(), {})
            expect, family = {"bad_image"}, "bad_bytes"
        elif k == 4:
            w, h, c = r.randrange(1, 64), r.randrange(1, 64), r.choice([1, 3, 4])
            length = w * h * c + r.choice([-1, 1, 7, -w])
            if length <= 0 or length == w * h * c:
                length = w * h * c + 1
            images[bad] = (r.randbytes(length), {"format": "raw", "width": w, "height": h, "channels": c})
            expect, family = {"bad_image"}, "raw_wrong_length"
        elif k == 5:
            d = {"format": "raw", "width": 4, "height": 4, "channels": 3}
            change = r.choice([{"channels": 2}, {"channels": 0}, {"width": 0}, {"height": -1}, {"width": 70000}, {"channels": None}])
            d.update(change)
            images[bad] = (b"\0" * 48, {k2: v for k2, v in d.items() if v is not None})
            # PROTOCOL.md's edge table: a side over 16,384 is a property of the image (bad_image),
            # a descriptor that cannot describe one is a header error.
            expect, family = ({"bad_image"} if change.get("width") == 70000 else {"bad_header"}), "raw_bad_shape"
        elif k == 6:
            images[bad] = (b"", {})
            expect, family = {"bad_image"}, "empty_frame"
        elif k == 7:  # PNG bytes declared JPEG or the other way round
            png_bytes = next((x for x, dd in self.images if x[:4] == b"\x89PNG"), None)
            jpeg_bytes = next((x for x, dd in self.images if x[:2] == b"\xff\xd8"), None)
            choice = r.choice([(png_bytes, "jpeg"), (jpeg_bytes, "png")])
            if choice[0] is None:
                choice = (png_bytes or jpeg_bytes, "jpeg" if png_bytes else "png")
            images[bad] = (choice[0], {"format": choice[1]})
            expect, family = {"bad_image"}, "wrong_declared_format"
        elif k == 8:
            data, d = self.encoded_image()
            images[bad] = (data, dict(d, format=r.choice(["gif", "JPEG", "", 1, None])))
            if images[bad][1]["format"] is None:
                expect, family = ok, "format_null"
            else:
                expect, family = {"bad_header"}, "format_unknown"
        elif k == 9:
            images[bad] = (data, dict(d, source="s" * r.randrange(257, 2000)))
            expect, family = {"too_large"}, "source_over_256"
        elif k == 10:
            images[bad] = (data, dict(d, meta=r.choice([5, ["m"], {"a": 1}])))
            expect, family = {"bad_header"}, "meta_wrong_type"
        elif k == 11:  # explicit "auto" is the documented default
            data, d = self.encoded_image()
            images[bad] = (data, dict(d, format="auto"))
            expect, family = ok, "format_auto_explicit"
        else:
            d2 = dict(d, meta="m" * r.randrange(0, 2000), source="fuzz")
            images[bad] = (data, d2)
            expect, family = ok, "valid"
        if cmd == "ingest" and family in ("bad_bytes", "wrong_declared_format"):
            expect = expect | {"busy"}  # decoded by the daemon, after the per-client ingest cap
        header = self.hdr(tag, cmd=cmd, images=[x[1] for x in images])
        index = bad if family not in ("valid", "format_null", "format_auto_explicit", "meta_wrong_type", "format_unknown") else None
        if family == "raw_bad_shape":
            index = bad
        return Message(f"{cmd}.{family}", [VERSION, header] + [x[0] for x in images], expect, tag, index=index)

    def ids_family(self, tag):
        r = self.rng
        number = tag if isinstance(tag, int) else int(tag[1:])
        k = r.randrange(3)
        if k == 0:  # ids that are neither an integer nor a string: bad_header, no id
            weird = r.choice([b"1.5", b"true", b'{"a":1}', b"[1]", b"1" + b"0" * 30, b"2.5e-1"])
            return Message("id.wrong_type", [VERSION, b'{"cmd":"status","id":' + weird + b"}"], {"bad_header"}, NONE)
        weird_id = -number if k == 1 else "i" * r.randrange(0, 5000) + f"-{number}-é\u0000"
        header = json.dumps({"cmd": "status", "id": weird_id}).encode()
        return Message("id.negative_or_long_string", [VERSION, header], {"ok"}, weird_id, tag=weird_id)

    def mutated(self, tag):
        r = self.rng
        base = self.valid(tag)
        frames = list(base.frames)
        for _ in range(r.randrange(1, 4)):
            op = r.randrange(7)
            if op == 0 and len(frames) > 1:  # flip bytes in the header
                h = bytearray(frames[1])
                for _ in range(r.randrange(1, 4)):
                    if h:
                        h[r.randrange(len(h))] = r.randrange(256)
                frames[1] = bytes(h)
            elif op == 1 and len(frames) > 1:
                frames[1] = frames[1][:r.randrange(0, len(frames[1]) + 1)]
            elif op == 2 and len(frames) > 1:
                h = frames[1]
                at = r.randrange(len(h) + 1)
                frames[1] = h[:at] + r.choice([b",", b"{", b"}", b"[", b'"', b":", b"-1", b"null", b"\\u0000", b"\x00"]) + h[at:]
            elif op == 3:
                frames.append(r.randbytes(r.randrange(0, 64)))
            elif op == 4 and len(frames) > 1:
                del frames[r.randrange(len(frames))]
            elif op == 5 and len(frames) > 2:
                i = r.randrange(2, len(frames))
                f = bytearray(frames[i])
                if f:
                    f[r.randrange(len(f))] ^= 1 << r.randrange(8)
                frames[i] = bytes(f)
            elif op == 6 and len(frames) > 1:
                i, j = r.randrange(len(frames)), r.randrange(len(frames))
                frames[i], frames[j] = frames[j], frames[i]
        if not frames:
            frames = [b""]
        return Message("mutated." + base.family, frames, ANY, UNKNOWN)

    def valid(self, tag):
        r = self.rng
        k = r.randrange(9)
        if k == 0:
            return Message("valid.status", [VERSION, self.hdr(tag, cmd="status")], {"ok"}, tag)
        if k == 1:
            return Message("valid.model", [VERSION, self.hdr(tag, cmd="model")], {"ok"}, tag)
        if k == 2:
            return Message("valid.last_announcement", [VERSION, self.hdr(tag, cmd="last_announcement")], {"ok"}, tag)
        if k == 3:
            ids = [r.choice(self.items) for _ in range(r.randrange(1, 20))] if self.items else [1]
            return Message("valid.get", [VERSION, self.hdr(tag, cmd="get", ids=ids, pixels=r.random() < 0.5)], {"ok"}, tag)
        if k == 4:
            item = r.choice(self.items) if self.items else 1
            return Message("valid.knn_item", [VERSION, self.hdr(tag, cmd="knn", by="item", item=item, k=r.randrange(1, 20))],
                           {"ok", "not_ready"}, tag)
        if k == 5:
            return Message("valid.knn_vector", [VERSION, self.hdr(tag, cmd="knn", by="vector", dim=self.dim, k=5), self.vector(self.dim)],
                           {"ok", "not_ready"}, tag)
        if k == 6:
            data, d = self.valid_image()
            return Message("valid.knn_image", [VERSION, self.hdr(tag, cmd="knn", by="image", image=d, k=3), data], {"ok", "not_ready"}, tag)
        if k == 7:
            data, d = self.valid_image()
            return Message("valid.embed", [VERSION, self.hdr(tag, cmd="embed", images=[d]), data], {"ok"}, tag)
        return Message("valid.export", [VERSION, self.hdr(tag, cmd="export", after=0, limit=16)], {"ok", "not_ready"}, tag)


# -------------------------------------------------------------------------------------------------
# Raw ZMTP: a multipart message that never ends


def partial_multipart(endpoint, megabytes, daemon, frame_mib=1):
    """Sends `megabytes` MiB of frames with the MORE flag and never the last frame; returns
    (rss before, rss after sending, rss 3 s after disconnecting) in MiB."""
    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    before = daemon.rss_mb()
    s = pysocket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31)
    greeting = b""
    while len(greeting) < 64:
        part = s.recv(64 - len(greeting))
        if not part:
            raise OSError("the server closed the connection during the ZMTP greeting")
        greeting += part
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    s.sendall(bytes([0x04, len(body)]) + body)
    s.recv(4096)  # the server's READY
    s.sendall(bytes([0x01, 6]) + VERSION)
    frame = b"\x00" * (frame_mib << 20)
    header = bytes([0x03]) + struct.pack(">Q", len(frame))
    sent = 0
    while sent < megabytes:
        s.sendall(header + frame)
        sent += frame_mib
    time.sleep(2.0)
    during = daemon.rss_mb()
    s.close()
    time.sleep(3.0)
    return before, during, daemon.rss_mb()


# -------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_daemon_arguments(parser, training="off")
    parser.add_argument("--messages", type=int, default=100000)
    parser.add_argument("--sockets", type=int, default=8)
    parser.add_argument("--window", type=int, default=16, help="requests in flight per socket")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a message may wait for its reply")
    parser.add_argument("--partial-mb", type=int, default=64, help="MiB of an unfinished multipart message (0: skip)")
    parser.add_argument("--show", type=int, default=3, help="examples printed per unexpected family")
    args = parser.parse_args()
    if args.sockets < 2:
        parser.error("--sockets must be at least 2 (a quarter of them take the messages answered in order)")
    rng = random.Random(args.seed)
    daemon = Daemon(args.glfd, state=args.state, settings=common.daemon_settings(args), prefix="glfd-fuzz-")
    hard = []
    try:
        daemon.start()
        client = common.Client(daemon.endpoint, prefix="setup")
        jpegs = common.cifar_jpegs(40)
        images = [(j, {}) for j in jpegs[:20]]
        images += [(common.png(32, 32, common.pattern_pixels(i)), {}) for i in range(20)]
        images += [(common.pattern_pixels(100 + i, 16, 24, 3), {"format": "raw", "width": 16, "height": 24, "channels": 3}) for i in range(10)]
        reply = client.call({"cmd": "ingest", "images": [dict(d, source="fuzz") for _, d in images]}, [x for x, _ in images], timeout=120)
        items = reply.result["ids"] if reply is not None and reply.ok else []
        if not items:
            print(f"warning: setup ingest failed: {reply}", flush=True)
        reply = client.call({"cmd": "embed", "images": [{}]}, [images[-11][0]], timeout=120)
        dim = reply.result["dim"] if reply is not None and reply.ok else 128
        client.close()
        time.sleep(1.0)
        rss_before, anon_before = daemon.rss_mb(), daemon.rss_mb("RssAnon")
        print(f"fuzz: daemon pid {daemon.pid} on {daemon.endpoint}, dim {dim}, {len(items)} items, RSS {rss_before:.1f} MiB; "
              f"{args.messages} messages over {args.sockets} sockets × {args.window} in flight", flush=True)

        generator = Generator(rng, dim, items, images)
        sockets = [common.dealer(daemon.endpoint) for _ in range(args.sockets)]
        poller = zmq.Poller()
        for s in sockets:
            poller.register(s, zmq.POLLIN)
        outstanding = [collections.OrderedDict() for _ in sockets]  # tag -> Message
        codes = collections.Counter()
        by_family = collections.defaultdict(collections.Counter)
        unexpected = collections.defaultdict(list)
        counts = collections.Counter()
        sent = answered = 0
        next_tag = 1
        started = time.monotonic()
        last_report = started

        def note(key, text):
            unexpected[key].append(text if len(unexpected[key]) < args.show else None)

        def match(index, reply):
            table = outstanding[index]
            rid = reply.id if reply.has_id else None
            if isinstance(rid, bool) or not isinstance(rid, (int, str)):
                rid = None
            code = reply.code or "ok"
            if index < fifo_sockets:
                if not table:
                    return None
                message = table.pop(next(iter(table)))
                if reply.has_id:
                    counts["unexpected_id"] += 1
                    note(f"unexpected_id {message.family}", f"reply {reply.header}")
                return message
            message = None
            if rid is not None and (rid, type(rid)) in table:
                message = table.pop((rid, type(rid)))

            if message is None:
                # Replies without an id we know: the oldest id-less message that allows this code.
                candidates = [(k, m) for k, m in table.items() if m.echo == UNKNOWN]
                chosen = next((k for k, m in candidates if m.expect is ANY or code in m.expect),
                              candidates[0][0] if candidates else None)
                if chosen is not None:
                    message = table.pop(chosen)
                    if message.expect is not ANY and code not in message.expect:
                        # Matched by elimination only (a mutated request lost its id, so its reply
                        # may be taken for another's): tallied, not judged.
                        counts["ambiguous_matches"] += 1
                        message = Message(message.family, message.frames, ANY, UNKNOWN)
            if message is None and table:
                # An error without the id we sent (a readable header): PROTOCOL.md says it is echoed.
                key = next((k for k, m in table.items() if m.expect is ANY or code in m.expect), next(iter(table)))
                message = table.pop(key)
                counts["missing_id"] += 1
                note(f"missing_id {message.family}", f"sent id {message.echo!r}, reply {reply.header}")
            return message

        # Messages whose header the daemon must not read (echo NONE: wrong frames, version, size,
        # unreadable JSON) are all answered at once, in order, by the request loop: they go to their
        # own sockets and are matched first in, first out. The others carry ids and share the rest.
        fifo_sockets = max(1, args.sockets // 4)
        pending = {True: collections.deque(), False: collections.deque()}
        generated = 0
        while sent < args.messages or any(outstanding):
            now = time.monotonic()
            for index, s in enumerate(sockets):
                fifo = index < fifo_sockets
                while len(outstanding[index]) < args.window:
                    if not pending[fifo]:
                        if generated >= args.messages or len(pending[not fifo]) > 10000:
                            break
                        tag = next_tag if rng.random() < 0.7 else f"s{next_tag}"
                        next_tag += 1
                        message = generator(tag)
                        if message.tag is None:
                            message.tag = tag
                        generated += 1
                        pending[message.echo == NONE].append(message)
                        continue
                    message = pending[fifo].popleft()
                    message.sent_at = now
                    outstanding[index][(message.tag, type(message.tag))] = message
                    s.send_multipart(message.frames, copy=False)
                    sent += 1
            for s, _ in poller.poll(100):
                index = sockets.index(s)
                while s.poll(0):
                    reply = Reply(s.recv_multipart())
                    answered += 1
                    message = match(index, reply)
                    if message is None:
                        counts["unmatched_replies"] += 1
                        continue
                    code = "ok" if reply.ok else reply.code
                    if reply.problem:
                        counts["malformed_replies"] += 1
                        note(f"malformed reply {message.family}", reply.problem)
                    codes[code] += 1
                    by_family[message.family][code] += 1
                    if code == "internal":
                        counts["internal"] += 1
                        note(f"internal {message.family}", f"{reply.error}; frames {[f[:80] for f in message.frames[:3]]}")
                    elif message.expect is not ANY and code not in message.expect:
                        counts["unexpected"] += 1
                        note(f"code {message.family} -> {code}",
                             f"expected {sorted(message.expect)}; {reply.error}; frames {[f[:160] for f in message.frames[:2]]}")
                    if message.index is not None and code in ("bad_image", "too_large", "bad_header") and reply.index != message.index:
                        counts["index_problems"] += 1
                        note(f"index {message.family}", f"expected index {message.index}, reply {reply.error}")
            now = time.monotonic()
            for index, table in enumerate(outstanding):
                while table:
                    key, m = next(iter(table.items()))
                    if now - m.sent_at < args.timeout:
                        break
                    del table[key]
                    counts["unanswered"] += 1
                    note(f"unanswered {m.family}", f"{[f[:80] for f in m.frames[:3]]}")
            if not daemon.alive():
                counts["crashes"] += 1
                hard.append(f"glfd died (status {daemon.process.returncode}) after {sent} messages:\n{daemon.log_tail()}")
                break
            if now - last_report > 10:
                last_report = now
                print(f"  {sent} sent, {answered} answered, {answered / (now - started):.0f}/s, RSS {daemon.rss_mb():.1f} MiB "
                      f"(anonymous {daemon.rss_mb('RssAnon'):.1f})", flush=True)
        elapsed = time.monotonic() - started
        for s in sockets:
            s.close(linger=0)
        alive_status = None
        rss_after = rss_partial = rss_partial_after = anon_after = None
        if daemon.alive():
            time.sleep(1.0)
            rss_after, anon_after = daemon.rss_mb(), daemon.rss_mb("RssAnon")
            alive_status = daemon.status(timeout=30)
            if alive_status is None:
                hard.append("the daemon does not answer status after the fuzz")
            for key, check in (("catalog.building", lambda st: "building" in (st.get("catalog") or {})),
                               ("model.path", lambda st: "path" in (st.get("model") or {})),
                               ("model.published_at", lambda st: "published_at" in (st.get("model") or {}))):
                if alive_status is not None and not check(alive_status):
                    counts["null_fields_omitted"] += 1
                    note("null_fields_omitted", f"status has no {key} key (PROTOCOL.md shows it, null when unset)")
            if args.partial_mb > 0:
                try:
                    _, rss_partial, rss_partial_after = partial_multipart(daemon.endpoint, args.partial_mb, daemon)
                except OSError as error:
                    print(f"partial multipart: {error}", flush=True)
                if not daemon.alive():
                    counts["crashes"] += 1
                    hard.append(f"glfd died during the unfinished multipart message:\n{daemon.log_tail()}")
                elif daemon.status(timeout=30) is None:
                    hard.append("the daemon does not answer status after the unfinished multipart message")
        else:
            if not counts["crashes"]:
                counts["crashes"] += 1
                hard.append(f"glfd is not running at the end:\n{daemon.log_tail()}")
        exit_code = daemon.terminate() if daemon.alive() else None
        if exit_code not in (0, None):
            hard.append(f"SIGTERM after the fuzz: exit status {exit_code}")

        print("---- by family (reply codes) ----")
        for family in sorted(by_family):
            print(f"  {family}: {common.fmt(dict(by_family[family]))}")
        if unexpected:
            print("---- findings (examples) ----")
            for key in sorted(unexpected):
                examples = unexpected[key]
                shown = [e for e in examples if e is not None]
                print(f"  {key}: {len(examples)}")
                for example in shown[:args.show]:
                    print(f"      {example[:400]}")
        if counts["internal"]:
            hard.append(f"{counts['internal']} internal errors")
        if counts["malformed_replies"]:
            hard.append(f"{counts['malformed_replies']} malformed replies")
        if counts["unanswered"]:
            hard.append(f"{counts['unanswered']} messages got no reply within {args.timeout} s")
        growth = None if rss_partial is None or rss_before is None else rss_partial - (rss_after or rss_before)
        common.print_summary([
            ("messages", sent), ("answered", answered), ("unanswered", counts["unanswered"]), ("internal", counts["internal"]),
            ("crashes", counts["crashes"]), ("malformed_replies", counts["malformed_replies"]),
            ("unexpected_codes", counts["unexpected"]), ("missing_id", counts["missing_id"]),
            ("unexpected_id", counts["unexpected_id"]), ("unmatched_replies", counts["unmatched_replies"]),
            ("ambiguous_matches", counts["ambiguous_matches"]),
            ("index_problems", counts["index_problems"]), ("null_fields_omitted", counts["null_fields_omitted"]),
            ("replies_by_code", dict(codes)),
            ("rss_before_mb", rss_before), ("rss_after_mb", rss_after),
            ("rss_anon_before_mb", anon_before), ("rss_anon_after_mb", anon_after),
            ("partial_multipart_mb_sent", args.partial_mb if rss_partial is not None else None),
            ("partial_multipart_rss_growth_mb", growth), ("rss_after_partial_disconnect_mb", rss_partial_after),
            ("seconds", elapsed), ("messages/s", sent / elapsed if elapsed else None),
            ("sigterm_exit", exit_code), ("result", "FAIL" if hard else "pass"),
        ])
        common.print_hard_failures(hard)
    except DaemonError as error:
        hard.append(str(error))
        print(f"HARD FAILURE: {error}", flush=True)
    finally:
        daemon.finish(failed=bool(hard), keep=args.keep_state)
    sys.exit(1 if hard else 0)


if __name__ == "__main__":
    main()
