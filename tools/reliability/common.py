"""Shared helpers for the hostile-client reliability tools (pyzmq + the standard library only).

- Daemon: starts glfd as a subprocess on a state directory under /tmp with wildcard loopback ports
  (tcp://127.0.0.1:*), no metrics endpoint, its log in <state>/glfd.log; waits until it answers
  `status`; stops it with SIGTERM (exit status) or SIGKILL; reads its RSS from /proc.
- encode / decode_reply / request: frames as protocol/PROTOCOL.md §2 says, one request with a
  timeout over DEALER or REQ.
- Images: real CIFAR-10 JPEGs when found, PNGs written here (zlib + struct), raw pixel frames.
- percentile, summary printing (`name: value` lines).
"""
import glob
import itertools
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import tarfile
import tempfile
import time
import zlib

import zmq

VERSION = b"glfd/1"
ERROR_CODES = ["bad_frames", "unsupported_version", "bad_header", "unknown_command", "too_large", "bad_image",
               "not_found", "store_full", "disk_full", "busy", "not_ready", "shutting_down", "internal"]

# ---------------------------------------------------------------------------------------------
# The daemon


def training_settings(mode):
    """--set values for a training mode: off (no trainer), small (a tiny, fast model that trains and
    publishes often), default (the daemon's own defaults)."""
    if mode == "off":
        return {"training.enabled": "false"}
    if mode == "small":
        return {"training.enabled": "true", "training.width": "4", "training.batch": "16",
                "training.adc_perplexity": "5", "training.min_items": "32", "training.updates_per_image": "2",
                "models.publish_every_steps": "20", "training.nice": "10"}
    if mode == "default":
        return {}
    raise ValueError(f"training mode {mode!r}: off, small or default")


class DaemonError(Exception):
    pass


class Daemon:
    """One glfd process on `state` (created when missing; kept until `cleanup`)."""

    def __init__(self, glfd, state=None, settings=None, prefix="glfd-rel-"):
        self.glfd = os.path.abspath(glfd)
        if not os.access(self.glfd, os.X_OK):
            raise DaemonError(f"{self.glfd} is not an executable")
        self.owned = state is None  # a directory given by the caller is never removed
        self.state = state or tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        os.makedirs(self.state, exist_ok=True)
        self.settings = dict(settings or {})
        self.process = None
        self.endpoint = None
        self.announce_endpoint = None
        self.log_path = os.path.join(self.state, "glfd.log")
        self.starts = 0

    def command(self):
        base = {"paths.state_directory": os.path.join(self.state, "state"),
                "server.request_endpoint": "tcp://127.0.0.1:*", "server.announce_endpoint": "tcp://127.0.0.1:*",
                "metrics.endpoint": ""}
        base.update(self.settings)
        arguments = [self.glfd]
        for key, value in base.items():
            arguments += ["--set", f"{key}={value}"]
        return arguments

    def start(self, timeout=120.0, wait_model=True):
        """Starts glfd and waits until it answers status (and, with wait_model, has a model
        version, so embed works). Raises DaemonError with the log's tail when it does not."""
        if self.process is not None and self.process.poll() is None:
            raise DaemonError("already running")
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== start {self.starts + 1} at {time.strftime('%H:%M:%S')} ====\n".encode())
            offset = log.tell()
            self.process = subprocess.Popen(self.command(), cwd=self.state, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, start_new_session=True)
        self.starts += 1
        self.started_at = time.time()
        deadline = time.time() + timeout
        self.endpoint = None
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise DaemonError(f"glfd exited with status {self.process.returncode} while starting:\n{self.log_tail()}")
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                text = log.read().decode("utf-8", "replace")
            match = re.search(r"serving glfd/1 on (tcp://\S+), announcing on (tcp://\S+);", text)
            if match:
                self.endpoint, self.announce_endpoint = match.group(1), match.group(2)
                break
            time.sleep(0.05)
        if not self.endpoint:
            self.kill()
            raise DaemonError(f"glfd named no endpoint within {timeout:.0f} s:\n{self.log_tail()}")
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise DaemonError(f"glfd exited with status {self.process.returncode} while starting:\n{self.log_tail()}")
            reply = request(self.endpoint, {"cmd": "status", "id": "ready"}, timeout=2.0)
            if reply is not None and reply.ok:
                if not wait_model:
                    return reply.result
                if reply.result.get("model", {}).get("version", 0) >= 1:
                    self.wait_for_embed(deadline)
                    return reply.result
            time.sleep(0.1)
        self.kill()
        raise DaemonError(f"glfd did not answer status (with a model) within {timeout:.0f} s:\n{self.log_tail()}")

    def wait_for_embed(self, deadline):
        """PROTOCOL.md: embed answers as soon as status shows a published version. Waits until it
        does, and records in `embed_lag` how long embed still said not_ready (a finding, printed)."""
        image = png(8, 8, bytes(range(192)))
        first = time.monotonic()
        refusals = 0
        while time.time() < deadline:
            reply = request(self.endpoint, {"cmd": "embed", "id": "probe", "images": [{}]}, [image], timeout=10.0)
            if reply is not None and (reply.ok or reply.code != "not_ready"):
                break
            refusals += 1
            time.sleep(0.02)
        self.embed_lag = (refusals, time.monotonic() - first)
        if refusals:
            print(f"finding: status showed model version >= 1 but embed answered not_ready {refusals} times "
                  f"for {self.embed_lag[1]:.2f} s after it", flush=True)

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def status(self, timeout=10.0):
        reply = request(self.endpoint, {"cmd": "status", "id": "status"}, timeout=timeout)
        return reply.result if reply is not None and reply.ok else None

    def rss_mb(self, field="VmRSS"):
        """Resident MiB: VmRSS (all), RssAnon (heap: what a leak grows) or RssFile (mapped files: the store)."""
        return rss_mb(self.pid, field) if self.alive() else None

    def kill(self):
        """SIGKILL and reap; the exit status (negative signal number)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        return self.process.wait()

    def terminate(self, timeout=120.0):
        """SIGTERM; the exit status, or None when it had not exited after `timeout` (then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as log:
                return "".join(log.read().decode("utf-8", "replace").splitlines(True)[-lines:])
        except OSError:
            return ""

    def cleanup(self, keep=False):
        if self.alive():
            self.kill()
        if not keep and self.owned:
            shutil.rmtree(self.state, ignore_errors=True)

    def finish(self, failed, keep=False):
        """The end of a tool's run: the state directory goes unless kept or the run failed."""
        self.cleanup(keep=keep or failed)
        if failed:
            print(f"state kept for inspection: {self.state}", flush=True)


def rss_mb(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


# ---------------------------------------------------------------------------------------------
# Frames


def encode(header, payloads=()):
    """[glfd/1, header JSON, payloads...]; `header` may be a dict or already bytes."""
    if isinstance(header, (dict, list)):
        header = json.dumps(header, separators=(",", ":")).encode()
    elif isinstance(header, str):
        header = header.encode()
    return [VERSION, header] + [bytes(p) for p in payloads]


class Reply:
    """A decoded reply: header dict (None when unreadable), ok, result, error, payload frames."""

    __slots__ = ("frames", "header", "ok", "result", "error", "payloads", "problem", "delimited")

    def __init__(self, frames):
        self.frames = frames
        self.delimited = False
        if frames and frames[0] == b"":  # a message the server took for a REQ envelope
            frames = frames[1:]
            self.delimited = True
        self.header, self.ok, self.result, self.error, self.payloads, self.problem = None, False, None, None, [], None
        if len(frames) < 2 or frames[0] != VERSION:
            self.problem = f"reply frames {[f[:16] for f in frames[:2]]!r}"
            return
        try:
            self.header = json.loads(frames[1])
        except ValueError as error:
            self.problem = f"reply header not JSON: {error}"
            return
        if not isinstance(self.header, dict) or not isinstance(self.header.get("ok"), bool):
            self.problem = "reply header has no boolean ok"
            self.header = self.header if isinstance(self.header, dict) else None
            return
        self.ok = self.header["ok"]
        self.payloads = frames[2:]
        if self.ok:
            self.result = self.header.get("result")
            if not isinstance(self.result, dict):
                self.problem = "ok reply without a result object"
        else:
            self.error = self.header.get("error")
            if not isinstance(self.error, dict) or not isinstance(self.error.get("code"), str):
                self.problem = "error reply without error.code"
                self.error = {"code": "?", "message": str(self.error)}

    @property
    def id(self):
        return self.header.get("id") if isinstance(self.header, dict) else None

    @property
    def has_id(self):
        return isinstance(self.header, dict) and "id" in self.header

    @property
    def code(self):
        return None if self.ok else (self.error or {}).get("code", "?")

    @property
    def index(self):
        return None if self.ok or not self.error else self.error.get("index")

    def __repr__(self):
        return f"Reply({self.header!r}, {len(self.payloads)} payloads{', ' + self.problem if self.problem else ''})"


_context = None


def context():
    global _context
    if _context is None:
        _context = zmq.Context.instance()
    return _context


def dealer(endpoint, hwm=10000):
    socket = context().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SNDHWM, hwm)
    socket.setsockopt(zmq.RCVHWM, hwm)
    socket.connect(endpoint)
    return socket


def request(endpoint, header, payloads=(), timeout=30.0, frames=None, kind=zmq.REQ):
    """One request on a fresh socket: the Reply, or None on timeout. `frames` sends those exact
    frames instead of encoding header and payloads."""
    socket = context().socket(kind)
    socket.setsockopt(zmq.LINGER, 0)
    try:
        socket.connect(endpoint)
        socket.send_multipart(frames if frames is not None else encode(header, payloads))
        if socket.poll(int(timeout * 1000)):
            return Reply(socket.recv_multipart())
        return None
    finally:
        socket.close()


class Client:
    """A DEALER client for sequential requests matched by id (late replies to timed-out requests are
    skipped). `call` returns the Reply or None on timeout."""

    _numbers = itertools.count(1)

    def __init__(self, endpoint, prefix="c"):
        self.endpoint = endpoint
        self.socket = dealer(endpoint)
        self.prefix = f"{prefix}{next(self._numbers)}-"
        self.ids = itertools.count(1)

    def call(self, header, payloads=(), timeout=30.0):
        request_id = self.prefix + str(next(self.ids))
        header = dict(header, id=request_id)
        self.socket.send_multipart(encode(header, payloads))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.socket.poll(int(left * 1000)):
                return None
            reply = Reply(self.socket.recv_multipart())
            if reply.id == request_id:
                return reply

    def reconnect(self):
        self.socket.close(linger=0)
        self.socket = dealer(self.endpoint)

    def close(self):
        self.socket.close(linger=0)


# ---------------------------------------------------------------------------------------------
# Images


def png(width, height, pixels, channels=3, bit_depth=8, color_type=None, compress_level=6,
        ihdr_override=None, idat=None, extra_chunks=()):
    """A PNG of 8-bit pixels (rows top to bottom, channels interleaved), filter 0 on every row.
    `ihdr_override` replaces the 13 IHDR bytes; `idat` replaces the compressed data."""
    if color_type is None:
        color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    if idat is None:
        row = width * channels
        raw = b"".join(b"\x00" + bytes(pixels[y * row:(y + 1) * row]) for y in range(height))
        idat = zlib.compress(raw, compress_level)
    ihdr = ihdr_override if ihdr_override is not None else struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    out = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", ihdr)]
    out += [chunk(kind, body) for kind, body in extra_chunks]
    out += [chunk(b"IDAT", idat), chunk(b"IEND", b"")]
    return b"".join(out)


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def pattern_pixels(seed, width=32, height=32, channels=3):
    """Deterministic pixels for a seed (a string or int): smooth gradients plus noise, distinct per seed."""
    rng = random.Random(seed)
    a, b, c = rng.random() * 6, rng.random() * 6, rng.randrange(256)
    noise = rng.randbytes(width * height * channels)
    out = bytearray(width * height * channels)
    i = 0
    for y in range(height):
        for x in range(width):
            base = int(a * x + b * y + c)
            for k in range(channels):
                out[i] = (base + 40 * k + (noise[i] & 31)) & 255
                i += 1
    return bytes(out)


_jpegs = None


def cifar_jpegs(limit=2000, seed=0):
    """Real 32×32 CIFAR-10 JPEGs: /tmp/cifar/train/*/*.jpg, else inside
    /work/shared/data/cifar10/train.tar.gz; [] when neither is there."""
    global _jpegs
    if _jpegs is not None:
        return _jpegs[:limit]
    files = sorted(glob.glob("/tmp/cifar/train/*/*.jpg"))
    jpegs = []
    if files:
        random.Random(seed).shuffle(files)
        for name in files[:max(limit, 2000)]:
            with open(name, "rb") as f:
                jpegs.append(f.read())
    else:
        for archive in ("/work/shared/data/cifar10/train.tar.gz",
                        os.path.join(os.path.dirname(__file__), "../../../shared/data/cifar10/train.tar.gz")):
            if os.path.isfile(archive):
                with tarfile.open(archive) as tar:
                    for member in tar:
                        if member.isfile() and member.name.endswith(".jpg"):
                            jpegs.append(tar.extractfile(member).read())
                            if len(jpegs) >= max(limit, 2000):
                                break
                break
    _jpegs = [j for j in jpegs if j[:2] == b"\xff\xd8"]
    return _jpegs[:limit]


def valid_image(rng, kind=None):
    """(bytes, descriptor) of a small valid image: a CIFAR JPEG, a PNG, or raw pixels."""
    jpegs = cifar_jpegs()
    kind = kind or rng.choice(["jpeg", "png", "raw"] if jpegs else ["png", "raw"])
    if kind == "jpeg" and jpegs:
        return rng.choice(jpegs), {}
    pixels = pattern_pixels(rng.random(), 32, 32, 3)
    if kind == "png":
        return png(32, 32, pixels), {}
    return pixels, {"format": "raw", "width": 32, "height": 32, "channels": 3}


# ---------------------------------------------------------------------------------------------
# Numbers and output


def percentile(values, p):
    """The p-th percentile (0–100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 1e6 else f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in sorted(value.items())) or "none"
    return str(value)


def print_summary(rows):
    """Prints `name: value` lines (a list of (name, value) pairs)."""
    print("---- summary ----", flush=True)
    for name, value in rows:
        print(f"{name}: {fmt(value)}", flush=True)


def add_daemon_arguments(parser, training="off"):
    parser.add_argument("--glfd", required=True, help="the glfd binary (copy it out of .build first)")
    parser.add_argument("--state", help="state directory (default: a fresh one under /tmp, removed at the end)")
    parser.add_argument("--keep-state", action="store_true", help="do not remove the state directory at the end")
    parser.add_argument("--training", choices=["off", "small", "default"], default=training,
                        help=f"trainer settings (default {training})")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="extra glfd setting (repeatable)")
    parser.add_argument("--seed", type=int, default=1)


def daemon_settings(args, extra=None):
    settings = training_settings(args.training)
    settings.update(extra or {})
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key.strip()] = value
    return settings


def print_hard_failures(hard):
    for problem in hard:
        print(f"HARD FAILURE: {problem}", flush=True)
