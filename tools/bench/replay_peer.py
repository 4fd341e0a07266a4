#!/usr/bin/env python3
"""The Python peer of `glf-bench replay`: FAISS finds the same nearest members, on the same vectors.

    .build/release/glf-bench replay --members 65536 --save-npy /tmp/replaybench
    python3 tools/bench/replay_peer.py /tmp/replaybench

MinRed's view needs each member's nearest other members. glf computes all N² similarities in
sgemm blocks and keeps a top-32 per row; FAISS's IndexFlatIP does the same job when the N vectors
are searched against themselves with k 33 (the first hit is the vector itself). Prints FAISS's time
on glf's thread count and glf's time (from glf_replay.json), and the ratio glf / FAISS in speed.
Needs numpy and faiss-cpu; nothing in the test suite imports them.
"""
import argparse
import json
import os
import time

import faiss
import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", help="folder with members.npy and glf_replay.json from glf-bench replay --save-npy")
    parser.add_argument("--neighbours", type=int, default=32)
    args = parser.parse_args()

    members = np.ascontiguousarray(np.load(os.path.join(args.dir, "members.npy")), dtype=np.float32)
    with open(os.path.join(args.dir, "glf_replay.json")) as f:
        ours = json.load(f)
    n, d = members.shape
    threads = int(ours["threads"])
    faiss.omp_set_num_threads(threads)
    index = faiss.IndexFlatIP(d)
    index.add(members)
    start = time.perf_counter()
    similarities, rows = index.search(members, args.neighbours + 1)
    seconds = time.perf_counter() - start
    itself = float(np.mean(rows[:, 0] == np.arange(n)))
    print(f"replay_peer.py: {n} × {d} members, k {args.neighbours} + itself, {threads} thread(s); faiss {faiss.__version__}")
    print(f"  faiss IndexFlatIP self-search  {seconds:8.2f} s   (first hit is the member itself for {itself:.3f} of rows)")
    print(f"  glf view                       {ours['view_seconds']:8.2f} s   glf is {seconds / ours['view_seconds']:.2f}× FAISS's speed")


if __name__ == "__main__":
    main()
