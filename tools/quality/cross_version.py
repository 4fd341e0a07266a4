#!/usr/bin/env python3
"""Can queries of model version B search a catalog embedded by an older version A? (issue 14)

A new version invalidates every stored embedding: glfd re-embeds the whole store before it serves
it. If consecutive versions were compatible, a new version could answer from the old catalog while
its own is built ("backfilling", Shen et al., CVPR 2020). This measures how compatible glfd's
versions are as they come, with no compatibility term: for each pair (A, B), queries (CIFAR-10
test) embedded by B search the catalog (CIFAR-10 train) embedded by A, against B's own catalog.

  recall@10   |top-10 of B-queries in A's catalog ∩ top-10 in B's catalog| / 10, averaged
  kNN top-1   the weighted 20-NN vote (temperature 0.07, as glf eval knn) of B-queries in A's
              catalog, against the same vote in B's catalog (and A's in A's)

Input: a folder with v<N>-train.npy, v<N>-train.txt, v<N>-test.npy, v<N>-test.txt as `glf embed`
writes them (tools/quality/cross_version.sh makes them from a run's kept versions).

    python3 tools/quality/cross_version.py --dir runs/cross-version --pairs 1:2,2:3,5:6,8:9,5:9,2:9
"""
import argparse
import os

import numpy as np


def load(directory, version, split):
    features = np.load(os.path.join(directory, "v%d-%s.npy" % (version, split))).astype(np.float32)
    features /= np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    with open(os.path.join(directory, "v%d-%s.txt" % (version, split))) as f:
        classes = [line.strip().split("/")[-2] for line in f if line.strip()]
    names = sorted(set(classes))
    return features, np.array([names.index(c) for c in classes])


def top(queries, catalog, k, block=1024):
    """Indices and similarities of the k most similar catalog rows per query, best first."""
    indices, scores = [], []
    for start in range(0, len(queries), block):
        s = queries[start:start + block] @ catalog.T
        part = np.argpartition(-s, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1)
        best = np.take_along_axis(part, order, axis=1)
        indices.append(best)
        scores.append(np.take_along_axis(s, best, axis=1))
    return np.concatenate(indices), np.concatenate(scores)


def knn_accuracy(indices, scores, train_labels, test_labels, classes=10, temperature=0.07):
    votes = np.zeros((len(indices), classes))
    weights = np.exp(scores / temperature)
    for column in range(indices.shape[1]):
        np.add.at(votes, (np.arange(len(indices)), train_labels[indices[:, column]]), weights[:, column])
    return float((votes.argmax(axis=1) == test_labels).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--pairs", required=True, help="A:B,... (catalog version A, query version B)")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    print("| catalog A | queries B | recall@%d of B in A | kNN, B in A | kNN, B in B | kNN, A in A |" % args.k)
    print("|---|---|---|---|---|---|")
    cache = {}

    def get(version, split):
        if (version, split) not in cache:
            cache[(version, split)] = load(args.dir, version, split)
        return cache[(version, split)]

    for pair in args.pairs.split(","):
        a, b = (int(x) for x in pair.split(":"))
        (catalog_a, labels), (catalog_b, _) = get(a, "train"), get(b, "train")
        (queries_a, test_labels), (queries_b, _) = get(a, "test"), get(b, "test")
        own, own_scores = top(queries_b, catalog_b, 20)
        cross, cross_scores = top(queries_b, catalog_a, 20)
        old, old_scores = top(queries_a, catalog_a, 20)
        recall = np.mean([len(set(x[:args.k]) & set(y[:args.k])) / args.k for x, y in zip(own, cross)])
        print("| %d | %d | %.3f | %.2f%% | %.2f%% | %.2f%% |" % (
            a, b, recall, 100 * knn_accuracy(cross, cross_scores, labels, test_labels),
            100 * knn_accuracy(own, own_scores, labels, test_labels), 100 * knn_accuracy(old, old_scores, labels, test_labels)))


if __name__ == "__main__":
    main()
