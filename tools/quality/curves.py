#!/usr/bin/env python3
"""kNN accuracy against wall-clock minutes and against images seen, as a PNG (issue 11's picture).

Each run is LABEL=DIR, where DIR lists its models in a TSV of minutes, step, images, directory:
`kept.tsv` (glf train --keep-every-minutes) or `versions.tsv` (tools/quality/stream_hour.sh).
Every model is scored once with `glf eval knn` (CIFAR-10 test, bank = train) and the score is
cached in DIR/knn.tsv, so re-plotting is instant.

    python3 tools/quality/curves.py --out docs/learning-curves.png \
        "SimCLR + ADC=runs/recipe-adc" "SimCLR=runs/recipe" "glfd, streamed=runs/stream-hour"

Needs matplotlib (pip install matplotlib) and a glf binary ($GLF, default .build/release/glf).
"""
import argparse, csv, os, re, subprocess, sys

def models(run_dir):
    for name in ("kept.tsv", "versions.tsv"):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            with open(path) as f:
                return [dict(r) for r in csv.DictReader(f, delimiter="\t")]
    sys.exit(f"{run_dir}: no kept.tsv or versions.tsv")

def knn(glf, run_dir, directory, train, test, cache):
    if directory in cache:
        return cache[directory]
    out = subprocess.run([glf, "eval", "knn", "--model", os.path.join(run_dir, directory), "--train", train, "--test", test],
                         capture_output=True, text=True, check=True).stdout
    accuracy = float(re.search(r"kNN top-1 ([0-9.]+)%", out).group(1))
    cache[directory] = accuracy
    with open(os.path.join(run_dir, "knn.tsv"), "a") as f:
        f.write(f"{directory}\t{accuracy}\n")
    return accuracy

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="LABEL=DIR")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--glf", default=os.environ.get("GLF", ".build/release/glf"))
    parser.add_argument("--train", default="/tmp/cifar/train")
    parser.add_argument("--test", default="/tmp/cifar/test")
    parser.add_argument("--floor", type=float, default=45.80, help="raw-pixel kNN floor, drawn as a line")
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_time, by_images) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for run in args.runs:
        label, run_dir = run.split("=", 1)
        cache = {}
        cached = os.path.join(run_dir, "knn.tsv")
        if os.path.exists(cached):
            with open(cached) as f:
                cache = {d: float(a) for d, a in (line.rstrip("\n").split("\t") for line in f if line.strip())}
        rows = models(run_dir)
        points = [(float(r["minutes"]), int(r["images"]), knn(args.glf, run_dir, r["directory"], args.train, args.test, cache))
                  for r in rows]
        for minutes, images, accuracy in points:
            print(f"{label}\t{minutes:.1f} min\t{images} images\t{accuracy:.2f}%")
        by_time.plot([p[0] for p in points], [p[2] for p in points], marker="o", label=label)
        by_images.plot([p[1] / 1e6 for p in points], [p[2] for p in points], marker="o", label=label)
    for axis, xlabel in ((by_time, "wall-clock minutes (2 cores)"), (by_images, "images seen (millions, both views count once)")):
        axis.axhline(args.floor, color="grey", linestyle=":", label=f"raw pixels {args.floor:.1f}%")
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
    by_time.set_ylabel("kNN top-1, CIFAR-10 test (%)")
    by_time.legend(loc="lower right")
    fig.suptitle("What glfd learns per minute: kNN accuracy (k 20, T 0.07; bank = CIFAR-10 train)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")

if __name__ == "__main__":
    main()
