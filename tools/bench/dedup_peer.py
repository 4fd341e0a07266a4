#!/usr/bin/env python3
"""The peer of `glf-bench dedup`: FAISS joins the same items with themselves.

    .build/release/glf-bench dedup --save-npy /tmp/dedup && python3 tools/bench/dedup_peer.py /tmp/dedup

IndexFlatIP (exact inner product, the items are unit rows) searching every item for its 11 nearest
(itself and 10 others), as glfd's self-join does, on the threads given; prints the seconds, to
compare with glf-bench's "self-join" line. Needs faiss-cpu and numpy.
"""
import argparse, time
import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import faiss
    faiss.omp_set_num_threads(args.threads)
    items = np.load(f"{args.dir}/items.npy")
    index = faiss.IndexFlatIP(items.shape[1])
    index.add(items)
    started = time.perf_counter()
    index.search(items, 11)
    seconds = time.perf_counter() - started
    n, d = items.shape
    print(f"  FAISS {faiss.__version__} IndexFlatIP self-search (k 11, {args.threads} threads): {seconds:8.1f} s "
          f"({2 * n * n * d / seconds / 1e9:.1f} GFLOP/s) on {n} x {d}")


if __name__ == "__main__":
    main()
