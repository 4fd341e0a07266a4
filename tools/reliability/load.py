#!/usr/bin/python3
"""Load, then SIGTERM under load: C clients for T seconds mixing ingest, embed, knn and status.

Each client is a thread with its own DEALER socket sending one request at a time. Measured per
command: requests, latency p50/p99 (every reply, ok or error), errors by code. After T seconds the
daemon gets SIGTERM while the clients keep sending; it must exit 0 (requests it no longer takes are
answered `shutting_down` or not at all). It is then restarted on the same state and every id
acknowledged — before or during the shutdown — must be there with its meta and source intact.

    /usr/bin/python3 tools/reliability/load.py --glfd /tmp/rel-glfd/glfd --clients 50 --seconds 120

Exit status 1 on an `internal` error, a request unanswered before the SIGTERM, a non-zero exit
status, a failed restart, or a lost or corrupted acknowledged item.
"""
import argparse
import collections
import json
import os
import random
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Daemon, DaemonError, Reply  # noqa: E402


class Shared:
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []            # acked ids, for knn by item
        self.acked = {}            # id -> (meta, source)
        self.latency = collections.defaultdict(list)   # command -> seconds (before SIGTERM)
        self.codes = collections.defaultdict(collections.Counter)  # command -> code
        self.after_term = collections.Counter()
        self.unanswered = collections.Counter()
        self.bad_acks = 0
        self.examples = collections.defaultdict(list)
        self.terminated = threading.Event()   # SIGTERM sent
        self.dead = threading.Event()         # the daemon exited
        self.stop = threading.Event()         # clients stop sending


def call(socket, header, payloads, shared, timeout):
    """Sends and waits in slices; returns (Reply or None, seconds)."""
    socket.send_multipart(common.encode(header, payloads), copy=False)
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if elapsed > timeout or shared.dead.is_set():
            return None, elapsed
        if socket.poll(200):
            reply = Reply(socket.recv_multipart())
            if reply.id == header["id"]:
                return reply, time.monotonic() - started


def client(number, endpoint, args, shared, dim, images, seed):
    rng = random.Random(seed)
    socket = common.dealer(endpoint)
    weights = [(name, float(w)) for name, w in (part.split("=") for part in args.mix.split(","))]
    total = sum(w for _, w in weights)
    counter = 0
    try:
        while not shared.stop.is_set() and not shared.dead.is_set():
            pick = rng.uniform(0, total)
            command = weights[-1][0]
            for name, weight in weights:
                pick -= weight
                if pick <= 0:
                    command = name
                    break
            counter += 1
            key = f"l{number}-{counter}"
            header, payloads, metas = {"id": key}, [], None
            if command == "ingest":
                n = rng.randrange(1, args.batch + 1)
                chosen = [rng.choice(images) for _ in range(n)]
                metas = [json.dumps({"load": key, "i": i, "r": rng.randrange(1 << 30)}) for i in range(n)]
                header.update(cmd="ingest", images=[dict(d, meta=m, source=f"load-{number % 5}") for (_, d), m in zip(chosen, metas)])
                payloads = [x for x, _ in chosen]
            elif command == "embed":
                chosen = [rng.choice(images) for _ in range(rng.randrange(1, 5))]
                header.update(cmd="embed", images=[d for _, d in chosen])
                payloads = [x for x, _ in chosen]
            elif command == "knn":
                how = rng.random()
                with shared.lock:
                    item = rng.choice(shared.items) if shared.items else 1
                if how < 0.5:
                    header.update(cmd="knn", by="item", item=item, k=rng.choice([1, 10, 50]), exact=rng.random() < 0.3)
                elif how < 0.8:
                    vector = [rng.gauss(0, 1) for _ in range(dim)]
                    header.update(cmd="knn", by="vector", dim=dim, k=10)
                    payloads = [struct.pack(f"<{dim}f", *vector)]
                else:
                    data, d = rng.choice(images)
                    header.update(cmd="knn", by="image", image=d, k=10)
                    payloads = [data]
            else:
                header.update(cmd="status")
            after_term = shared.terminated.is_set()
            reply, seconds = call(socket, header, payloads, shared, args.timeout)
            if reply is None:
                if shared.dead.is_set() or after_term or shared.terminated.is_set():
                    shared.after_term["no_reply"] += 1
                    break
                with shared.lock:
                    shared.unanswered[command] += 1
                    if len(shared.examples["unanswered"]) < 5:
                        shared.examples["unanswered"].append(f"{command} {key} after {seconds:.1f} s")
                socket.close(linger=0)
                socket = common.dealer(endpoint)
                continue
            code = "ok" if reply.ok else reply.code
            with shared.lock:
                if after_term or shared.terminated.is_set():
                    shared.after_term[code] += 1
                else:
                    shared.latency[command].append(seconds)
                shared.codes[command][code] += 1
                if code == "internal" and len(shared.examples["internal"]) < 10:
                    shared.examples["internal"].append(f"{command}: {reply.error}")
                if command == "ingest" and reply.ok:
                    ids = (reply.result or {}).get("ids")
                    if not isinstance(ids, list) or len(ids) != len(metas):
                        shared.bad_acks += 1
                    else:
                        for item_id, meta in zip(ids, metas):
                            shared.acked[item_id] = (meta, header["images"][0]["source"])
                        shared.items.extend(ids)
            if code == "shutting_down":
                break
    finally:
        socket.close(linger=0)


def verify(daemon, acked):
    """(lost, corrupted) of the acknowledged items after the restart."""
    lost = corrupted = 0
    ids = sorted(acked)
    c = common.Client(daemon.endpoint, prefix="verify")
    try:
        for start in range(0, len(ids), 5000):
            part = ids[start:start + 5000]
            reply = c.call({"cmd": "get", "ids": part, "pixels": False}, timeout=120)
            if reply is None or not reply.ok:
                raise DaemonError(f"get after the restart failed: {reply}")
            for item_id, item in zip(part, reply.result["items"]):
                meta, source = acked[item_id]
                if item is None:
                    lost += 1
                    if lost <= 5:
                        print(f"  LOST: acknowledged id {item_id}", flush=True)
                elif item.get("meta") != meta or item.get("source") != source or item.get("id") != item_id:
                    corrupted += 1
                    if corrupted <= 5:
                        print(f"  CORRUPTED: id {item_id}: {item}", flush=True)
    finally:
        c.close()
    return lost, corrupted


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_daemon_arguments(parser, training="small")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--mix", default="ingest=30,embed=20,knn=30,status=20", help="command weights")
    parser.add_argument("--batch", type=int, default=8, help="images per ingest, at most")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a request may wait before it counts as unanswered")
    parser.add_argument("--term-timeout", type=float, default=120.0, help="seconds glfd may take to exit after SIGTERM")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    images = [common.valid_image(rng, kind) for kind in ("jpeg", "png", "raw") for _ in range(20)]
    daemon = Daemon(args.glfd, state=args.state, settings=common.daemon_settings(args), prefix="glfd-load-")
    shared = Shared()
    hard = []
    exit_code = term_seconds = rss_start = peak_rss = anon_start = anon_end = None
    lost = corrupted = None
    elapsed = 0.0
    try:
        daemon.start()
        setup = common.Client(daemon.endpoint, prefix="setup")
        reply = setup.call({"cmd": "ingest", "images": [dict(d, meta="seed", source="load-seed") for _, d in images]},
                           [x for x, _ in images], timeout=120)
        if reply is not None and reply.ok:
            shared.items.extend(reply.result["ids"])
            for item_id in reply.result["ids"]:
                shared.acked[item_id] = ("seed", "load-seed")
        reply = setup.call({"cmd": "embed", "images": [{}]}, [images[25][0]], timeout=120)
        dim = reply.result["dim"] if reply is not None and reply.ok else 128
        setup.close()
        rss_start, anon_start = daemon.rss_mb(), daemon.rss_mb("RssAnon")
        print(f"load: {args.clients} clients for {args.seconds:.0f} s, mix {args.mix}, training {args.training}, dim {dim}, "
              f"pid {daemon.pid}", flush=True)
        threads = [threading.Thread(target=client, args=(n, daemon.endpoint, args, shared, dim, images, rng.random()), daemon=True)
                   for n in range(args.clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        peak_rss = rss_start
        while time.monotonic() - started < args.seconds:
            time.sleep(min(5.0, max(0.1, args.seconds - (time.monotonic() - started))))
            rss = daemon.rss_mb()
            if rss is None:
                hard.append(f"glfd died under load:\n{daemon.log_tail()}")
                shared.dead.set()
                break
            peak_rss = max(peak_rss, rss)
            anon_end = daemon.rss_mb("RssAnon")
            with shared.lock:
                done = sum(sum(c.values()) for c in shared.codes.values())
            print(f"  {time.monotonic() - started:.0f} s: {done} replies, {len(shared.acked)} acked, RSS {rss:.1f} MiB "
                  f"(anonymous {anon_end:.1f})", flush=True)
        elapsed = time.monotonic() - started
        if daemon.alive():
            term_started = time.monotonic()
            shared.terminated.set()
            exit_code = daemon.terminate(timeout=args.term_timeout)
            term_seconds = time.monotonic() - term_started
            shared.dead.set()
            print(f"SIGTERM under load: exit status {exit_code} after {term_seconds:.1f} s", flush=True)
            if exit_code != 0:
                hard.append(f"exit status {exit_code} after SIGTERM (None: still running after {args.term_timeout} s):\n{daemon.log_tail()}")
        shared.stop.set()
        for t in threads:
            t.join(timeout=30)
        try:
            daemon.start()
            lost, corrupted = verify(daemon, shared.acked)
            print(f"restart: {len(shared.acked)} acknowledged ids checked: {lost} lost, {corrupted} corrupted", flush=True)
            if lost or corrupted:
                hard.append(f"{lost} lost, {corrupted} corrupted acknowledged items")
            code = daemon.terminate()
            if code != 0:
                hard.append(f"second SIGTERM (idle): exit status {code}")
        except DaemonError as error:
            hard.append(f"restart failed: {error}")
    except DaemonError as error:
        hard.append(str(error))
    finally:
        daemon.finish(failed=bool(hard), keep=args.keep_state)

    requests = sum(len(v) for v in shared.latency.values())
    errors = collections.Counter()
    for command, codes in shared.codes.items():
        for code, n in codes.items():
            if code != "ok":
                errors[code] += n
    internal = errors.get("internal", 0)
    if internal:
        hard.append(f"{internal} internal errors: {shared.examples['internal'][:3]}")
    if sum(shared.unanswered.values()):
        hard.append(f"requests unanswered before the SIGTERM: {dict(shared.unanswered)} {shared.examples['unanswered']}")
    if shared.bad_acks:
        hard.append(f"{shared.bad_acks} ingest replies without one id per image")
    rows = [("clients", args.clients), ("seconds", elapsed), ("requests", requests),
            ("requests/s", requests / elapsed if elapsed else None), ("errors", dict(errors)),
            ("unanswered", sum(shared.unanswered.values()))]
    for command in ("ingest", "embed", "knn", "status"):
        values = shared.latency.get(command, [])
        p50, p99 = common.percentile(values, 50), common.percentile(values, 99)
        rows.append((f"{command}_p50_ms", None if p50 is None else p50 * 1000))
        rows.append((f"{command}_p99_ms", None if p99 is None else p99 * 1000))
        rows.append((f"{command}_requests", len(values)))
    rows += [("replies_after_sigterm", dict(shared.after_term)), ("exit_code", exit_code), ("exit_seconds", term_seconds),
             ("rss_start_mb", rss_start), ("rss_peak_mb", peak_rss), ("rss_anon_start_mb", anon_start), ("rss_anon_end_mb", anon_end),
             ("acked", len(shared.acked)), ("lost", lost), ("corrupted", corrupted), ("result", "FAIL" if hard else "pass")]
    common.print_summary(rows)
    for problem in hard:
        print(f"HARD FAILURE: {problem}", flush=True)
    sys.exit(1 if hard else 0)


if __name__ == "__main__":
    main()
