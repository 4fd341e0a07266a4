// The graph index against the exact one: recall@10 on clustered data with default parameters,
// recall rising with ef, source filters (the graph path and the exact fallback for rare sources),
// removal, reproducible builds, and an item finding itself.
import Foundation
@testable import Index
import Neural
import Testing

/// 20,000 clustered unit vectors (D = 64, 50 Gaussian clusters), 200 queries from the same
/// clusters, sources "rare" (1 %), "third" (a third) and "main"; both indexes, and the exact
/// answers. Built once and shared by the tests below (they only read it).
struct ClusteredCatalog: Sendable {
    static let shared = ClusteredCatalog()

    let dimension = 64
    let exact: ExactIndex
    let hnsw: HNSWIndex
    let queries: [[Float]]
    let buildSeconds: Double

    init() {
        let data = SyntheticEmbeddings(dimension: dimension, clusters: 50, seed: 1)
        let vectors = data.sample(count: 20_000, seed: 2)
        var builder = ExactIndex.Builder(dimension: dimension, version: 3, capacity: 20_000)
        for i in 0..<20_000 {
            let source = i % 100 == 0 ? "rare" : i % 3 == 0 ? "third" : "main"
            builder.append(id: UInt64(i) * 2 + 1, vector: Array(vectors[i * dimension..<(i + 1) * dimension]), source: source)
        }
        exact = builder.build()
        let start = ContinuousClock.now
        hnsw = HNSWIndex(from: exact)
        let elapsed = ContinuousClock.now - start
        buildSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        queries = rows(data.sample(count: 200, seed: 3), dimension: dimension)
    }

    func measuredRecall(ef: Int, k: Int = 10) -> Double {
        recall(queries.map { hnsw.search($0, k: k, ef: ef) }, exact.search(queries: queries, k: k))
    }
}

@Suite struct HNSWIndexTests {
    let catalog = ClusteredCatalog.shared

    @Test func recallAtTenWithDefaultParametersIsAtLeast95Percent() {
        let measured = catalog.measuredRecall(ef: catalog.hnsw.parameters.efSearch)
        let message = "recall@10 = \(String(format: "%.4f", measured)) (M 16, efConstruction 200, efSearch 64; 20,000 × 64, 50 clusters, 200 queries; built in \(String(format: "%.1f", catalog.buildSeconds)) s)"
        print("HNSW: \(message)")
        #expect(measured >= 0.95, "\(message)")
        #expect(catalog.hnsw.version == 3 && catalog.hnsw.count == 20_000)
        #expect(catalog.hnsw.layerSizes.count >= 2, "the graph has upper layers: \(catalog.hnsw.layerSizes)")
    }

    @Test func efMatters() {
        let low = catalog.measuredRecall(ef: 10), high = catalog.measuredRecall(ef: 200)
        print("HNSW: recall@10 at ef 10 = \(String(format: "%.4f", low)), at ef 200 = \(String(format: "%.4f", high))")
        #expect(low < high, "ef 10: \(low), ef 200: \(high)")
        #expect(high >= 0.99, "ef 200: \(high)")
    }

    /// "third" (33 %) goes through the graph with the filter; "rare" (1 %) is below the 20 % rule
    /// and is answered exactly: k results, the same as the exact index's.
    @Test func sourceFilters() {
        for source in ["third", "rare"] {
            let truth = catalog.exact.search(queries: catalog.queries, k: 10, source: source)
            var answers: [[Neighbour]] = []
            for query in catalog.queries {
                let answer = catalog.hnsw.search(query, k: 10, source: source)
                #expect(answer.count == 10)
                #expect(answer.allSatisfy { catalog.exact.source(of: $0.id) == source }, "\(source): \(answer)")
                answers.append(answer)
            }
            let measured = recall(answers, truth)
            print("HNSW: recall@10 with source \(source) = \(String(format: "%.4f", measured))")
            if source == "rare" {
                // The fallback scores the same stored vectors with the same arithmetic as the exact
                // index's one-query path: identical answers.
                for (query, answer) in zip(catalog.queries, answers) {
                    #expect(answer == catalog.exact.search(query, k: 10, source: source))
                }
            } else {
                #expect(measured >= 0.95, "recall@10 with source \(source): \(measured)")
            }
        }
        #expect(catalog.hnsw.search(catalog.queries[0], k: 10, source: "nobody").isEmpty)
    }

    /// A range of ids (what a time filter becomes: ingest times grow with ids) filters like a
    /// source: 60% of the items go through the graph (approximate, recall@10 ≥ 0.95 against the
    /// exact filtered answers), 1% falls back to exact search and says so, with the exact index's
    /// answers; a range and a source together keep only items matching both.
    @Test func idRangeFilters() {
        let ids = catalog.exact.ids.sorted()
        let wide = ids[4_000]...ids[15_999], narrow = ids[10_000]...ids[10_199]
        for (range, share) in [(wide, "60%"), (narrow, "1%")] {
            var answers: [[Neighbour]] = [], exactly: [Bool] = []
            for query in catalog.queries {
                let (answer, exact) = catalog.hnsw.searchReportingExact(query, k: 10, ids: range)
                #expect(answer.count == 10 && answer.allSatisfy { range.contains($0.id) }, "\(share): \(answer)")
                answers.append(answer)
                exactly.append(exact)
            }
            let truth = catalog.queries.map { catalog.exact.search($0, k: 10, ids: range) }
            let measured = recall(answers, truth)
            print("HNSW: recall@10 with an id range of \(share) of the items = \(String(format: "%.4f", measured))")
            if range == narrow {
                #expect(exactly.allSatisfy { $0 } && answers == truth)
            } else {
                #expect(!exactly.contains(true) && measured >= 0.95, "\(share): recall \(measured)")
            }
            // The exact index's filter is brute force's.
            let items = catalog.exact.ids.indices.map { row in
                TestItem(id: catalog.exact.ids[row], vector: Array(catalog.exact.vectors[row * 64..<(row + 1) * 64]),
                         source: catalog.exact.source(of: catalog.exact.ids[row])!)
            }
            let reference = bruteForce(items.filter { range.contains($0.id) }, query: catalog.queries[0])
            expectAgrees(truth[0], reference, k: 10, "\(share)")
        }
        let both = catalog.hnsw.search(catalog.queries[1], k: 10, source: "third", ids: wide)
        #expect(both.count == 10 && both.allSatisfy { wide.contains($0.id) && catalog.exact.source(of: $0.id) == "third" })
        #expect(catalog.hnsw.search(catalog.queries[1], k: 10, ids: 0...0).isEmpty)
    }

    @Test func anItemFindsItself() throws {
        for id in stride(from: UInt64(1), to: 40_000, by: 402) {
            let vector = try #require(catalog.hnsw.lookup(id))
            #expect(vector == catalog.exact.lookup(id))
            let first = try #require(catalog.hnsw.search(vector, k: 10).first)
            #expect(first.id == id)
            #expect(abs(first.score - 1) < 1e-5)
        }
    }

    static func smallCatalog(seed: UInt64 = 2016) -> (HNSWIndex, [[Float]]) {
        let data = SyntheticEmbeddings(dimension: 32, clusters: 20, seed: 5)
        let vectors = rows(data.sample(count: 3_000, seed: 6), dimension: 32)
        let index = HNSWIndex(dimension: 32, parameters: HNSWParameters(seed: seed))
        for (i, vector) in vectors.enumerated() { index.insert(id: UInt64(i), vector: vector, source: i % 2 == 0 ? "even" : "odd") }
        return (index, vectors)
    }

    @Test func removedItemsAreNeverAnswers() throws {
        let (index, vectors) = Self.smallCatalog()
        let query = vectors[10]
        let before = index.search(query, k: 10)
        #expect(before.first?.id == 10)
        #expect(index.remove(10))
        #expect(!index.remove(10))
        #expect(index.lookup(10) == nil && !index.contains(10) && index.count == 2_999)
        let after = index.search(query, k: 10)
        #expect(after.count == 10 && !after.contains { $0.id == 10 })
        #expect(after.prefix(9).map(\.id) == before.dropFirst().prefix(9).map(\.id))

        // Remove a third of everything: answers hold only live items, still k of them, still good.
        for id in stride(from: UInt64(0), to: 3_000, by: 3) { index.remove(id) }
        var exact = ExactIndex.Builder(dimension: 32)
        for (i, vector) in vectors.enumerated() where i % 3 != 0 && i != 10 { exact.append(id: UInt64(i), vector: vector) }
        let truth = exact.build()
        let queries = Array(vectors.prefix(100))
        let answers = queries.map { index.search($0, k: 10) }
        #expect(answers.allSatisfy { $0.count == 10 && $0.allSatisfy { $0.id % 3 != 0 && $0.id != 10 } })
        let measured = recall(answers, truth.search(queries: queries, k: 10))
        #expect(measured >= 0.95, "recall@10 after removing a third: \(measured)")

        // Inserting a removed id again brings it back (as a new node).
        index.insert(id: 10, vector: vectors[10], source: "even")
        #expect(index.search(query, k: 1).first?.id == 10)
    }

    @Test func theSameSeedBuildsTheSameGraph() throws {
        let (first, vectors) = Self.smallCatalog()
        let (second, _) = Self.smallCatalog()
        let (other, _) = Self.smallCatalog(seed: 99)
        var differs = false
        for id in UInt64(0)..<3_000 {
            for layer in 0..<4 {
                #expect(first.linkedIDs(of: id, layer: layer) == second.linkedIDs(of: id, layer: layer), "item \(id) layer \(layer)")
                if first.linkedIDs(of: id, layer: layer) != other.linkedIDs(of: id, layer: layer) { differs = true }
            }
        }
        #expect(first.layerSizes == second.layerSizes)
        #expect(differs, "another seed should give another graph")
        for query in vectors.prefix(50) {
            #expect(first.search(query, k: 10, ef: 20) == second.search(query, k: 10, ef: 20))
            #expect(first.search(query, k: 10, source: "odd") == second.search(query, k: 10, source: "odd"))
        }
    }
}
