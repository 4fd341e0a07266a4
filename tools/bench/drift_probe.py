#!/usr/bin/env python3
"""Where should drift's alert ring? glfd's drift score on streams under a trained encoder (issue 15).

    python3 tools/bench/drift_probe.py --model runs/hour/simclr-adc-progressive16-s0 [--glf .build/release/glf]

The stream benchmark trains its model from nothing for 312 steps, and under such a model task
boundaries barely move the score (README, "The comparison"). A daemon that has run for a while
serves a trained model; this probe asks what the score does then. It embeds, with `glf embed
--model`, --per-class CIFAR-10 training images of every class and 5 camera frames of each (shifted
up to 3 pixels, brightness x0.85-1.15, as `glf-bench stream` makes them), then replays glfd's
DriftMonitor (Sources/Daemon/DriftMonitor.swift) over two streams of them:
  classes   5 tasks of 2 classes, each task's images shuffled
  camera    the same tasks, inside a task runs of 20 images, each image sent as its 5 frames
with a replay set of --capacity under fifo or reservoir. The model is fixed, so a new reference is
taken every --reference-every arrivals (in glfd: at each new version's catalog): up to 2,048
replay members and their spacing (mean 1 - cosine to the k-th nearest other member); each
arrival's distance to its k-th nearest reference member joins a window of the last 256; the score
is the window's mean over the spacing, once 128 arrivals are measured under the reference.

It prints, for each k of --neighbours, stream and policy, the highest score in the first quarter
of each new task and the scores in the second half of every task (as tools/bench/stream_table.py
does), and which alert levels ring at every boundary and never inside a task. Needs numpy and
pillow, and /tmp/cifar.
"""
import argparse, os, subprocess, sys, tempfile
import numpy as np
from PIL import Image
from stream_table import boundaries_and_within

REFERENCE_SIZE, WINDOW, MINIMUM_ARRIVALS = 2048, 256, 128


def jitter(image, rng):
    dx, dy = rng.integers(-3, 4, 2)
    ys, xs = np.clip(np.arange(32) - dy, 0, 31), np.clip(np.arange(32) - dx, 0, 31)
    return np.clip(np.round(image[ys][:, xs] * rng.uniform(0.85, 1.15)), 0, 255).astype(np.uint8)


def embed(args, rng):
    """(image vectors [classes, per_class, D], frame vectors [classes, per_class, 5, D]), unit rows."""
    folder = tempfile.mkdtemp(prefix="drift-probe-")
    classes = sorted(os.listdir(args.cifar))
    for c, name in enumerate(classes):
        os.makedirs(f"{folder}/{c}")
        for i, f in enumerate(sorted(os.listdir(f"{args.cifar}/{name}"))[:args.per_class]):
            image = np.asarray(Image.open(f"{args.cifar}/{name}/{f}").convert("RGB"), dtype=np.float32)
            Image.fromarray(image.astype(np.uint8)).save(f"{folder}/{c}/{i:05d}_i.png")
            for k in range(5):
                Image.fromarray(jitter(image, rng)).save(f"{folder}/{c}/{i:05d}_{k}.png")
    subprocess.run([args.glf, "embed", "--model", args.model, "--data", folder, "--out", f"{folder}/emb"], check=True,
                   stdout=subprocess.DEVNULL)
    names = open(f"{folder}/emb.txt").read().split("\n")
    vectors = np.load(f"{folder}/emb.npy")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    d = vectors.shape[1]
    images = np.zeros((len(classes), args.per_class, d), np.float32)
    frames = np.zeros((len(classes), args.per_class, 5, d), np.float32)
    for name, v in zip(names, vectors):
        c, stem = name.split("/")[-2:]
        i, kind = stem[:-4].split("_")
        if kind == "i":
            images[int(c), int(i)] = v
        else:
            frames[int(c), int(i), int(kind)] = v
    return images, frames


def streams(images, frames, rng):
    """name → (vectors in stream order, index of each task's first arrival)."""
    classes, per_class = images.shape[:2]
    tasks = rng.permutation(classes).reshape(5, 2)
    out = {}
    order, starts = [], []
    for task in tasks:
        starts.append(len(order))
        members = [(c, i) for c in task for i in range(per_class)]
        order += [members[j] for j in rng.permutation(len(members))]
    out["classes"] = (np.stack([images[c, i] for c, i in order]), starts)
    order, starts = [], []
    for task in tasks:
        starts.append(len(order))
        runs = [(c, list(rng.permutation(per_class)[start:start + 20])) for c in task for start in range(0, per_class, 20)]
        for r in rng.permutation(len(runs)):
            c, images_of_run = runs[r]
            order += [(c, i, k) for i in images_of_run for k in range(5)]
    out["camera"] = (np.stack([frames[c, i, k] for c, i, k in order]), starts)
    return out


def drift_scores(vectors, policy, capacity, reference_every, k, rng):
    """(arrival index, score) after each arrival once measurable, as DriftMonitor computes it."""
    replay, seen, points = [], 0, []
    reference, spacing, window = None, None, []
    for n, v in enumerate(vectors):
        if n > 0 and n % reference_every == 0 and len(replay) >= 2:
            members = np.array(replay if len(replay) <= REFERENCE_SIZE else rng.choice(replay, REFERENCE_SIZE, replace=False))
            reference = vectors[members]
            s = reference @ reference.T
            np.fill_diagonal(s, -2)
            kth = min(k, len(members) - 1)
            spacing = float(np.mean(1 - np.sort(s, axis=1)[:, -kth]))
            window = []
        if reference is not None:
            similarities = np.sort(reference @ v)
            window = (window + [1 - float(similarities[-min(k, len(similarities))])])[-WINDOW:]
            if len(window) >= MINIMUM_ARRIVALS:
                points.append((n, float(np.mean(window)) / spacing))
        seen += 1
        if len(replay) < capacity:
            replay.append(n)
        elif policy == "fifo":
            replay = replay[1:] + [n]
        elif rng.integers(seen) < capacity:
            replay[rng.integers(capacity)] = n
    return points


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--glf", default=".build/release/glf")
    parser.add_argument("--cifar", default="/tmp/cifar/train")
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--reference-every", default="500,2000", help="arrivals between new references (versions), a list")
    parser.add_argument("--neighbours", default="1,10", help="values of k (index.drift_neighbour) to compare")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images, frames = embed(args, rng)
    made = streams(images, frames, rng)
    print(f"{images.shape[0] * images.shape[1]} images ({args.per_class} per class), replay {args.capacity}")
    for k in (int(x) for x in args.neighbours.split(",")):
        for every in (int(x) for x in args.reference_every.split(",")):
            lowest_boundary, highest_within = np.inf, -np.inf
            for name, (vectors, starts) in made.items():
                for policy in ("fifo", "reservoir"):
                    points = drift_scores(vectors, policy, args.capacity, every, k, np.random.default_rng(1))
                    boundary, within = boundaries_and_within(points, starts, len(vectors))
                    print(f"k {k:2d}, reference every {every:5d}: {name:8s} {policy:9s} boundaries "
                          + " ".join(f"{b:.2f}" for b in boundary)
                          + f"; within tasks max {max(within):.2f}, p95 {np.percentile(within, 95):.2f}, median {np.median(within):.2f}")
                    lowest_boundary = min(lowest_boundary, np.nanmin(boundary))
                    highest_within = max(highest_within, max(within))
            verdict = (f"a level in ({highest_within:.2f}, {lowest_boundary:.2f}) rings at every boundary and never inside a task"
                       if highest_within < lowest_boundary else
                       f"no level separates them: lowest boundary {lowest_boundary:.2f}, highest inside a task {highest_within:.2f}")
            print(f"k {k:2d}, reference every {every:5d}: {verdict}")


if __name__ == "__main__":
    sys.exit(main())
