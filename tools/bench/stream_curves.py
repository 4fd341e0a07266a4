#!/usr/bin/env python3
"""The stream benchmark's curves as a PNG: kNN against the share of the stream sent, one line per
run, and each run's first task's classes dashed (its forgetting), with final, area and forgetting
in the legend; below, status's drift score after each request, with the task boundaries.

Each run is LABEL=FILE, FILE a JSON written by `glf-bench stream --out FILE`:

    python3 tools/bench/stream_curves.py --out runs/stream/camera.png \\
        "fifo=runs/stream/camera-fifo.json" "minred=runs/stream/camera-minred.json"

Needs matplotlib.
"""
import argparse, json, sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="LABEL=FILE")
    parser.add_argument("--out", required=True)
    parser.add_argument("--title", default=None)
    args = parser.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (axes, drift_axes) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    for index, run in enumerate(args.runs):
        label, _, path = run.partition("=")
        if not path:
            sys.exit(f"{run}: expected LABEL=FILE")
        with open(path) as f:
            report = json.load(f)
        points = report["checkpoints"]
        fractions = [100 * p["fraction"] for p in points]
        color = f"C{index}"
        summary = f"{label}: final {100 * report['final']:.1f}%, area {100 * report['area']:.1f}%, forgetting {100 * report['forgetting']:.1f}"
        axes.plot(fractions, [100 * p["knn"] for p in points], color=color, marker="o", label=summary)
        if len(points[0]["knn_by_task"]) > 1:
            axes.plot(fractions, [100 * p["knn_by_task"][0] for p in points], color=color, linestyle="--", alpha=0.6)
        drift = [d for d in report.get("drift", []) if d.get("score") is not None]
        if drift:
            frames = int(report["settings"]["frames"])
            drift_axes.plot([100 * d["frames"] / frames for d in drift], [d["score"] for d in drift], color=color, linewidth=1)
        if index == 0:
            frames = int(report["settings"]["frames"])
            for start in report.get("task_starts", [])[1:]:
                for ax in (axes, drift_axes):
                    ax.axvline(100 * start / frames, color="gray", linestyle=":", linewidth=1)
    settings = json.load(open(args.runs[0].partition("=")[2]))["settings"]
    axes.set_title(args.title or f"{settings['order']}: {settings['images']} images, {settings['updates_per_image']} updates per image, seed {settings['seed']}")
    drift_axes.set_xlabel("stream sent (%); dotted: task boundaries")
    drift_axes.set_ylabel("drift score")
    drift_axes.axhline(1, color="gray", linewidth=0.5)
    drift_axes.grid(alpha=0.3)
    axes.set_ylabel("kNN top-1 (%), dashed: the first task's classes")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
