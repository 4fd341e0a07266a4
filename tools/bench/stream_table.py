#!/usr/bin/env python3
"""The stream benchmark's runs as the README's table, and what drift did at the task boundaries.

    python3 tools/bench/stream_table.py runs/stream/*.json

One row per run (a JSON written by `glf-bench stream --out FILE`): order, replay policy, LPM prior,
ADC, replay capacity, seed, updates per image, distinct images and frames sent, trainer steps and wall time at the
last checkpoint, final kNN, the area under kNN against the stream's share, forgetting (task 1:
best − last) and the classes in the replay set at the end.

Then, for each run with more than one task, drift's score (status `drift.score`: the last
arrivals' mean distance to their k-th nearest replay member over the replay set's own spacing, k
`index.drift_neighbour`, 1 in builds before it) in two places:
  boundary  the highest score in the first quarter of each new task (one per boundary)
  within    the scores in the second half of every task, when the stream has settled (max, p95)
An alert threshold must lie above `within` and below `boundary` to ring at a boundary and stay
quiet inside a task; the last lines say which thresholds did so on every run.
"""
import argparse, json, math


def load(path):
    with open(path) as f:
        report = json.load(f)
    report["path"] = path
    return report


def row(report):
    s = report["settings"]
    last = report["checkpoints"][-1]
    return (f"| {s['order'].split(' (')[0]} | {s['replay']} | {s['prior']} | {'on' if s['adc'] != 'off' else 'off'} | {int(s['replay_capacity']):,} | {s['seed']} "
            f"| {s['updates_per_image']} | {int(s['images']):,} / {int(s['frames']):,} | {last['step']:,} "
            f"| {last['seconds'] / 60:.1f} | {100 * report['final']:.2f} | {100 * report['area']:.2f} "
            f"| {100 * report['forgetting']:.2f} | {report['replay_classes_at_end']} |")


def name(report):
    s = report["settings"]
    return (f"{s['order'].split(' (')[0]}-{s['replay']}-{s['prior']}" + ("" if s["adc"] != "off" else "-noadc")
            + f"-cap{s['replay_capacity']}")


def drift_at_boundaries(report):
    """(highest score after each boundary, settled scores inside tasks), or None for one task."""
    starts = report.get("task_starts", [])
    frames = int(report["settings"]["frames"])
    points = [(d["frames"], d["score"]) for d in report.get("drift", []) if d.get("score") is not None]
    if len(starts) < 2 or not points:
        return None
    return boundaries_and_within(points, starts, frames)


def boundaries_and_within(points, starts, frames):
    """From (position, score) points of a stream whose tasks begin at `starts`: the highest
    score in the first quarter of each task after the first (nan if none), and the scores in the
    second half of every task."""
    ends = starts[1:] + [frames]
    boundary, within = [], []
    for start, end in zip(starts, ends):
        length = end - start
        if start > 0:
            after = [score for f, score in points if start < f <= start + length // 4]
            boundary.append(max(after) if after else math.nan)
        within += [score for f, score in points if start + length // 2 <= f < end]
    return boundary, within


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="JSON files from glf-bench stream --out")
    args = parser.parse_args()
    reports = sorted((load(p) for p in args.runs), key=lambda r: (r["settings"]["order"] != "iid", r["settings"]["order"], r["path"]))
    for order in sorted({r["settings"]["order"] for r in reports}):
        print(f"order {order}")
    print()
    print("| order | replay | prior | ADC | replay capacity | seed | updates / image | images / frames | steps | minutes | final kNN % | area % | forgetting | replay classes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for report in reports:
        print(row(report))
    print()
    # What each policy kept: members by task at every checkpoint (runs from builds that record it).
    for report in reports:
        kept = [(c["fraction"], c["replay_by_task"], c.get("replay_distinct_images")) for c in report["checkpoints"] if c.get("replay_by_task")]
        if kept:
            print(f"replay {name(report)} by task at each tenth (distinct images): "
                  + "; ".join(f"{'/'.join(map(str, by_task))} ({distinct})" for _, by_task, distinct in kept))
    print()
    lowest_boundary, highest_within = math.inf, -math.inf
    for report in reports:
        found = drift_at_boundaries(report)
        if found is None:
            continue
        boundary, within = found
        print(f"drift {name(report)}: boundaries " + " ".join(f"{b:.2f}" for b in boundary)
              + f"; within tasks max {max(within, default=math.nan):.2f}, p95 {percentile(within, 0.95):.2f}")
        lowest_boundary = min(lowest_boundary, min((b for b in boundary if not math.isnan(b)), default=math.inf))
        highest_within = max(highest_within, max(within, default=-math.inf))
    if math.isfinite(lowest_boundary) and math.isfinite(highest_within):
        verdict = (f"a threshold in ({highest_within:.2f}, {lowest_boundary:.2f}) rings at every boundary and never inside a task"
                   if highest_within < lowest_boundary else
                   f"no threshold separates them: the lowest boundary score {lowest_boundary:.2f} is below the highest within a task {highest_within:.2f}")
        print(f"over all runs: {verdict}")


if __name__ == "__main__":
    main()
