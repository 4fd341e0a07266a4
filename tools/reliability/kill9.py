#!/usr/bin/python3
"""kill -9 durability: N trials of ingest under load, SIGKILL at a random moment, restart, verify.

Each trial starts glfd on the same state directory (kept across trials), runs C ingest clients
(DEALER, W ingests in flight each) that send batches of distinct images — PNGs and raw frames whose
stored pixels are known exactly, and real CIFAR JPEGs — each with a unique token in `meta`
(plus the SHA-256 of its bytes), records every acknowledged id, and kills the daemon with SIGKILL.
After the restart every item in the store is read back with `get` (and a sample with pixels) and:

  lost        an acknowledged id that is missing
  corrupted   an item whose meta/source/size/format/pixels differ from what was sent under that
              id, an acknowledged token stored under another id, an item whose token we never sent
  duplicated  a token stored under two ids (duplicated_retried when the client had retried it
              after `busy`, which PROTOCOL.md says is not applied: reported, still a failure)
  partial     a request of which some but not all images are stored (all or nothing)
  restarts_failed  a restart that did not serve within the timeout

--publish trains a tiny model that publishes every 2 steps, so kills land during publication and
catalog builds; after each restart the model's files must be there and embed/knn must work.

    /usr/bin/python3 tools/reliability/kill9.py --glfd /tmp/rel-glfd/glfd --trials 20
    /usr/bin/python3 tools/reliability/kill9.py --glfd /tmp/rel-glfd/glfd --trials 10 --publish

Exit status 1 on any lost, corrupted, duplicated or partial item, an `internal` error, or a
failed restart.
"""
import argparse
import collections
import hashlib
import json
import os
import random
import sys
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Daemon, DaemonError, Reply  # noqa: E402


class Sent:
    """One ingest request: its tokens, metas, sources, kinds, expected pixels, outcome."""

    __slots__ = ("key", "tokens", "metas", "sources", "kinds", "pixels", "sizes", "ids", "retried", "code")

    def __init__(self, key):
        self.key = key
        self.tokens, self.metas, self.sources, self.kinds, self.pixels, self.sizes = [], [], [], [], [], []
        self.ids = None
        self.retried = False
        self.code = None


def make_request(key, trial, client, number, batch, rng, jpegs):
    sent = Sent(key)
    descriptors, frames = [], []
    for i in range(batch):
        token = f"k9-{trial}-{client}-{number}-{i}-{rng.randrange(1 << 30):x}"
        kind = rng.choice(["png", "raw", "jpeg"] if jpegs else ["png", "raw"])
        if kind == "jpeg":
            data = rng.choice(jpegs)
            pixels = None
            descriptor = {}
            size = (32, 32, "jpeg")
        else:
            w, h = (32, 32) if rng.random() < 0.8 else (rng.randrange(8, 64), rng.randrange(8, 64))
            pixels = common.pattern_pixels(token, w, h, 3)
            if kind == "png":
                data, descriptor = common.png(w, h, pixels), {}
            else:
                data, descriptor = pixels, {"format": "raw", "width": w, "height": h, "channels": 3}
            size = (w, h, kind)
            if (w, h) != (32, 32):
                pixels = None  # resized: only 32×32 are compared byte for byte
        meta = json.dumps({"token": token, "sha": hashlib.sha256(data).hexdigest()[:16],
                           "pad": "x" * rng.choice([0, 0, 10, 300, 4000])})
        source = f"kill9-{client}"
        descriptor = dict(descriptor, meta=meta, source=source)
        descriptors.append(descriptor)
        frames.append(data)
        sent.tokens.append(token)
        sent.metas.append(meta)
        sent.sources.append(source)
        sent.kinds.append(kind)
        sent.pixels.append(pixels)
        sent.sizes.append(size)
    return sent, {"cmd": "ingest", "id": key, "images": descriptors}, frames


def run_trial(daemon, trial, args, rng, jpegs, ledger, counters):
    """Ingest until the kill; returns (seconds run, sent requests, acked images this trial)."""
    sockets = [common.dealer(daemon.endpoint) for _ in range(args.clients)]
    poller = zmq.Poller()
    for s in sockets:
        poller.register(s, zmq.POLLIN)
    inflight = [dict() for _ in sockets]  # key -> (Sent, header, frames)
    retry = [collections.deque() for _ in sockets]
    numbers = [0] * len(sockets)
    kill_after = rng.uniform(args.min_run, args.max_run)
    started = time.monotonic()
    watcher = None
    if args.kill_at == "building":
        watcher = common.Client(daemon.endpoint, prefix="watch")
        baseline = daemon.status() or {}
        base_version = baseline.get("model", {}).get("version", 0)
        next_watch = 0.0
    acked_here = 0

    def handle(index, frames):
        nonlocal acked_here
        reply = Reply(frames)
        key = reply.id if isinstance(reply.id, str) else None
        entry = inflight[index].pop(key, None)
        if entry is None:
            counters["stray_replies"] += 1
            return
        sent, header, payload = entry
        if reply.ok:
            ids = (reply.result or {}).get("ids")
            if not isinstance(ids, list) or len(ids) != len(sent.tokens) or any(not isinstance(i, int) for i in ids):
                counters["bad_acks"] += 1
                print(f"  bad ack for {key}: {reply.header}", flush=True)
                return
            if sorted(ids) != ids or len(set(ids)) != len(ids):
                counters["bad_acks"] += 1
                print(f"  ids of one request not increasing for {key}: {ids}", flush=True)
            sent.ids = ids
            acked_here += len(ids)
        else:
            code = reply.code
            counters["errors." + str(code)] += 1
            if code == "internal":
                print(f"  internal error for {key}: {reply.error}", flush=True)
            if code == "busy":
                sent.retried = True
                retry[index].append((sent, header, payload))
                return
            sent.code = code

    def fill():
        for index, socket in enumerate(sockets):
            while len(inflight[index]) < args.window:
                if retry[index]:
                    sent, header, payload = retry[index].popleft()
                    key = f"{sent.key}r{rng.randrange(1 << 20)}"
                    header = dict(header, id=key)
                else:
                    numbers[index] += 1
                    key = f"t{trial}c{index}n{numbers[index]}"
                    sent, header, payload = make_request(key, trial, index, numbers[index], args.batch, rng, jpegs)
                    ledger.append(sent)
                inflight[index][key] = (sent, header, payload)
                socket.send_multipart(common.encode(header, payload))

    fill()
    mode = args.kill_at
    while True:
        now = time.monotonic() - started
        if mode == "building":
            if now >= args.max_run * 3:
                break
            if now >= next_watch:
                next_watch = now + 0.05
                reply = watcher.call({"cmd": "status"}, timeout=5.0)
                if reply is not None and reply.ok:
                    r = reply.result
                    if (r.get("catalog") or {}).get("building") is not None or r.get("model", {}).get("version", 0) > base_version:
                        mode, kill_after = "random", now + rng.uniform(0, 0.3)
        for socket, _ in poller.poll(20):
            index = sockets.index(socket)
            while socket.poll(0):
                handle(index, socket.recv_multipart())
        fill()  # before the kill check: the kill lands with full windows in flight
        now = time.monotonic() - started
        if mode == "random" and now >= kill_after:
            break
    ran = time.monotonic() - started
    at_kill = sum(len(i) for i in inflight)
    daemon.kill()
    # Replies already on their way count: an ack the client received is an ack.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        for socket, _ in poller.poll(50):
            index = sockets.index(socket)
            while socket.poll(0):
                handle(index, socket.recv_multipart())
    unanswered = sum(len(i) for i in inflight) + sum(len(r) for r in retry)
    counters["unanswered_at_kill"] += unanswered
    for s in sockets:
        s.close(linger=0)
    if watcher:
        watcher.close()
    return ran, acked_here, at_kill, unanswered


def scan_store(daemon, upper_hint):
    """Every stored item, by id: {id: item}; reads ids 1.. in pages until a page past the hint is empty."""
    client = common.Client(daemon.endpoint, prefix="scan")
    items, start, page = {}, 1, 5000
    try:
        while True:
            ids = list(range(start, start + page))
            reply = client.call({"cmd": "get", "ids": ids, "pixels": False}, timeout=120.0)
            if reply is None or not reply.ok:
                raise DaemonError(f"get failed while scanning the store: {reply}")
            found = [item for item in reply.result["items"] if item is not None]
            for item in found:
                items[item["id"]] = item
            if not found and start > upper_hint:
                return items
            start += page
    finally:
        client.close()


def verify(daemon, ledger, args, rng, counters, publish):
    """Checks the store against the ledger; returns a dict of this verification's failures."""
    found = {"lost": 0, "corrupted": 0, "duplicated": 0, "duplicated_retried": 0, "partial": 0,
             "stored_unacked": 0, "pixels_checked": 0, "model_problems": 0}
    acked_max = max((max(s.ids) for s in ledger if s.ids), default=0)
    status = daemon.status() or {}
    hint = max(acked_max, (status.get("store") or {}).get("ingested", 0))
    items = scan_store(daemon, hint)
    by_token = collections.defaultdict(list)
    for item_id, item in items.items():
        try:
            token = json.loads(item.get("meta") or "")["token"]
        except (ValueError, KeyError, TypeError):
            token = None
        if token is None:
            found["corrupted"] += 1
            print(f"  item {item_id} has a meta we never sent: {str(item.get('meta'))[:80]!r}", flush=True)
            continue
        by_token[token].append(item_id)
    sample = []
    for sent in ledger:
        present = 0
        for i, token in enumerate(sent.tokens):
            ids = by_token.get(token, [])
            present += 1 if ids else 0
            if len(ids) > 1:
                key = "duplicated_retried" if sent.retried else "duplicated"
                found[key] += 1
                print(f"  token {token} stored under ids {ids} ({key})", flush=True)
            if sent.ids is None:
                if ids:
                    found["stored_unacked"] += 1
                continue
            acked = sent.ids[i]
            item = items.get(acked)
            if item is None:
                found["lost"] += 1
                print(f"  LOST: acknowledged id {acked} (token {token}) is not in the store", flush=True)
                continue
            width, height, kind = sent.sizes[i]
            problems = []
            if item.get("meta") != sent.metas[i]:
                problems.append("meta")
            if item.get("source") != sent.sources[i]:
                problems.append("source")
            if (item.get("width"), item.get("height"), item.get("format")) != (width, height, kind):
                problems.append(f"size/format {item.get('width')}x{item.get('height')} {item.get('format')}")
            if acked not in ids:
                problems.append(f"token stored under {ids}")
            if problems:
                found["corrupted"] += 1
                print(f"  CORRUPTED id {acked} (token {token}): {', '.join(problems)}", flush=True)
            elif sent.pixels[i] is not None or kind == "jpeg":
                sample.append((acked, sent.pixels[i]))
        if 0 < present < len(sent.tokens):
            found["partial"] += 1
            print(f"  PARTIAL: request {sent.key} has {present} of {len(sent.tokens)} images stored "
                  f"({'acked' if sent.ids else 'unacked'})", flush=True)
    # A sample with pixels: stored bytes equal the pixels sent (32×32 PNG and raw are not resized).
    rng.shuffle(sample)
    sample = sample[:args.pixel_sample]
    client = common.Client(daemon.endpoint, prefix="pix")
    for start in range(0, len(sample), 100):
        part = sample[start:start + 100]
        reply = client.call({"cmd": "get", "ids": [i for i, _ in part], "pixels": True}, timeout=120.0)
        if reply is None or not reply.ok:
            found["corrupted"] += len(part)
            print(f"  get with pixels failed: {reply}", flush=True)
            continue
        infos = reply.result["items"]
        if len(reply.payloads) != sum(1 for x in infos if x):
            found["corrupted"] += 1
            print(f"  get with pixels: {len(reply.payloads)} frames for {len(infos)} items", flush=True)
            continue
        frames = iter(reply.payloads)
        for (item_id, expected), info in zip(part, infos):
            frame = next(frames) if info else None
            side, channels = (info or {}).get("stored_side"), (info or {}).get("stored_channels")
            if frame is None or len(frame) != (side or 0) * (side or 0) * (channels or 0):
                found["corrupted"] += 1
                print(f"  pixels of {item_id}: frame of {None if frame is None else len(frame)} bytes for {side}×{side}×{channels}", flush=True)
            elif expected is not None and side == 32 and channels == 3 and frame != expected:
                found["corrupted"] += 1
                print(f"  CORRUPTED pixels of {item_id}", flush=True)
            found["pixels_checked"] += 1
    if publish:
        reply = client.call({"cmd": "model"}, timeout=30.0)
        path = (reply.result or {}).get("path") if reply is not None and reply.ok else None
        if not path or not os.path.isfile(os.path.join(daemon.state, path, "model.safetensors")) and \
                not os.path.isfile(os.path.join(path, "model.safetensors")):
            found["model_problems"] += 1
            print(f"  model after restart: {reply} (files missing?)", flush=True)
        image, descriptor = common.valid_image(rng, "png")
        reply = client.call({"cmd": "embed", "images": [descriptor]}, [image], timeout=60.0)
        if reply is None or not reply.ok:
            found["model_problems"] += 1
            print(f"  embed after restart: {reply}", flush=True)
        acked = [s.ids[0] for s in ledger if s.ids]
        if acked:
            for _ in range(100):
                reply = client.call({"cmd": "knn", "by": "item", "item": rng.choice(acked), "k": 5}, timeout=60.0)
                if reply is None or reply.ok or reply.code != "not_ready":
                    break
                time.sleep(0.2)
            if reply is None or not reply.ok:
                found["model_problems"] += 1
                print(f"  knn after restart: {reply}", flush=True)
    client.close()
    return found, len(items)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_daemon_arguments(parser, training="off")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--window", type=int, default=4, help="ingests in flight per client")
    parser.add_argument("--batch", type=int, default=8, help="images per ingest request")
    parser.add_argument("--min-run", type=float, default=0.3, help="seconds of ingest before the kill, at least")
    parser.add_argument("--max-run", type=float, default=4.0, help="seconds of ingest before the kill, at most")
    parser.add_argument("--kill-at", choices=["random", "building"], default="random",
                        help="building: kill right after status shows a catalog build or a new model version")
    parser.add_argument("--publish", action="store_true",
                        help="train a tiny model publishing every 2 steps: kills during publication and catalog builds")
    parser.add_argument("--durability", choices=["sync", "fast"], default="sync")
    parser.add_argument("--pixel-sample", type=int, default=300, help="acked items checked with pixels per verification")
    parser.add_argument("--start-timeout", type=float, default=180.0)
    args = parser.parse_args()
    if args.publish and args.training == "off":
        args.training = "small"
    extra = {"store.durability": args.durability}
    if args.publish:
        extra.update({"models.publish_every_steps": "2", "models.publish_every_seconds": "1",
                      "training.min_items": "32", "training.nice": "0"})
    rng = random.Random(args.seed)
    jpegs = common.cifar_jpegs(500)
    daemon = Daemon(args.glfd, state=args.state, settings=common.daemon_settings(args, extra), prefix="glfd-kill9-")
    print(f"kill9: state {daemon.state}, {args.trials} trials, {args.clients} clients × {args.window} in flight × "
          f"{args.batch} images, durability {args.durability}, training {args.training}{', publishing every 2 steps' if args.publish else ''}",
          flush=True)
    ledger = []
    counters = collections.Counter()
    totals = collections.Counter()
    restarts_failed = 0
    trials_run = 0
    hard = False
    try:
        for trial in range(args.trials + 1):
            try:
                t0 = time.monotonic()
                started_status = daemon.start(timeout=args.start_timeout, wait_model=True)
                start_seconds = time.monotonic() - t0
            except DaemonError as error:
                restarts_failed += 1
                hard = True
                print(f"trial {trial}: RESTART FAILED: {error}", flush=True)
                break
            if ledger:
                found, stored = verify(daemon, ledger, args, rng, counters, args.publish)
                for key, value in found.items():
                    if key in ("stored_unacked", "pixels_checked"):
                        totals[key] = value if key == "stored_unacked" else totals[key] + value
                    else:
                        totals[key] += value
                bad = {k: v for k, v in found.items() if v and k not in ("stored_unacked", "pixels_checked")}
                model, catalog = started_status.get("model") or {}, started_status.get("catalog") or {}
                print(f"  restarted at model version {model.get('version')} (step {model.get('step')}), catalog version "
                      f"{catalog.get('version')} with {catalog.get('items')} items", flush=True)
                print(f"  verified after restart ({start_seconds:.1f} s to serve): {stored} items stored, "
                      f"{found['pixels_checked']} pixel checks, {'problems ' + str(bad) if bad else 'all acknowledged items intact'}",
                      flush=True)
                if bad:
                    hard = True
            if trial == args.trials:
                code = daemon.terminate()
                print(f"final SIGTERM: exit status {code}", flush=True)
                if code != 0:
                    totals["final_exit_nonzero"] += 1
                    hard = True
                break
            ran, acked, at_kill, unanswered = run_trial(daemon, trial + 1, args, rng, jpegs, ledger, counters)
            trials_run += 1
            print(f"trial {trial + 1}: killed after {ran:.2f} s; {acked} images acked this trial; "
                  f"{at_kill} requests in flight at the kill, {unanswered} never answered", flush=True)
    finally:
        daemon.finish(failed=hard, keep=args.keep_state)
    acked_ids = sum(len(s.ids) for s in ledger if s.ids)
    internal = counters["errors.internal"]
    if internal or counters["bad_acks"]:
        hard = True
    errors = {k[len("errors."):]: v for k, v in counters.items() if k.startswith("errors.")}
    common.print_summary([
        ("trials", trials_run), ("acked_requests", sum(1 for s in ledger if s.ids)), ("acked_ids", acked_ids),
        ("unacked_requests", sum(1 for s in ledger if not s.ids)), ("stored_unacked", totals["stored_unacked"]),
        ("lost", totals["lost"]), ("corrupted", totals["corrupted"]), ("duplicated", totals["duplicated"]),
        ("duplicated_retried", totals["duplicated_retried"]), ("partial", totals["partial"]),
        ("pixels_checked", totals["pixels_checked"]), ("model_problems", totals["model_problems"]),
        ("bad_acks", counters["bad_acks"]), ("stray_replies", counters["stray_replies"]), ("errors", errors), ("internal", internal),
        ("restarts_failed", restarts_failed), ("result", "FAIL" if hard else "pass"),
    ])
    sys.exit(1 if hard else 0)


if __name__ == "__main__":
    main()
