#!/usr/bin/env python3
"""The FAISS peer of `glf-bench daemon`: the same vectors, the same queries, the same fields.

    .build/release/glf-bench daemon --data /tmp/cifar/train --count 100000 --out /tmp/benchd
    python3 tools/bench/daemon_peer.py --dir /tmp/benchd      # --k 10 --m 16 --ef-construction 200 --ef-search 64

Reads what glf wrote to DIR: embeddings.npy [N, D] (the daemon's catalog, exported over ZeroMQ:
unit rows in id order), queries.npy [Q, D] (the embed replies of held-out images), glfd_exact.npy
[Q, k] (the daemon's exact answers as row numbers of embeddings.npy) and glf.json (glf's figures).
Everything runs on one thread (faiss.omp_set_num_threads(1)), like glf's in-process lines, and
every timed loop is the fastest of three passes (glf's in-process lines too):

  exact, one query            IndexFlatIP, one search() call per query: p50/p99 and queries/s
                              (each call pays Python's few microseconds; glf's calls pay none)
  exact, all queries in one   IndexFlatIP, one search() call for all Q, twice: as FAISS chooses
                              (faiss 1.15 keeps its SIMD scan below distance_compute_blas_threshold
                              = 128,000 queries) and with the threshold at 1, so it is sgemm like
                              glf's ExactIndex batched line; the ratio takes the faster
  hnsw build                  IndexHNSWFlat, inner product, M 16, efConstruction 200
  hnsw ef 64, one query       one search() per query, efSearch 64; recall@k against IndexFlatIP
                              (by score: the store repeats its files, and copies tie)
  hnsw ef 64, all queries     one search() for all Q on one thread: no Python per query, the figure
                              to compare with glf's per-query loop
  agreement                   glfd's exact answers (over ZeroMQ) against IndexFlatIP's

then, from glf.json, the ratios glf / FAISS. Queries/s is Q over the whole timed loop. Nothing is
asserted: the machine is shared, read the ratios. Needs numpy and faiss-cpu.

The faiss-cpu wheel bundles its own OpenBLAS, which (like Debian's, see README.md) does not
recognise recent Xeons and runs generic SSE3 kernels: 3× slower sgemm here. glf restarts itself
with OPENBLAS_CORETYPE set in that case, so this script sets it the same way before loading faiss
(unless it is set already), and prints the choice.
"""
import argparse
import json
import os
import time


def better_openblas_core():
    """What glf's BLAS.betterCoreType picks from the CPU flags: SkylakeX, Haswell or None."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return None
    if {"avx512f", "avx512bw", "avx512vl"} <= set(flags):
        return "SkylakeX"
    if {"avx2", "fma"} <= set(flags):
        return "Haswell"
    return None


# OpenBLAS reads this once, when it is loaded: before importing numpy and faiss.
if "OPENBLAS_CORETYPE" not in os.environ and better_openblas_core():
    os.environ["OPENBLAS_CORETYPE"] = better_openblas_core()

import faiss  # noqa: E402
import numpy as np  # noqa: E402


def recall(approximate_scores, exact_scores):
    """recall@k as ann-benchmarks (and glf) count it: the share of answers whose score reaches the
    exact k-th score (less 1e-5), so that any of several copies of equal score counts."""
    threshold = np.asarray(exact_scores)[:, -1:] - 1e-5
    return float((np.asarray(approximate_scores) >= threshold).sum()) / np.asarray(exact_scores).size


def percentile(values, q):
    """Nearest rank, as glf computes it."""
    ordered = sorted(values)
    rank = int(np.ceil(q * len(ordered))) - 1
    return ordered[min(len(ordered) - 1, max(0, rank))]


def report(label, figures):
    print("  " + label.ljust(48) + figures)


def latency_text(latencies, seconds, unit="queries/s"):
    return (f"p50 {percentile(latencies, 0.5) * 1e3:7.3f} ms   p99 {percentile(latencies, 0.99) * 1e3:7.3f} ms   "
            f"{len(latencies) / seconds:8.0f} {unit}")


def one_at_a_time(index, queries, k, passes=3):
    """One search() call per query, `passes` times over all of them; the fastest pass (as glf
    takes): its answers' scores, per-query latencies and total seconds."""
    best = None
    for _ in range(passes):
        answers, latencies = [], []
        start = time.perf_counter()
        for row in queries:
            began = time.perf_counter()
            scores, _ = index.search(row[None, :], k)
            latencies.append(time.perf_counter() - began)
            answers.append(scores[0])
        seconds = time.perf_counter() - start
        if best is None or seconds < best[2]:
            best = (np.array(answers), latencies, seconds)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="the --out folder of glf-bench daemon")
    parser.add_argument("--k", type=int, default=None, help="neighbours (default: glf's k from glf.json, else 10)")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=64)
    args = parser.parse_args()

    glf_path = os.path.join(args.dir, "glf.json")
    glf = json.load(open(glf_path)) if os.path.exists(glf_path) else {}
    k = args.k or int(glf.get("k", 10))
    items = np.ascontiguousarray(np.load(os.path.join(args.dir, "embeddings.npy")), dtype=np.float32)
    queries = np.ascontiguousarray(np.load(os.path.join(args.dir, "queries.npy")), dtype=np.float32)
    (n, d), q = items.shape, queries.shape[0]
    faiss.omp_set_num_threads(1)
    print(f"daemon_peer.py: {n} × {d} vectors exported by glfd from {args.dir}, {q} queries, k {k}; faiss {faiss.__version__}, 1 thread")
    print(f"  OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} (for FAISS's bundled OpenBLAS, as glf sets it for its own)")

    flat = faiss.IndexFlatIP(d)
    flat.add(items)
    truth, latencies, seconds = one_at_a_time(flat, queries, k)
    flat_qps = q / seconds
    report("exact, one query (faiss IndexFlatIP)", latency_text(latencies, seconds))
    glfd_exact_path = os.path.join(args.dir, "glfd_exact.npy")
    if os.path.exists(glfd_exact_path):
        rows = np.load(glfd_exact_path).astype(np.int64)[:, :k]
        glfd_scores = np.where(rows >= 0, np.einsum("qkd,qd->qk", items[np.maximum(rows, 0)], queries), -np.inf)
        report("  agreement of glfd's exact answers", f"{recall(glfd_scores, truth):9.4f}          (recall@{k} by score of glfd's exact answers)")
    best = min(timed_search(flat, queries, k) for _ in range(3))
    report("exact, all queries in one call (faiss)", f"{q / best:9.0f} queries/s   (FAISS's choice of path)")
    threshold = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = 1
    best_blas = min(timed_search(flat, queries, k) for _ in range(3))
    faiss.cvar.distance_compute_blas_threshold = threshold
    report("exact, all queries in one call (faiss sgemm)", f"{q / best_blas:9.0f} queries/s   (distance_compute_blas_threshold 1)")
    flat_batched_qps = q / min(best, best_blas)

    hnsw = faiss.IndexHNSWFlat(d, args.m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = args.ef_construction
    start = time.perf_counter()
    hnsw.add(items)
    build = time.perf_counter() - start
    report("hnsw build (faiss IndexHNSWFlat)",
           f"{build:9.1f} s          ({n / build:.0f} items/s; M {args.m}, efConstruction {args.ef_construction})")
    hnsw.hnsw.efSearch = args.ef_search
    answers, latencies, seconds = one_at_a_time(hnsw, queries, k)
    hnsw_qps = q / seconds
    hnsw_recall = recall(answers, truth)
    report(f"hnsw ef {args.ef_search}, one query (faiss IndexHNSWFlat)",
           latency_text(latencies, seconds) + f"   recall@{k} {hnsw_recall:.4f}")
    best = min(timed_search(hnsw, queries, k) for _ in range(3))
    hnsw_batched_qps = q / best
    report(f"hnsw ef {args.ef_search}, all queries in one call (faiss)", f"{hnsw_batched_qps:9.0f} queries/s")

    if not glf:
        print(f"  (no glf.json in {args.dir}: no ratios)")
        return
    print(" glf / faiss (queries/s; above 1 means glf is faster)")

    def ratio(label, ours, theirs, note=""):
        if ours is None:
            return
        report(label, f"{ours / theirs:9.2f}          ({ours:.0f} vs {theirs:.0f} queries/s{note})")

    ratio("exact, one query, in process", glf.get("in_process.exact_one_query_qps"), flat_qps)
    ratio("exact, all queries in one call", glf.get("in_process.exact_batched_qps"), flat_batched_qps, "; faiss's faster path")
    ratio("exact over ZeroMQ (training off) vs in process", glf.get("training_off.knn_exact_queries_per_second"), flat_qps,
          "; glfd includes the round trip")
    ratio("hnsw, one query, in process", glf.get("in_process.hnsw_one_query_qps"), hnsw_batched_qps,
          "; faiss all queries in one call")
    if "in_process.hnsw_recall" in glf:
        report("hnsw recall@%d, glf vs faiss" % k, f"{glf['in_process.hnsw_recall']:9.4f} vs {hnsw_recall:.4f}")
    if "in_process.hnsw_build_seconds" in glf:
        report("hnsw build time, glf / faiss", f"{glf['in_process.hnsw_build_seconds'] / build:9.2f}          (seconds; below 1 means glf builds faster)")


def timed_search(index, queries, k):
    start = time.perf_counter()
    index.search(queries, k)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
