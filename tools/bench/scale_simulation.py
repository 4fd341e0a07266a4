#!/usr/bin/env python3
"""glfd past one machine, projected: partitions × replicas for 10⁶–10⁹ items on 1–64 nodes.

    python3 tools/bench/scale_simulation.py                    # the table of docs/scale.md
    python3 tools/bench/scale_simulation.py --node-gib 64 --jetstream-ingest 20000 --items 1e8

The plan (docs/scale.md): one trainer publishes versions; the catalog is split into P partitions
by item (each partition its own JetStream subject set and consumer group); every partition is
served by R serve-only replicas, each holding the partition's catalog (embeddings + HNSW graph)
and re-embedding it for each new version; a query goes to one replica of every partition and the
P top-k lists are merged. Nodes = P × R (the trainer is one more machine).

Every constant below is a measurement of this machine class (2 cores, 24 GiB), named with where
the README reports it; the growth laws are the ones tools/bench/serving_projection.py uses (embed
∝ N, HNSW build ∝ N log N, HNSW query ∝ log N, exact ∝ N). What is not measured is marked
ASSUMED and is a parameter. Nothing is asserted: the last column says which limit a
configuration passes first.
"""
import argparse
import math

# README "Serving a million items" (glf-bench daemon, 10⁶ items, 2026-12-05, idle machine).
MEASURED_N = 1.01e6
CATALOG_BYTES_PER_ITEM = 2.20 * 2**30 / MEASURED_N   # served catalog: vectors, the graph's copy, links
STORE_BYTES_PER_ITEM = 3.1e9 / 1.0e6                  # LMDB records (mapped, page cache)
EMBED_ITEMS_PER_SECOND = 2069                         # a whole catalog embedded, 2 threads, no training
HNSW_BUILD_SECONDS = 270.0                            # at 1.01e6, M 16, efC 200, one thread
HNSW_P50_MS = 0.49                                    # over ZeroMQ, one after another
HNSW_QPS_PER_NODE = 4254                              # 8 in flight, one node
EXACT_P50_MS = 29.0
ZEROMQ_INGEST = 66078                                 # durable images/s, training off
# README "Ingest from NATS JetStream" (glf-bench jetstream, 2026-12-06, idle machine): one consumer
# draining a backlog (fetch 256, one commit, acks), 3-node cluster, R 3.
JETSTREAM_INGEST = 12345
NETWORKS_GIB_TRAINER = 2.55                           # trainer + query encoders (README memory table)
# README "One hour on two cores": glfd publishes a version every 500 steps at 316 images/s.
VERSION_MINUTES = 500 * 256 / 316 / 60
# ASSUMED (not measured): what a serve-only replica's networks hold (query encoders, one rebuild
# encoder), a LAN hop, and how the slowest of P partition answers stretches the median.
NETWORKS_GIB_REPLICA = 1.0
HOP_MS = 0.15
FANOUT_STRETCH_PER_DOUBLING = 0.2


def rebuild_seconds(per):
    """A partition's catalog under a new version: every item embedded, then the HNSW graph."""
    embed = per / EMBED_ITEMS_PER_SECOND
    graph = HNSW_BUILD_SECONDS * (per / MEASURED_N) * math.log(max(per, 2)) / math.log(MEASURED_N)
    return embed, graph


def plan(items, nodes, args):
    """Partitions and replicas for `items` on `nodes`. Memory sets the fewest partitions (each
    node holds its partition's served catalog and the next being built, beside the networks and
    page cache for the store); freshness asks for more: the fewest partitions whose rebuild fits
    between two versions, else as many as there are nodes. The other nodes are replicas. None if
    even one replica per partition does not fit."""
    usable = (args.node_gib - NETWORKS_GIB_REPLICA) * 2**30 * args.catalog_share
    fewest = max(1, math.ceil(items / (usable / (2 * CATALOG_BYTES_PER_ITEM))))
    if fewest > nodes:
        return None, fewest
    interval = 60 * args.version_minutes
    partitions = next((p for p in range(fewest, nodes + 1) if sum(rebuild_seconds(items / p)) <= interval), nodes)
    return (partitions, nodes // partitions), fewest


def project(items, nodes, args):
    layout, fewest = plan(items, nodes, args)
    if layout is None:
        return {"layout": f"needs {fewest} partitions", "verdict": "memory: more partitions than nodes"}
    partitions, replicas = layout
    per = items / partitions
    embed, graph = rebuild_seconds(per)
    rebuild = embed + graph
    interval = 60 * args.version_minutes
    # A version is served by every partition once each has re-embedded its share (exactly; the
    # graph follows); a replica busy with the previous rebuild finishes it first, and the versions
    # published meanwhile are skipped for the newest.
    lag = embed if rebuild <= interval else rebuild + embed
    hnsw = HNSW_P50_MS * max(1.0, math.log(per) / math.log(MEASURED_N))
    latency = hnsw * (1 + FANOUT_STRETCH_PER_DOUBLING * math.log2(partitions)) + (HOP_MS if partitions > 1 else 0)
    # Each query costs one lookup on one replica of every partition, so the cluster answers what
    # the replicas of one partition answer together.
    qps = HNSW_QPS_PER_NODE * (math.log(MEASURED_N) / math.log(max(per, 2))) * replicas
    ingest = min(args.jetstream_ingest * partitions, ZEROMQ_INGEST * partitions)
    verdict = []
    if lag / 3600 > args.lag_hours:
        verdict.append(f"freshness (served {lag / 3600:.1f} h after publication)")
    if rebuild > interval:
        verdict.append(f"skips versions (rebuild {rebuild / 60:.0f} min > {args.version_minutes:.1f})")
    if latency > args.latency_ms:
        verdict.append("latency")
    return {"layout": f"{partitions} × {replicas}", "per": per, "rebuild": rebuild, "lag": lag,
            "latency": latency, "qps": qps, "ingest": ingest,
            "verdict": "; ".join(verdict) if verdict else "fits"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", default="1e6,1e7,1e8,1e9")
    parser.add_argument("--nodes", default="1,2,4,8,16,32,64")
    parser.add_argument("--node-gib", type=float, default=24, help="memory of a serving node")
    parser.add_argument("--catalog-share", type=float, default=0.7,
                        help="of a node's memory beyond the networks, the share catalogs may take (the rest: store pages, heap)")
    parser.add_argument("--jetstream-ingest", type=float, default=JETSTREAM_INGEST,
                        help="durable images/s one partition's JetStream consumer stores (default: measured, one consumer)")
    parser.add_argument("--version-minutes", type=float, default=VERSION_MINUTES)
    parser.add_argument("--lag-hours", type=float, default=1.0, help="longest acceptable publication → serving lag")
    parser.add_argument("--latency-ms", type=float, default=5.0, help="longest acceptable knn p50 inside the cluster")
    args = parser.parse_args()

    print(f"constants: catalog {CATALOG_BYTES_PER_ITEM:,.0f} B/item (twice while a rebuild runs), embed {EMBED_ITEMS_PER_SECOND:,} items/s "
          f"per node, HNSW build {HNSW_BUILD_SECONDS:.0f} s per {MEASURED_N:.2g} (N log N), HNSW p50 {HNSW_P50_MS} ms, "
          f"{HNSW_QPS_PER_NODE:,} q/s per node at {MEASURED_N:.2g} (8 in flight); a version every {args.version_minutes:.1f} min; "
          f"nodes of {args.node_gib:g} GiB")
    print()
    print("| items | nodes | partitions × replicas | items per partition | rebuild | served after | knn p50 | knn/s | ingest/s | first limit |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for items in (float(x) for x in args.items.split(",")):
        for nodes in (int(x) for x in args.nodes.split(",")):
            r = project(items, nodes, args)
            if "per" not in r:
                print(f"| {items:.0e} | {nodes} | {r['layout']} | | | | | | | {r['verdict']} |")
                continue
            print(f"| {items:.0e} | {nodes} | {r['layout']} | {r['per']:,.0f} | {r['rebuild'] / 60:,.1f} min | {r['lag'] / 60:,.1f} min "
                  f"| {r['latency']:.2f} ms | {r['qps']:,.0f} | {r['ingest']:,.0f} | {r['verdict']} |")


if __name__ == "__main__":
    main()
