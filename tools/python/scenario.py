"""The daemon scenario, end to end from Python: starts a real glfd process on loopback with a fresh
state directory, and checks with glfd_client (written from protocol/PROTOCOL.md alone):

  ingest real CIFAR-10 JPEGs → training advances → a version is published and announced →
  knn of a stored image returns it first → embedding one image twice gives the same vector →
  garbage gets typed errors while the daemon keeps serving → SIGTERM exits 0 →
  a restart keeps every acknowledged item and the model.

    python3 tools/python/scenario.py --glfd .build/debug/glfd --images DIR_OF_JPEGS

Exit status 0 when every check holds; each check prints a line.
"""
import argparse
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from glfd_client import Client, GlfdError, VERSION  # noqa: E402

failures = []


def check(condition, what):
    print(("ok     " if condition else "FAILED ") + what, flush=True)
    if not condition:
        failures.append(what)


def start(glfd, state):
    settings = ["server.request_endpoint=tcp://127.0.0.1:*", "server.announce_endpoint=tcp://127.0.0.1:*",
                "training.width=4", "training.batch=16", "training.adc_perplexity=5", "training.min_items=32", "training.updates_per_image=2",
                "models.publish_every_steps=4", "metrics.endpoint=127.0.0.1:0",
                # CI runs this beside the whole test suite on 2 cores: a trainer at nice 10 would wait for it.
                "training.nice=0"]
    process = subprocess.Popen([glfd] + [a for s in settings for a in ("--set", s)], cwd=state,
                               stderr=subprocess.PIPE, text=True)
    lines = []
    for _ in range(20):  # the line naming the endpoints comes among the first log lines
        lines.append(process.stderr.readline())
        match = re.search(r"on (tcp://\S+), announcing on (tcp://\S+);", lines[-1])
        if match or not lines[-1]:
            break
    if not match:
        process.kill()
        raise SystemExit(f"glfd did not start: {''.join(lines)}{process.stderr.read()}")
    # Keep draining its log so glfd never blocks on a full pipe; the last lines explain a failure.
    import collections
    import threading
    process.log_tail = collections.deque(lines, maxlen=40)
    threading.Thread(target=lambda: process.log_tail.extend(process.stderr), daemon=True).start()
    return process, match.group(1), match.group(2)


def stop(process):
    """SIGTERM, then the exit status (None after 60 s); glfd's last log lines when it is not 0."""
    process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        status = None
    if status != 0:
        time.sleep(0.2)
        print(f"glfd exit status {status}; its last log lines:\n" + "".join(process.log_tail))
    return status


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--glfd", required=True)
    parser.add_argument("--images", required=True, help="a folder of JPEGs (searched recursively)")
    args = parser.parse_args()
    glfd = os.path.abspath(args.glfd)
    files = sorted(glob.glob(os.path.join(args.images, "**", "*.jpg"), recursive=True))[:64]
    check(len(files) == 64, f"64 JPEGs found under {args.images}")
    images = [open(f, "rb").read() for f in files]
    state = tempfile.mkdtemp(prefix="glfd-scenario-")

    process, requests, announcements = start(glfd, state)
    context = zmq.Context.instance()
    subscriber = context.socket(zmq.SUB)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"model")
    subscriber.setsockopt(zmq.RCVTIMEO, 120_000)
    subscriber.connect(announcements)
    with Client(requests) as glfd_client:
        ids = []
        for start_index in range(0, 64, 16):
            ids += glfd_client.ingest(images[start_index:start_index + 16], source="scenario")
        check(ids == list(range(1, 65)), "64 images ingested, ids 1..64")

        # 64 images × 2 updates / batch 16 = 8 steps; versions at steps 0 (initial), 4, 8.
        heard = []
        while not heard or heard[-1]["step"] < 8:
            topic, version, body = subscriber.recv_multipart()
            if version == VERSION:
                import json
                heard.append(json.loads(body))
        check(heard[-1]["version"] == 3 and os.path.isfile(os.path.join(heard[-1]["path"], "model.safetensors")),
              f"version 3 announced at step 8 with its files ({heard[-1]['path']})")
        status = glfd_client.status()
        check(status["training"]["step"] == 8, f"training advanced to step {status['training']['step']}")
        check(glfd_client.last_announcement() == heard[-1], "last_announcement repeats the PUB message")

        result = None
        for _ in range(200):
            try:
                result = glfd_client.knn(image=images[10], k=3, exact=True)
                if result["version"] == 3:
                    break
            except GlfdError as error:
                if error.code != "not_ready":
                    raise
            time.sleep(0.05)
        check(result is not None and result["neighbours"][0]["id"] == 11, f"knn of stored image 11 returns it first: {result}")
        first, v1 = glfd_client.embed(images[20])
        second, v2 = glfd_client.embed(images[20])
        check(v1 == v2 and first == second, f"embedding one image twice under version {v1} gives the same vector")

        rogue = context.socket(zmq.DEALER)
        rogue.setsockopt(zmq.RCVTIMEO, 10_000)
        rogue.setsockopt(zmq.LINGER, 0)
        rogue.connect(requests)
        for garbage, code in [([b"hello"], "unsupported_version"), ([b"HTTP/1.1", b"{}"], "unsupported_version"),
                              ([VERSION, b"{oops"], "bad_header"), ([VERSION, b'{"cmd":"teleport"}'], "unknown_command"),
                              ([VERSION, b'{"cmd":"ingest","images":[{}]}', b"not an image"], "bad_image")]:
            rogue.send_multipart(garbage)
            reply = rogue.recv_multipart()
            import json
            header = json.loads(reply[1])
            check(not header["ok"] and header["error"]["code"] == code, f"garbage {garbage[:2]} → {header.get('error', {}).get('code')}")
        rogue.close()
        check(glfd_client.status()["store"]["items"] == 64, "the daemon still serves others after the garbage")
        version_before = glfd_client.model()["version"]

    check(stop(process) == 0, "SIGTERM: glfd exits 0")

    process, requests, _ = start(glfd, state)
    with Client(requests) as glfd_client:
        items = glfd_client.get(ids)
        check([item["id"] for item in items if item] == ids, "after a restart every acknowledged item is there")
        check(glfd_client.model()["version"] == version_before, f"after a restart the model is version {version_before}")
        check(glfd_client.status()["training"]["step"] == 8, "after a restart training resumes at step 8")
    check(stop(process) == 0, "SIGTERM again: exit 0")
    subscriber.close(linger=0)
    print(f"{'all checks hold' if not failures else f'{len(failures)} check(s) failed'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
