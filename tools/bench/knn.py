#!/usr/bin/env python3
"""The Python peer of `glf-bench knn`: FAISS and hnswlib on the same vectors, the same fields.

    .build/release/glf-bench knn --count 100000 --save-npy /tmp/knnbench
    python3 tools/bench/knn.py /tmp/knnbench            # --k 10 --ef 16,64,256 --threads 2

Reads DIR/items.npy [N, D] and DIR/queries.npy [Q, D] (float32 unit rows, written by glf) and prints:

  exact, batched      FAISS IndexFlatIP, all queries in one search() call (best of three), --threads
                      OpenMP threads (glf: the same number of OpenBLAS threads)
  exact, one query    median latency of single-query searches on one thread
  hnsw build          hnswlib (inner product, M 16, ef_construction 200) built on one thread, like glf
  hnsw ef E           queries/s one query at a time on one thread (a knn_query call with
                      num_threads=1, so no Python per query), recall@k against the FAISS answers

Needs numpy, faiss-cpu and hnswlib (`pip install faiss-cpu hnswlib`); nothing in the test suite
imports them. Recall counts scores, as glf's run does (ann-benchmarks' rule: an answer counts when
its score reaches the exact k-th score, less 1e-5).
"""
import argparse
import os
import statistics
import time

import faiss
import hnswlib
import numpy as np


def recall(approximate_scores, exact_scores):
    threshold = np.asarray(exact_scores)[:, -1:] - 1e-5
    return float((np.asarray(approximate_scores) >= threshold).sum()) / np.asarray(exact_scores).size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", help="folder with items.npy and queries.npy from glf-bench knn --save-npy")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ef", default="16,64,256", help="comma-separated ef values")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2, help="threads for the exact batch (FAISS OpenMP)")
    parser.add_argument("--latency-queries", type=int, default=100)
    args = parser.parse_args()

    items = np.ascontiguousarray(np.load(os.path.join(args.dir, "items.npy")), dtype=np.float32)
    queries = np.ascontiguousarray(np.load(os.path.join(args.dir, "queries.npy")), dtype=np.float32)
    (n, d), q, k = items.shape, queries.shape[0], args.k
    print(f"knn.py: {n} × {d} vectors from {args.dir}, {q} queries, k {k}; faiss {faiss.__version__}, hnswlib")

    flat = faiss.IndexFlatIP(d)
    flat.add(items)
    faiss.omp_set_num_threads(args.threads)
    best, truth = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        truth, _ = flat.search(queries, k)
        best = min(best, time.perf_counter() - start)
    print(f"  exact, batched (faiss)  {q / best:9.0f} queries/s   ({q} queries in {best * 1e3:.1f} ms, {args.threads} OpenMP threads)")
    faiss.omp_set_num_threads(1)
    latencies = []
    for row in queries[: args.latency_queries]:
        start = time.perf_counter()
        flat.search(row[None, :], k)
        latencies.append(time.perf_counter() - start)
    median = statistics.median(latencies)
    print(f"  exact, one query        {median * 1e3:9.2f} ms median   ({1 / median:.0f} queries/s, {len(latencies)} queries)")

    graph = hnswlib.Index(space="ip", dim=d)
    graph.init_index(max_elements=n, M=args.m, ef_construction=args.ef_construction, random_seed=2016)
    start = time.perf_counter()
    graph.add_items(items, np.arange(n), num_threads=1)
    build = time.perf_counter() - start
    print(f"  hnsw build (hnswlib)    {build:9.1f} s          ({n / build:.0f} items/s; M {args.m}, efConstruction {args.ef_construction}, 1 thread)")
    for ef in [int(e) for e in args.ef.split(",")]:
        graph.set_ef(max(ef, k))
        start = time.perf_counter()
        _, distances = graph.knn_query(queries, k=k, num_threads=1)  # one query after another, in C++
        answers = 1 - distances  # hnswlib's "ip" distance is 1 − inner product
        seconds = time.perf_counter() - start
        print(f"  hnsw ef {ef:<4d}             {q / seconds:9.0f} queries/s   recall@{k} {recall(answers, truth):.4f}   (1 thread)")


if __name__ == "__main__":
    main()
