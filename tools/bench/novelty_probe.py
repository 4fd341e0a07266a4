#!/usr/bin/env python3
"""Can repeated camera frames be told from new images? Pixels against a trained encoder (issue 15).

    python3 tools/bench/novelty_probe.py --model runs/hour/simclr-adc-progressive16-s0 [--glf .build/release/glf]

Makes camera frames as `glf-bench stream` does (each image 5 times, shifted up to 3 pixels with
the edges clamped, brightness x0.85-1.15) of 30 CIFAR-10 training images per class, beside 300
other training images per class; then asks, for every frame, how near its nearest sibling frame
and its nearest other image lie:
  pixels   8 x 8 grey thumbnails, zero-mean cosine (the cheap detector)
  encoder  `glf embed` with --model, distance 1 - cosine over the other images' own spacing
and prints, for thresholds of the encoder's ratio, the share of repeats and of new images that a
novelty count would call repeats. Needs numpy and pillow, and /tmp/cifar (tools/quality/README.md).
"""
import argparse, os, subprocess, sys, tempfile
import numpy as np
from PIL import Image


def jitter(image, rng):
    dx, dy = rng.integers(-3, 4, 2)
    ys, xs = np.clip(np.arange(32) - dy, 0, 31), np.clip(np.arange(32) - dx, 0, 31)
    return np.clip(np.round(image[ys][:, xs] * rng.uniform(0.85, 1.15)), 0, 255).astype(np.uint8)


def thumbnail(image):
    grey = image.astype(np.float32).mean(axis=2).reshape(8, 4, 8, 4).mean(axis=(1, 3)).ravel()
    grey -= grey.mean()
    return grey / max(np.linalg.norm(grey), 1e-6)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--glf", default=".build/release/glf")
    parser.add_argument("--cifar", default="/tmp/cifar/train")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    folder = tempfile.mkdtemp(prefix="novelty-probe-")
    frames, others = [], []          # (key, pixels)
    for name in sorted(os.listdir(args.cifar)):
        files = sorted(os.listdir(f"{args.cifar}/{name}"))
        for directory in (f"{folder}/frames_{name}", f"{folder}/others_{name}"):
            os.makedirs(directory)
        for i, f in enumerate(files[:30]):
            image = np.asarray(Image.open(f"{args.cifar}/{name}/{f}").convert("RGB"), dtype=np.float32)
            for k in range(5):
                frame = jitter(image, rng)
                Image.fromarray(frame).save(f"{folder}/frames_{name}/{i:03d}_{k}.png")
        for f in files[1000:1300]:
            Image.open(f"{args.cifar}/{name}/{f}").convert("RGB").save(f"{folder}/others_{name}/{f[:-4]}.png")
    subprocess.run([args.glf, "embed", "--model", args.model, "--data", folder, "--out", f"{folder}/emb"], check=True,
                   stdout=subprocess.DEVNULL)
    names = open(f"{folder}/emb.txt").read().split("\n")
    vectors = np.load(f"{folder}/emb.npy")
    names = names[:len(vectors)]
    is_frame = np.array(["/frames_" in n for n in names])
    key = np.array([n.split("/")[-2] + "/" + n.split("/")[-1].split("_")[0] for n in names])
    pixels = np.stack([thumbnail(np.asarray(Image.open(n if n.startswith("/") else f"{folder}/{n}"))) for n in names])

    def nearest(rows):
        rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        f, o = rows[is_frame], rows[~is_frame]
        same = key[is_frame][:, None] == key[is_frame][None, :]
        s = f @ f.T
        np.fill_diagonal(s, -2)
        oo = o @ o.T
        np.fill_diagonal(oo, -2)
        return np.where(same, s, -2).max(1), (f @ o.T).max(1), oo.max(1)

    sibling, other, _ = nearest(pixels)
    print(f"pixels: a frame's nearest sibling, cosine median {np.median(sibling):.3f} (p5 {np.percentile(sibling, 5):.3f}); "
          f"its nearest other image {np.median(other):.3f} (p95 {np.percentile(other, 95):.3f})")
    for threshold in (0.8, 0.9, 0.95):
        print(f"  cosine at least {threshold}: repeats {np.mean(sibling >= threshold):.3f}, new images {np.mean(other >= threshold):.3f}")
    sibling, other, spacing_rows = nearest(vectors)
    spacing = np.mean(1 - spacing_rows)
    ds, do = (1 - sibling) / spacing, (1 - other) / spacing
    print(f"encoder: the other images' spacing (mean 1 - cos to the nearest) {spacing:.4f}")
    print(f"  a frame's nearest sibling / spacing: median {np.median(ds):.3f}, p95 {np.percentile(ds, 95):.3f}")
    print(f"  a frame's nearest other image / spacing: median {np.median(do):.3f}, p5 {np.percentile(do, 5):.3f}")
    for threshold in (0.1, 0.2, 0.3, 0.5):
        print(f"  within {threshold} x spacing: repeats {np.mean(ds < threshold):.3f}, new images {np.mean(do < threshold):.3f}")


if __name__ == "__main__":
    sys.exit(main())
