// glf-bench knn: the nearest-neighbour indexes on synthetic clustered unit vectors (Index's
// SyntheticEmbeddings: 100 Gaussian clusters at spread 0.5 by default).
//
//   exact, batched     all queries in one call: sgemm in blocks + a k-heap per query
//   exact, one query   median latency of single queries (one sdot pass over the items)
//   hnsw build         one thread, in item order, M and efConstruction as given
//   hnsw at each ef    queries/s one query at a time on one thread, and recall@k against exact
//
// `--save-npy DIR` writes items.npy [N, D] and queries.npy [Q, D] (float32, unit rows) so that
// tools/bench/knn.py runs FAISS (IndexFlatIP) and hnswlib on the same data and prints the same
// fields. `--vectors DIR` searches real embeddings instead: the catalog and queries `glf-bench
// daemon --out DIR` exported from glfd. Recall counts scores, not ids (`recallByScore`).
// Nothing here asserts a time: the machine is shared, the ratios are what to read.
import ArgumentParser
import Foundation
import Index
import Neural

struct BenchKNN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "knn",
        abstract: "Exact (sgemm) and HNSW nearest-neighbour search on synthetic clustered embeddings (or exported ones): queries/s, build time, recall.")

    @Option(help: "Items in the catalog.")
    var count = 100_000

    @Option(help: "Dimension of the embeddings.")
    var dim = 128

    @Option(help: "Queries (drawn from the same clusters as the items).")
    var queries = 1000

    @Option(help: "Neighbours per query.")
    var k = 10

    @Option(help: "Gaussian clusters the items are drawn around.")
    var clusters = 100

    @Option(help: "Seed of the data (items use it, queries use it + 1).")
    var seed: UInt64 = 1

    @Option(help: "HNSW links per node (2M on layer 0).")
    var m = 16

    @Option(help: "HNSW ef while building.")
    var efConstruction = 200

    @Option(parsing: .unconditional, help: "HNSW ef values to query with, comma-separated.")
    var ef = "16,64,256"

    @Option(help: "OpenBLAS threads for the exact search (the HNSW build and queries use one thread).")
    var threads = 2

    @Option(help: "Single queries timed for the exact latency.")
    var latencyQueries = 100

    @Option(help: "Also write items.npy and queries.npy to this folder (for tools/bench/knn.py).")
    var saveNpy: String?

    @Option(help: "Search these vectors instead of synthetic ones: DIR/embeddings.npy [N, D] and DIR/queries.npy [Q, D], unit rows (what glf-bench daemon --out writes); --count, --dim, --queries, --clusters and --seed are then unused.")
    var vectors: String?

    func validate() throws {
        guard count >= 1, dim >= 1, queries >= 1, k >= 1, clusters >= 1, m >= 2, efConstruction >= 1, threads >= 1,
              latencyQueries >= 1 else {
            throw ValidationError("--count, --dim, --queries, --k, --clusters, --ef-construction, --threads and --latency-queries must be at least 1, --m at least 2")
        }
        guard !efValues.isEmpty, efValues.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--ef: comma-separated positive integers, e.g. 16,64,256") }
    }

    /// Items [N × D] and queries [Q × D], row-major, and D: from --vectors, or synthetic.
    private func data() throws -> (items: [Float], queries: [Float], dimension: Int) {
        guard let vectors else {
            let data = SyntheticEmbeddings(dimension: dim, clusters: clusters, seed: seed)
            return (data.sample(count: count, seed: seed &+ 1), data.sample(count: queries, seed: seed &+ 2), dim)
        }
        let folder = URL(fileURLWithPath: vectors)
        let items = try NumpyFile.read(from: folder.appendingPathComponent("embeddings.npy"))
        let asked = try NumpyFile.read(from: folder.appendingPathComponent("queries.npy"))
        guard items.shape.count == 2, asked.shape.count == 2, items.shape[1] == asked.shape[1], items.shape[0] >= k else {
            throw ValidationError("--vectors \(vectors): embeddings.npy \(items.shape) and queries.npy \(asked.shape) must be [N, D] and [Q, D], N ≥ k")
        }
        return (items.values, asked.values, items.shape[1])
    }

    private var efValues: [Int] { ef.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() throws {
        BLAS.setThreads(threads)
        warnAboutOpenBLASCore()
        let (itemMatrix, queryMatrix, dim) = try data()
        let (count, queries) = (itemMatrix.count / dim, queryMatrix.count / dim)
        let queryRows = (0..<queries).map { Array(queryMatrix[$0 * dim..<($0 + 1) * dim]) }
        if let saveNpy {
            let folder = URL(fileURLWithPath: saveNpy)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try NumpyFile.write(NumpyArray(shape: [count, dim], values: itemMatrix), to: folder.appendingPathComponent("items.npy"))
            try NumpyFile.write(NumpyArray(shape: [queries, dim], values: queryMatrix), to: folder.appendingPathComponent("queries.npy"))
            note("wrote items.npy [\(count), \(dim)] and queries.npy [\(queries), \(dim)] to \(saveNpy)")
        }
        let described = vectors.map { "from \($0)" } ?? "clustered (\(clusters) clusters, seed \(seed))"
        print("glf-bench knn: \(count) × \(dim) unit vectors \(described), \(queries) queries, k \(k)")
        print("  \(BLAS.configuration)")

        var builder = ExactIndex.Builder(dimension: dim, capacity: count)
        for i in 0..<count { builder.append(id: UInt64(i), vector: Array(itemMatrix[i * dim..<(i + 1) * dim])) }
        let exact = builder.build()

        // Exact, all queries in one call (best of three), then single-query latency.
        var truth: [[Neighbour]] = []
        let batchSeconds = (0..<3).map { _ in timed { truth = exact.search(queries: queryRows, k: k) } }.min()!
        let latencies = queryRows.prefix(latencyQueries).map { query in timed { _ = exact.search(query, k: k) } }
        print(String(format: "  exact, batched sgemm   %9.0f queries/s   (%d queries in %.1f ms, %d BLAS thread%@)",
                     Double(queries) / batchSeconds, queries, batchSeconds * 1e3, threads, threads == 1 ? "" : "s"))
        print(String(format: "  exact, one query       %9.2f ms median   (%.0f queries/s, %d queries)",
                     latencies.median * 1e3, 1 / latencies.median, latencies.count))

        var hnsw: HNSWIndex!
        let buildSeconds = timed { hnsw = HNSWIndex(from: exact, parameters: HNSWParameters(m: m, efConstruction: efConstruction)) }
        print(String(format: "  hnsw build             %9.1f s          (%.0f items/s; M %d, efConstruction %d, 1 thread)",
                     buildSeconds, Double(count) / buildSeconds, m, efConstruction))
        for width in efValues {
            var answers: [[Neighbour]] = []
            let seconds = timed { answers = queryRows.map { hnsw.search($0, k: k, ef: width) } }
            print(String(format: "  hnsw ef %-4d           %9.0f queries/s   recall@%d %.4f   (1 thread)",
                         width, Double(queries) / seconds, k,
                         recallByScore(answers.map { $0.map(\.score) }, exact: truth.map { $0.map(\.score) }, k: k)))
        }

        // Filters (knn's time windows are id ranges): the share of the items a window keeps,
        // recall against exact filtered search, and how often the index fell back to scoring the
        // matching items (under HNSWIndex.exactFilterShare of them, or fewer than the width).
        let sorted = exact.ids.sorted()
        for share in [0.5, 0.2, 0.1, 0.05, 0.02, 0.01] {
            let kept = max(1, Int(Double(count) * share))
            let range = sorted[(count - kept) / 2]...sorted[(count - kept) / 2 + kept - 1]
            var filteredTruth: [[Neighbour]] = []
            let exactSeconds = timed { filteredTruth = queryRows.map { exact.search($0, k: k, ids: range) } }
            var answers: [[Neighbour]] = [], exactly = 0
            let seconds = timed {
                answers = queryRows.map { query in
                    let (found, wasExact) = hnsw.searchReportingExact(query, k: k, ids: range)
                    if wasExact { exactly += 1 }
                    return found
                }
            }
            print(String(format: "  hnsw, id range of %4.1f%% %7.0f queries/s   recall@%d %.4f   answered exactly %3d%%  (ef %d; the exact index over the range: %.0f queries/s)",
                         share * 100, Double(queries) / seconds, k,
                         recallByScore(answers.map { $0.map(\.score) }, exact: filteredTruth.map { $0.map(\.score) }, k: k),
                         exactly * 100 / queries, hnsw.parameters.efSearch, Double(queries) / exactSeconds))
        }
    }
}
