#!/usr/bin/env python3
"""How far one glfd goes: serving costs at larger stores, projected from a measured `glf-bench daemon`.

    glf-bench daemon --data /tmp/cifar/train --count 1000000 --out runs/bench-1e6/out
    python3 tools/bench/serving_projection.py --figures runs/bench-1e6/out/glf.json     # --memory-gib 24 --lag-hours 24

Reads glf-bench daemon's figures (glf.json; the store's size N0 is the rebuild's, `publication.items`,
else `items`, else embeddings.npy's rows beside it) and projects each cost to N items by the way it grows (stated per line; nothing
here is measured at N but N0):

  rebuild       a new version's catalog, the whole store embedded under it while training runs
                (grows with N), then its HNSW graph (grows with N log N); knn answers from the
                new version once it is embedded, exactly until the graph is attached.
  memory        the served catalog's bytes per item × N, twice while a rebuild builds the next
                (the old one answers until the new is complete), plus the networks.
  exact knn     one query scans every vector: grows with N (memory-bound).
  HNSW knn      grows with log N.
  serving lag   publication → knn answers from it, at worst: with share s (index.rebuild_share) a
                rebuild of t seconds is followed by a wait of t (1/s − 1), so a version published
                just after one started is served t / s + its own embedding later; when rebuilds
                end before the next version comes (t ≤ s × the interval), its embedding alone.
  training      images/s alone, while a rebuild embeds and while it builds the graph (measured); the
                average over time, rebuilds running min(s, t / interval) of it.

One machine stops where the two catalogs no longer fit in memory (--memory-gib), or where the
serving lag passes what a user would accept (--lag-hours). Nothing is asserted.
"""
import argparse
import json
import math
import os


def npy_rows(path):
    """Rows of a .npy file, from its header (the file itself may be gigabytes)."""
    with open(path, "rb") as f:
        f.read(8)
        length = int.from_bytes(f.read(2), "little")
        header = f.read(length).decode("latin1")
    shape = header.split("'shape':")[1].split(")")[0].strip(" (")
    return int(shape.split(",")[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--figures", required=True, help="glf-bench daemon's glf.json")
    parser.add_argument("--memory-gib", type=float, default=24, help="the machine's memory (GiB)")
    parser.add_argument("--lag-hours", type=float, default=24, help="longest acceptable publication → serving lag")
    parser.add_argument("--items", default="1e5,1e6,3e6,5e6,1e7,1e8", help="store sizes to project to")
    parser.add_argument("--version-minutes", type=float, default=None,
                        help="minutes between published versions (default: 500 steps of 256 at the measured rate, at most 10)")
    args = parser.parse_args()

    f = json.load(open(args.figures))
    n0 = int(f.get("publication.items") or f.get("items") or npy_rows(os.path.join(os.path.dirname(args.figures), "embeddings.npy")))
    embed0, graph0 = f["publication.rebuild_embed_seconds"], f["publication.rebuild_graph_seconds"]
    rebuild0 = embed0 + graph0
    bytes_per_item = f["publication.catalog_bytes"] / n0
    networks = f["publication.networks_bytes"]
    exact0 = f["training_off.knn_exact_p50_ms"]
    hnsw0 = f["training_off.knn_approx_p50_ms"]
    alone = f["training_on.training_alone_images_per_second"]
    during_embed = f["publication.training_during_embed_images_per_second"]
    during_graph = f["publication.training_during_graph_images_per_second"]
    during = (during_embed * embed0 + during_graph * graph0) / rebuild0   # over a whole rebuild
    gib = 1 << 30
    interval = 60 * (args.version_minutes or min(10, 500 * 256 / alone / 60))

    print(f"measured at N0 = {n0:,} items: rebuild {rebuild0 / 60:.1f} min under training "
          f"(the graph {graph0 / 60:.1f} min of it), catalog {bytes_per_item:.0f} B/item, networks {networks / gib:.2f} GiB,")
    print(f"  knn p50 exact {exact0:.1f} ms, HNSW {hnsw0:.2f} ms over ZeroMQ; "
          f"training {alone:.0f} images/s alone, {during:.0f} while a rebuild runs ({during / alone:.2f}); "
          f"a version every {interval / 60:.1f} min")
    print()
    header = ("items", "rebuild h", "lag h (share 1)", "lag h (0.5)", "memory GiB", "exact ms", "HNSW ms",
              "train img/s (1)", "(0.5)", "one machine")
    print("  ".join(f"{h:>15}" for h in header))
    for text in args.items.split(","):
        n = float(text)
        scale = n / n0
        embed, graph = embed0 * scale, graph0 * scale * math.log(n) / math.log(n0)
        rebuild = embed + graph
        memory = (2 * bytes_per_item * n + networks) / gib
        rate = (during_embed * embed + during_graph * graph) / rebuild

        def lag(share):
            return embed if rebuild <= share * interval else rebuild / share + embed

        def training(share):
            return alone - min(share, rebuild / interval) * (alone - rate)
        lag1, lag_half = lag(1), lag(0.5)
        verdict = []
        if memory > args.memory_gib:
            verdict.append("memory")
        if lag1 / 3600 > args.lag_hours:
            verdict.append("lag")
        row = (f"{n:,.0f}", f"{rebuild / 3600:.2f}", f"{lag1 / 3600:.2f}", f"{lag_half / 3600:.2f}", f"{memory:.1f}",
               f"{exact0 * scale:.0f}", f"{hnsw0 * max(1, math.log(n) / math.log(n0)):.2f}",
               f"{training(1):.0f}", f"{training(0.5):.0f}", "exceeds " + ", ".join(verdict) if verdict else "fits")
        print("  ".join(f"{c:>15}" for c in row))


if __name__ == "__main__":
    main()
