// glf-bench dedup: what `duplicates` costs (issue 17) — the catalog joined with itself
// (ExactIndex.selfJoin: blocked sgemm, each item's 10 nearest others), then the groups — on
// synthetic clustered unit vectors (Index's SyntheticEmbeddings) with planted near-copies, so the
// groups found can be checked too. `--save-npy DIR` writes items.npy for tools/bench/dedup_peer.py,
// which times FAISS (IndexFlatIP searching the items with themselves, k 11) on the same data.
// Nothing here asserts a time: the ratios are what to read.
import ArgumentParser
import Foundation
import Index
import Neural

struct BenchDedup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dedup",
        abstract: "The catalog's self-join and its near-duplicate groups on synthetic embeddings with planted copies: seconds, and the groups found.")

    @Option(help: "Distinct items.") var count = 100_000
    @Option(help: "Dimension of the embeddings.") var dim = 256
    @Option(help: "Items given near-copies (2 each).") var planted = 1000
    @Option(help: "Gaussian clusters the items are drawn around.") var clusters = 100
    @Option(help: "Share of the spacing below which pairs are duplicates (duplicates' within).") var within = 0.15
    @Option(help: "Threads of the self-join (each with a share of the items; OpenBLAS on one thread).") var threads = 2
    @Option(help: "Seed of the data.") var seed: UInt64 = 1
    @Option(help: "Also write items.npy (float32 [N, dim], unit rows) here, for tools/bench/dedup_peer.py.") var saveNpy: String?

    func run() throws {
        BLAS.setThreads(1)
        warnAboutOpenBLASCore()
        let data = SyntheticEmbeddings(dimension: dim, clusters: clusters, seed: seed)
        var items = data.sample(count: count, seed: seed &+ 1)
        var rng = SeededGenerator(seed: seed &+ 2)
        // Each planted item gets two copies at 1% noise of its norm: far closer than any two items.
        for original in 0..<planted {
            let row = Array(items[original * dim..<(original + 1) * dim])
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for _ in 0..<2 { items += row.map { $0 + 0.01 * norm / Float(dim).squareRoot() * rng.nextNormal() } }
        }
        let total = items.count / dim
        if let saveNpy {
            try FileManager.default.createDirectory(atPath: saveNpy, withIntermediateDirectories: true)
            try NumpyFile.write(NumpyArray(shape: [total, dim], values: items), to: URL(fileURLWithPath: saveNpy).appendingPathComponent("items.npy"))
        }
        var builder = ExactIndex.Builder(dimension: dim, capacity: total)
        for i in 0..<total { builder.append(id: UInt64(i), vector: Array(items[i * dim..<(i + 1) * dim])) }
        let index = builder.build()
        print("glf-bench dedup: \(count) items + \(2 * planted) copies of \(planted) of them, dim \(dim), \(clusters) clusters, \(threads) threads")
        print("  \(BLAS.configuration)")

        var lists: NeighbourLists!
        let joinSeconds = timed { lists = ExactIndex.selfJoin([index], k: 10, workers: threads) }
        var groups: [DuplicateGroup] = []
        let spacing = lists.spacing(rank: 10)
        let groupSeconds = timed { groups = lists.duplicateGroups(maxDistance: within * spacing) }
        let expected = Set((0..<planted).map { Set([UInt64($0), UInt64(count + 2 * $0), UInt64(count + 2 * $0 + 1)]) })
        let found = Set(groups.map { Set($0.ids) })
        print(String(format: "  self-join (10 nearest)  %8.1f s   (%.2e multiply-adds, %.1f GFLOP/s)", joinSeconds,
                     Double(total) * Double(total) * Double(dim), 2 * Double(total) * Double(total) * Double(dim) / joinSeconds / 1e9))
        print(String(format: "  groups (union-find)     %8.2f s   %d found, %d of the %d planted exactly; spacing %.4f, within %.2f",
                     groupSeconds, groups.count, found.intersection(expected).count, planted, spacing, within))
    }
}
