#!/usr/bin/python3
"""Bad images: a corpus generated on the fly (≥ 5,000 strictly bad images) sent to embed and ingest.

Strict cases — every one must be refused with bad_image, too_large or bad_header and the `index`
of the bad image in its request (each is sent once to embed and once to ingest, at a random position
among valid images, so the index and all-or-nothing are checked too):
  truncated_jpeg / truncated_png   real CIFAR JPEGs and generated PNGs cut at every offset (0 = empty)
  png_flipped                      a byte changed anywhere before IEND (every chunk has a CRC)
  jpeg_soi                         the JPEG signature damaged
  png_huge_header / jpeg_huge_header  IHDR/SOF declaring 100,000×100,000, 65,535², 16,385×1, 7,000²
                                   (over 40 megapixels), 0×n, 2^32−1 …
  png_bomb                         IHDR over the limits with a tiny IDAT; 6,000×6,000 (in the limits)
                                   whose zlib data ends early or has a bad row filter
  raw_wrong_length / raw_bad_shape raw frames whose length or declared shape is wrong
  wrong_format                     JPEG declared png, PNG declared jpeg, GIF/BMP/WebP/TIFF/PDF/text/…
  too_large                        one frame of 16 MiB + 1 byte
Lenient cases (sent to embed only, counted, not failures): cuts that only remove part of the final
EOI marker / IEND chunk, and byte flips inside JPEG data or the IEND chunk (such files may decode).

At the end store.items and store.ingested must be unchanged and the daemon must answer status.

    /usr/bin/python3 tools/reliability/bad_images.py --glfd /tmp/rel-glfd/glfd

Exit status 1 when a strict case is accepted, an error is `internal` or has another code, a
reply is missing or has the wrong index, the store changed, or the daemon died.
"""
import argparse
import collections
import os
import random
import struct
import sys
import time
import zlib

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Daemon, DaemonError, Reply  # noqa: E402

REFUSALS = {"bad_image", "too_large", "bad_header"}


class Case:
    __slots__ = ("category", "data", "descriptor", "strict", "note")

    def __init__(self, category, data, descriptor=None, strict=True, note=""):
        self.category, self.data, self.descriptor, self.strict, self.note = category, data, descriptor or {}, strict, note


def jpeg_sof(data):
    """Offset of the SOF segment's height field (width follows), or None."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return i + 5
        i += 2 + length
    return None


def corpus(rng, jpeg_count, png_flips, jpeg_flips):
    cases = []
    jpegs = common.cifar_jpegs(200)[:jpeg_count]
    pngs = [common.png(32, 32, common.pattern_pixels("bad-a", 32, 32, 3), compress_level=9),
            common.png(24, 20, common.pattern_pixels("bad-b", 24, 20, 1), channels=1),
            common.png(16, 16, common.pattern_pixels("bad-c", 16, 16, 4), channels=4)]
    if not jpegs:
        print("warning: no CIFAR JPEGs found (/tmp/cifar/train, /work/shared/data/cifar10): JPEG cases are skipped", flush=True)
    # Truncation at every cut.
    for j in jpegs:
        for cut in range(len(j)):
            tail = cut >= len(j) - 2
            cases.append(Case("truncated_jpeg_tail" if tail else "truncated_jpeg", j[:cut], strict=not tail, note=f"cut {cut}/{len(j)}"))
    for p in pngs:
        for cut in range(len(p)):
            tail = cut >= len(p) - 12
            cases.append(Case("truncated_png_tail" if tail else "truncated_png", p[:cut], strict=not tail, note=f"cut {cut}/{len(p)}"))
    # Flipped bytes.
    for p in pngs:
        for _ in range(png_flips):
            at = rng.randrange(len(p))
            data = bytearray(p)
            data[at] ^= rng.randrange(1, 256)
            tail = at >= len(p) - 12
            cases.append(Case("png_flipped_iend" if tail else "png_flipped", bytes(data), strict=not tail, note=f"byte {at}"))
    for j in jpegs:
        for at in (0, 1):
            data = bytearray(j)
            data[at] ^= rng.randrange(1, 256)
            cases.append(Case("jpeg_soi", bytes(data), note=f"byte {at}"))
        for _ in range(jpeg_flips):
            at = rng.randrange(2, len(j))
            data = bytearray(j)
            data[at] ^= rng.randrange(1, 256)
            cases.append(Case("jpeg_flipped", bytes(data), strict=False, note=f"byte {at}"))
    # Headers declaring sizes over the limits (40 megapixels, 16,384 a side) or zero.
    small = common.png(32, 32, common.pattern_pixels("bad-h", 32, 32, 3))
    idat = zlib.compress(b"".join(b"\x00" + common.pattern_pixels("bad-h", 32, 32, 3)[y * 96:(y + 1) * 96] for y in range(32)))
    sizes = [(100000, 100000), (16385, 1), (1, 16385), (7000, 7000), (16384, 16384), (65536, 65536), (0, 0), (0, 32), (32, 0),
             (1 << 31, 1), ((1 << 32) - 1, (1 << 32) - 1), (40001, 1000), (16384, 2442)]
    for w, h in sizes:
        for color_type, channels in ((2, 3), (0, 1), (6, 4)):
            ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
            cases.append(Case("png_huge_header", common.png(32, 32, b"", ihdr_override=ihdr, idat=idat), note=f"{w}x{h} type {color_type}"))
        bad_crc = bytearray(common.png(32, 32, b"", ihdr_override=struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0), idat=idat))
        bad_crc[29] ^= 0xFF
        cases.append(Case("png_huge_header", bytes(bad_crc), note=f"{w}x{h} bad CRC"))
    # IHDR fields libpng refuses: bit depth / colour type combinations, methods.
    for depth, ctype, comp, filt, inter in [(3, 2, 0, 0, 0), (8, 5, 0, 0, 0), (16, 3, 0, 0, 0), (8, 2, 1, 0, 0), (8, 2, 0, 1, 0),
                                            (8, 2, 0, 0, 2), (0, 0, 0, 0, 0), (8, 7, 0, 0, 0)]:
        ihdr = struct.pack(">IIBBBBB", 32, 32, depth, ctype, comp, filt, inter)
        cases.append(Case("png_bad_ihdr", common.png(32, 32, b"", ihdr_override=ihdr, idat=idat), note=f"depth {depth} type {ctype} {comp}{filt}{inter}"))
    # Palette image without PLTE, IDAT missing, a second IHDR.
    cases.append(Case("png_bad_chunks", common.png(32, 32, b"", ihdr_override=struct.pack(">IIBBBBB", 32, 32, 8, 3, 0, 0, 0),
                                                   idat=zlib.compress(b"\x00" * 33 * 32)), note="palette without PLTE"))
    cases.append(Case("png_bad_chunks", small[:33] + common.chunk(b"IEND", b""), note="no IDAT"))
    cases.append(Case("png_bad_chunks", small[:33] + small[8:33] + small[33:], note="two IHDR"))
    cases.append(Case("png_bad_chunks", common.png(32, 32, b"", idat=zlib.compress(b"\x05" + b"\x00" * 96) * 1), note="short data, bad filter"))
    for j in jpegs:
        at = jpeg_sof(j)
        if at is None:
            continue
        for h, w in [(65535, 65535), (0, 0), (0, 32), (20000, 20000), (16385, 16), (16, 16385), (7000, 7000)]:
            data = bytearray(j)
            data[at:at + 4] = struct.pack(">HH", h, w)
            cases.append(Case("jpeg_huge_header", bytes(data), note=f"{w}x{h}"))
    # PNG bombs: tiny zlib streams behind big declarations.
    zeros_rows = zlib.compress(b"\x00" * (1 + 16384 * 3) * 64, 9)
    for w, h in [(16384, 16384), (16384, 16383), (12000, 12000), (100000, 100000)]:
        cases.append(Case("png_bomb", common.png(w, h, b"", ihdr_override=struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0), idat=zeros_rows),
                          note=f"{w}x{h}, 64 rows of data"))
    side = 6000  # 36 megapixels: inside the limits, so the decoder really starts
    row = b"\x00" * (1 + side * 3)
    short = zlib.compress(row * 200, 9)
    cases.append(Case("png_bomb", common.png(side, side, b"", ihdr_override=struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0), idat=short),
                      note=f"{side}x{side}, data for 200 rows"))
    compressor = zlib.compressobj(9)
    body = [compressor.compress(row * 3000), compressor.compress(b"\x09" + row[1:]), compressor.compress(row * (side - 3001)), compressor.flush()]
    cases.append(Case("png_bomb", common.png(side, side, b"", ihdr_override=struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0), idat=b"".join(body)),
                      note=f"{side}x{side}, filter 9 in row 3000"))
    # Raw frames of the wrong length or shape.
    for _ in range(300):
        w, h, c = rng.randrange(1, 200), rng.randrange(1, 200), rng.choice([1, 3, 4])
        n = w * h * c
        length = rng.choice([n - 1, n + 1, n * 2, n // 2, 1, n + c, n - w]) or 1
        if length == n or length <= 0:
            length = n + 1
        cases.append(Case("raw_wrong_length", rng.randbytes(length), {"format": "raw", "width": w, "height": h, "channels": c},
                          note=f"{w}x{h}x{c} in {length} bytes"))
    for shape in [(100000, 100000, 3), (65536, 1, 1), (0, 10, 3), (10, 0, 3), (10, 10, 2), (10, 10, 0), (10, 10, 5), (-1, 10, 3),
                  (10, 10, None), (None, 10, 3)]:
        w, h, c = shape
        d = {"format": "raw"}
        for key, value in (("width", w), ("height", h), ("channels", c)):
            if value is not None:
                d[key] = value
        length = max(1, (w or 10) * (h or 10) * (c or 3)) if (w or 10) * (h or 10) < 1 << 20 else 300
        cases.append(Case("raw_bad_shape", b"\x80" * min(length, 300), d, note=str(shape)))
    # Declared formats that are wrong, and bytes that are no image we take.
    png_bytes = pngs[0]
    for j in jpegs:
        cases.append(Case("wrong_format", j, {"format": "png"}, note="JPEG declared png"))
    cases.append(Case("wrong_format", png_bytes, {"format": "jpeg"}, note="PNG declared jpeg"))
    others = {"gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
              "bmp": b"BM" + struct.pack("<IHHI", 70, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 24, 0, 16, 0, 0, 0, 0) + b"\x00" * 16,
              "webp": b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00",
              "tiff": b"II*\x00\x08\x00\x00\x00" + b"\x00" * 40, "pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "zip": b"PK\x03\x04" + b"\x00" * 26,
              "html": b"<html><body>not an image</body></html>", "elf": b"\x7fELF\x02\x01\x01" + b"\x00" * 57,
              "zeros": b"\x00" * 4096, "one_byte": b"\xff", "ff_d8_only": b"\xff\xd8", "png_sig_only": b"\x89PNG\r\n\x1a\n",
              "utf8": "图像ではありません".encode(), "jpeg_soi_eoi": b"\xff\xd8\xff\xd9"}
    for name, data in others.items():
        for fmt in (None, "jpeg", "png"):
            cases.append(Case("wrong_format", data, {"format": fmt} if fmt else {}, note=f"{name} as {fmt or 'auto'}"))
    for _ in range(100):
        cases.append(Case("wrong_format", rng.randbytes(rng.randrange(1, 5000)), note="random bytes"))
    # One frame over the 16 MiB limit.
    big = b"\xff\xd8" + b"\x00" * ((16 << 20) - 1)
    cases.append(Case("too_large", big, note="16 MiB + 1 byte"))
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_daemon_arguments(parser, training="off")
    parser.add_argument("--jpegs", type=int, default=3, help="CIFAR JPEGs cut at every offset")
    parser.add_argument("--png-flips", type=int, default=200, help="flipped-byte variants per PNG")
    parser.add_argument("--jpeg-flips", type=int, default=100, help="flipped-byte variants per JPEG (lenient)")
    parser.add_argument("--sockets", type=int, default=4)
    parser.add_argument("--window", type=int, default=8, help="requests in flight per socket (at most 8 ingests)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--show", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1, help="send the whole corpus this many times (RSS is printed after each pass)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cases = corpus(rng, args.jpegs, args.png_flips, args.jpeg_flips)
    strict = [c for c in cases if c.strict]
    print(f"bad_images: {len(cases)} cases, {len(strict)} strict ({', '.join(f'{k} {v}' for k, v in sorted(collections.Counter(c.category for c in cases).items()))})",
          flush=True)
    valid = [common.valid_image(rng, kind) for kind in ("jpeg", "png", "raw") for _ in range(8)]

    # Requests: (case, command, images [(bytes, descriptor)], index of the bad one).
    work = []
    for case in cases:
        if case.strict:
            for command, most in (("embed", 3), ("ingest", 4)):
                n = rng.randrange(1, most + 1)
                images = [rng.choice(valid) for _ in range(n)]
                at = rng.randrange(n)
                images[at] = (case.data, case.descriptor)
                work.append((case, command, images, at))
        else:
            work.append((case, "embed", [(case.data, case.descriptor)], 0))
    rng.shuffle(work)
    pass_length = len(work)
    work = work * args.repeat

    daemon = Daemon(args.glfd, state=args.state, settings=common.daemon_settings(args), prefix="glfd-bad-")
    hard = []
    by_code = collections.Counter()
    by_category = collections.defaultdict(collections.Counter)
    findings = collections.defaultdict(list)
    counts = collections.Counter()
    try:
        daemon.start()
        # A store that is not empty: the counts compared at the end start above zero.
        seed = common.Client(daemon.endpoint, prefix="seed")
        reply = seed.call({"cmd": "ingest", "images": [dict(d, source="seed") for _, d in valid]}, [x for x, _ in valid], timeout=120)
        seed.close()
        if reply is None or not reply.ok:
            hard.append(f"seeding the store with valid images failed: {reply}")
        before = daemon.status()["store"]
        rss_before, anon_before = daemon.rss_mb(), daemon.rss_mb("RssAnon")
        sockets = [common.dealer(daemon.endpoint) for _ in range(args.sockets)]
        poller = zmq.Poller()
        for s in sockets:
            poller.register(s, zmq.POLLIN)
        outstanding = [dict() for _ in sockets]
        position = 0
        started = time.monotonic()
        last = started

        def note(key, text):
            findings[key].append(text if len(findings[key]) < args.show else None)

        def judge(entry, reply):
            case, command, images, at, sent_at = entry
            label = f"{case.category}/{command}"
            code = "ok" if reply.ok else reply.code
            by_code[code] += 1
            by_category[case.category][code] += 1
            if reply.problem:
                hard.append(f"malformed reply: {reply.problem}")
            if code == "internal":
                counts["internal"] += 1
                note(f"internal {label}", f"{case.note}: {reply.error}")
            elif case.strict and reply.ok:
                counts["accepted_strict"] += 1
                note(f"ACCEPTED {label}", case.note)
            elif case.strict and code not in REFUSALS:
                counts["wrong_code"] += 1
                note(f"code {label} -> {code}", f"{case.note}: {reply.error}")
            elif not reply.ok and code in REFUSALS and reply.index != at:
                counts["index_problems"] += 1
                note(f"index {label}", f"{case.note}: expected index {at}, got {reply.error}")
            elif not case.strict and reply.ok:
                counts["accepted_lenient"] += 1
                note(f"accepted (lenient, not a failure) {case.category}", case.note)

        while position < len(work) or any(outstanding):
            now = time.monotonic()
            for index, s in enumerate(sockets):
                while position < len(work) and len(outstanding[index]) < args.window:
                    if position and position % pass_length == 0:
                        print(f"  pass {position // pass_length} sent: RSS {daemon.rss_mb():.1f} MiB (anonymous {daemon.rss_mb('RssAnon'):.1f})", flush=True)
                    case, command, images, at = work[position]
                    key = f"b{position}"
                    position += 1
                    header = {"cmd": command, "id": key, "images": [dict(d) for _, d in images]}
                    outstanding[index][key] = (case, command, images, at, now)
                    s.send_multipart(common.encode(header, [x for x, _ in images]), copy=False)
            for s, _ in poller.poll(100):
                index = sockets.index(s)
                while s.poll(0):
                    reply = Reply(s.recv_multipart())
                    entry = outstanding[index].pop(reply.id, None) if isinstance(reply.id, str) else None
                    if entry is None:
                        if not outstanding[index]:
                            counts["stray_replies"] += 1
                            continue
                        counts["missing_id"] += 1
                        key = next(iter(outstanding[index]))
                        entry = outstanding[index].pop(key)
                        note("missing_id", f"{entry[0].category}: reply {reply.header}")
                    judge(entry, reply)
            now = time.monotonic()
            for table in outstanding:
                for key in [k for k, e in table.items() if now - e[4] > args.timeout]:
                    entry = table.pop(key)
                    counts["unanswered"] += 1
                    note(f"unanswered {entry[0].category}/{entry[1]}", entry[0].note)
            if not daemon.alive():
                counts["crashes"] += 1
                hard.append(f"glfd died (status {daemon.process.returncode}):\n{daemon.log_tail()}")
                break
            if now - last > 10:
                last = now
                print(f"  {position}/{len(work)} sent, RSS {daemon.rss_mb():.1f} MiB", flush=True)
        elapsed = time.monotonic() - started
        for s in sockets:
            s.close(linger=0)
        after = daemon.status(timeout=30) if daemon.alive() else None
        rss_after, anon_after = daemon.rss_mb(), daemon.rss_mb("RssAnon")
        if after is None:
            hard.append("the daemon does not answer status at the end")
            after_store = {}
        else:
            after_store = after["store"]
            for key in ("items", "ingested"):
                if after_store.get(key) != before.get(key):
                    hard.append(f"store.{key} changed: {before.get(key)} -> {after_store.get(key)}")
        exit_code = daemon.terminate() if daemon.alive() else None
        if exit_code not in (0, None):
            hard.append(f"SIGTERM at the end: exit status {exit_code}")
        for key in ("internal", "accepted_strict", "wrong_code", "index_problems", "unanswered", "missing_id"):
            if counts[key]:
                hard.append(f"{counts[key]} {key}")
        print("---- by category (reply codes) ----")
        for category in sorted(by_category):
            print(f"  {category}: {common.fmt(dict(by_category[category]))}")
        if findings:
            print("---- findings (examples) ----")
            for key in sorted(findings):
                print(f"  {key}: {len(findings[key])}")
                for example in [e for e in findings[key] if e is not None][:args.show]:
                    print(f"      {str(example)[:300]}")
        common.print_summary([
            ("cases", len(cases)), ("strict_cases", len(strict)), ("requests", len(work)),
            ("refused_by_code", {k: v for k, v in by_code.items() if k != "ok"}), ("accepted", by_code.get("ok", 0)),
            ("accepted_strict", counts["accepted_strict"]), ("accepted_lenient", counts["accepted_lenient"]),
            ("wrong_code", counts["wrong_code"]), ("index_problems", counts["index_problems"]), ("missing_id", counts["missing_id"]),
            ("internal", counts["internal"]), ("unanswered", counts["unanswered"]), ("crashes", counts["crashes"]),
            ("store_items_before", before.get("items")), ("store_items_after", after_store.get("items")),
            ("rss_before_mb", rss_before), ("rss_after_mb", rss_after),
            ("rss_anon_before_mb", anon_before), ("rss_anon_after_mb", anon_after), ("seconds", elapsed),
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
