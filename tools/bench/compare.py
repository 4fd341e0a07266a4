#!/usr/bin/env python3
"""Runs `glf-bench` and tools/bench/train_step.py side by side and prints one table.

For each thread count (default 1 and 2), ours then torch, interleaved so that a change of load on
the machine hits both; the ratio is ours/torch in images/s. Each row's share is of the sgemm peak
that the same process measured (OpenBLAS for glf, torch.mm for torch); "share/OBLAS" divides torch's
GFLOP/s by the OpenBLAS peak of the glf row beside it, so both rows share one yardstick.

Build ours first: swift build -c release (then the default --glf-bench .build/release/glf-bench is right).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def run_json(command, env=None):
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--glf-bench", default=os.path.join(ROOT, ".build", "release", "glf-bench"))
    p.add_argument("--benchmark", choices=["train-step", "embed"], default="train-step")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--channels-last", action="store_true", help="add torch rows with NHWC memory format")
    p.add_argument("--openblas-coretype", default=None,
                   help="set OPENBLAS_CORETYPE for glf (e.g. SkylakeX when OpenBLAS does not recognise the CPU)")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON list")
    args = p.parse_args()

    common = ["--width", str(args.width), "--size", str(args.size), "--steps", str(args.steps),
              "--warmup", str(args.warmup)] + (["--batch", str(args.batch)] if args.batch else [])
    glf_env = dict(os.environ)
    if args.openblas_coretype:
        glf_env["OPENBLAS_CORETYPE"] = args.openblas_coretype
    load_before = os.getloadavg()
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        t = ["--threads", str(threads)]
        ours = run_json([args.glf_bench, args.benchmark, *common, *t, "--json"], env=glf_env)
        rows.append(ours)
        torch_command = [sys.executable, os.path.join(HERE, "train_step.py"), "--benchmark", args.benchmark,
                         *common, *t, "--json"]
        for extra in ([[], ["--channels-last"]] if args.channels_last else [[]]):
            theirs = run_json(torch_command + extra)
            theirs["ratio"] = ours["imagesPerSecond"] / theirs["imagesPerSecond"]
            theirs["shareOfOpenBLASPeak"] = theirs["gflopPerSecond"] / ours["sgemmPeakGflopPerSecond"]
            rows.append(theirs)
    load_after = os.getloadavg()

    if args.json:
        print(json.dumps({"rows": rows, "loadBefore": load_before, "loadAfter": load_after}, sort_keys=True))
        return
    first = rows[0]
    print(f"{args.benchmark}: width {first['width']}, {first['size']}×{first['size']}, batch {first['batch']}, "
          f"{args.steps} timed steps (median) after {args.warmup} warm-up; "
          f"{first['gflopPerImage']:.4f} GFLOP/image (glf) vs {rows[1]['gflopPerImage']:.4f} (torch)")
    print(f"glf BLAS: {first['blas']}")
    for warning in sorted({r["warning"] for r in rows if r.get("warning")}):
        print(warning)
    header = (f"{'threads':>7}  {'implementation':<20} {'images/s':>9} {'step ms':>9} {'GFLOP/s':>8} "
              f"{'sgemm peak':>10} {'share':>6} {'share/OBLAS':>11} {'ours/torch':>10}")
    print(header)
    print("-" * len(header))
    for r in rows:
        of_openblas = r.get("shareOfOpenBLASPeak", r["shareOfPeak"])
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else ""
        print(f"{r['threads']:>7}  {r['implementation']:<20} {r['imagesPerSecond']:>9.1f} {r['stepMilliseconds']:>9.1f} "
              f"{r['gflopPerSecond']:>8.1f} {r['sgemmPeakGflopPerSecond']:>10.1f} {100 * r['shareOfPeak']:>5.1f}% "
              f"{100 * of_openblas:>10.1f}% {ratio:>10}")
    print(f"load average (1, 5, 15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")


if __name__ == "__main__":
    main()
