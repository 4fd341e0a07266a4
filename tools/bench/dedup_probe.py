#!/usr/bin/env python3
"""Which `within` should `duplicates` use? Copies against distinct images under a trained encoder.

    python3 tools/bench/dedup_probe.py --model runs/hour/simclr-adc-progressive16-s0 [--glf .build/release/glf]

Takes --per-class CIFAR-10 training images of every class, and for every 10th a copy shifted by a
pixel and 5% brighter and a copy re-encoded as a JPEG of quality 70 (as DuplicatesTests plants
them), embeds all with `glf embed --model`, and measures distances (1 - cosine) in units of the
spacing `duplicates` uses (the median distance from an item to its 10th nearest other item).
Prints, for each `within`, the share of copies within it of their original and the share of
distinct images with another distinct image that close (CIFAR-10 has a few true duplicates of its
own). Needs numpy and pillow, and /tmp/cifar.
"""
import argparse, io, os, subprocess, sys, tempfile
import numpy as np
from PIL import Image


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--glf", default=".build/release/glf")
    parser.add_argument("--cifar", default="/tmp/cifar/train")
    parser.add_argument("--per-class", type=int, default=300)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="dedup-probe-")
    os.makedirs(f"{folder}/all")
    n = 0
    for name in sorted(os.listdir(args.cifar)):
        for f in sorted(os.listdir(f"{args.cifar}/{name}"))[:args.per_class]:
            image = np.asarray(Image.open(f"{args.cifar}/{name}/{f}").convert("RGB"))
            Image.fromarray(image).save(f"{folder}/all/{n:06d}_original.png")
            if n % 10 == 0:
                shifted = np.clip(np.round(image[:, np.clip(np.arange(32) - 1, 0, 31)] * 1.05), 0, 255).astype(np.uint8)
                Image.fromarray(shifted).save(f"{folder}/all/{n:06d}_shifted.png")
                jpeg = io.BytesIO()
                Image.fromarray(image).save(jpeg, "JPEG", quality=70)
                jpeg.seek(0)
                Image.open(jpeg).convert("RGB").save(f"{folder}/all/{n:06d}_jpeg.png")
            n += 1
    subprocess.run([args.glf, "embed", "--model", args.model, "--data", folder, "--out", f"{folder}/emb"], check=True,
                   stdout=subprocess.DEVNULL)
    vectors = np.load(f"{folder}/emb.npy")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = [line.split("/")[-1][:-4] for line in open(f"{folder}/emb.txt").read().split("\n")[:len(vectors)]]
    row = {name: i for i, name in enumerate(names)}
    similarities = vectors @ vectors.T
    np.fill_diagonal(similarities, -2)
    spacing = np.median(1 - np.sort(similarities, axis=1)[:, -10])
    distance = (1 - similarities) / spacing
    copies = np.array([distance[row[name.split("_")[0] + "_original"], i] for name, i in row.items() if not name.endswith("original")])
    originals = [i for name, i in row.items() if name.endswith("original")]
    nearest_other = distance[np.ix_(originals, originals)].min(axis=1)
    print(f"{len(originals)} images, {len(copies)} copies; spacing {spacing:.4f}; a copy's distance to its original over the "
          f"spacing: median {np.median(copies):.3f}, p95 {np.percentile(copies, 95):.3f}, max {copies.max():.3f}")
    for within in (0.05, 0.1, 0.15, 0.2, 0.3):
        print(f"  within {within:.2f}: copies found {np.mean(copies <= within):.3f}, "
              f"distinct images with another that close {np.mean(nearest_other <= within):.4f}")


if __name__ == "__main__":
    sys.exit(main())
