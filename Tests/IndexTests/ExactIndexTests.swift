// The exact index is the ground truth, so it is checked against a brute-force search in Double:
// ids, scores and order, with and without source filters, k beyond the item count, duplicates and
// exact ties (which must come out by smaller id); and its sgemm batch path against its one-query
// path.
@testable import Index
import Neural
import Testing

@Suite struct ExactIndexTests {
    /// 1,500 Gaussian items (D = 48) with shuffled large ids, three sources (about 60/30/10 %),
    /// 40 exact duplicates under other ids and one zero vector.
    static let items: [TestItem] = {
        var rng = SeededGenerator(seed: 11)
        var ids = Array(UInt64(1_000_000)..<1_001_541)
        ids.shuffle(using: &rng)
        let vectors = gaussianVectors(count: 1_500, dimension: 48, seed: 12)
        var items = (0..<1_500).map { i in
            TestItem(id: ids[i], vector: vectors[i], source: ["a", "a", "a", "a", "a", "a", "b", "b", "b", "c"][i % 10])
        }
        for i in 0..<40 { items.append(TestItem(id: ids[1_500 + i], vector: items[i * 37].vector, source: items[i * 37].source)) }
        items.append(TestItem(id: ids[1_540], vector: [Float](repeating: 0, count: 48), source: "b"))
        return items
    }()

    @Test func matchesTheDoubleReference() {
        let index = exactIndex(Self.items, dimension: 48)
        #expect(index.count == Self.items.count)
        let queries = gaussianVectors(count: 12, dimension: 48, seed: 13) + [Self.items[37].vector]
        for (q, query) in queries.enumerated() {
            for source in [nil, "a", "c"] as [String?] {
                let reference = bruteForce(Self.items, query: query, source: source)
                for k in [1, 10, 57] {
                    expectAgrees(index.search(query, k: k, source: source), reference, k: k, "query \(q) k \(k) source \(source ?? "-")")
                }
                // k beyond the number of (matching) items: all of them, in order.
                expectAgrees(index.search(query, k: 5_000, source: source), reference, k: 5_000, "query \(q) all, source \(source ?? "-")")
            }
            #expect(index.search(query, k: 10, source: "nobody").isEmpty)
            #expect(index.search(query, k: 0).isEmpty)
        }
        // The duplicated item and its copy score the same (same unit vector, same arithmetic):
        // they come out together, smaller id first, with score ≈ 1.
        let twins = index.search(Self.items[37].vector, k: 2)
        let twinIDs = [Self.items[37].id, Self.items[1_501].id].sorted()
        #expect(twins.map(\.id) == twinIDs)
        #expect(twins.count == 2 && twins[0].score == twins[1].score && abs(twins[0].score - 1) < 1e-5)
    }

    /// Vectors with ±½ in four of 16 places are unit as they are and every product is a multiple
    /// of ¼, exact in Float whatever the summation order: so sgemm, the SIMD loop and the Double
    /// reference give identical scores, there are many exact ties, and the answers must be
    /// identical, ties by smaller id.
    @Test func exactTiesComeOutBySmallerID() {
        var rng = SeededGenerator(seed: 21)
        func sparseVector() -> [Float] {
            var v = [Float](repeating: 0, count: 16)
            var placed = 0
            while placed < 4 {
                let j = Int(rng.next() % 16)
                if v[j] == 0 { v[j] = rng.next() % 2 == 0 ? 0.5 : -0.5; placed += 1 }
            }
            return v
        }
        var ids = Array(UInt64(1)...600)
        ids.shuffle(using: &rng)
        var items = (0..<599).map { TestItem(id: ids[$0] * 7, vector: sparseVector(), source: $0 % 4 == 0 ? "x" : "y") }
        items.append(TestItem(id: ids[599] * 7, vector: [Float](repeating: 0, count: 16), source: "x"))
        let index = exactIndex(items, dimension: 16)
        let queries = (0..<30).map { _ in sparseVector() }
        for source in [nil, "x", "y"] as [String?] {
            let batched = index.search(queries: queries, k: 25, source: source)
            for (q, query) in queries.enumerated() {
                let reference = bruteForce(items, query: query, source: source).prefix(25).map { Neighbour(id: $0.id, score: Float($0.score)) }
                #expect(index.search(query, k: 25, source: source) == reference, "query \(q) source \(source ?? "-")")
                #expect(batched[q] == reference, "batched query \(q) source \(source ?? "-")")
            }
        }
        // A zero query scores 0 against everything: the smallest ids.
        let zero = index.search([Float](repeating: 0, count: 16), k: 5)
        #expect(zero == items.map(\.id).sorted().prefix(5).map { Neighbour(id: $0, score: 0) })
    }

    /// 10,000 items (two full sgemm item blocks and a partial one), 300 queries (a full query
    /// block and a partial one): one sgemm per block gives the same answers as one query at a time.
    @Test func batchedSgemmEqualsOneQueryAtATime() {
        let dimension = 32
        let vectors = gaussianVectors(count: 10_000, dimension: dimension, seed: 31)
        let items = vectors.enumerated().map { TestItem(id: UInt64($0 * 3 + 5), vector: $1, source: $0 % 10 == 0 ? "rare" : "common") }
        let index = exactIndex(items, dimension: dimension)
        let queries = gaussianVectors(count: 300, dimension: dimension, seed: 32)
        for source in [nil, "rare", "common"] as [String?] {
            let batched = index.search(queries: queries, k: 10, source: source)
            #expect(batched.count == queries.count)
            for (q, query) in queries.enumerated() {
                let single = index.search(query, k: 10, source: source)
                let unit = unitVector(query)
                expectAgrees(batched[q], single.map { ($0.id, Double($0.score)) }, trueScore: { id in
                    zip(index.lookup(id)!, unit).reduce(0) { $0 + Double($1.0) * Double($1.1) }
                }, "query \(q) source \(source ?? "-")")
            }
        }
        #expect(index.search(queries: [], k: 10).isEmpty)
        #expect(index.search(queries: queries, k: 10, source: "nobody").allSatisfy { $0.isEmpty })
    }

    @Test func lookupGivesTheUnitVectorAndAnItemFindsItself() throws {
        let index = exactIndex(Array(Self.items.prefix(300)), dimension: 48)
        for item in Self.items.prefix(300).dropFirst(100).prefix(50) {
            let stored = try #require(index.lookup(item.id))
            let norm = stored.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-5)
            let unit = unitVector(item.vector)
            #expect(zip(stored, unit).allSatisfy { $0 == $1 })
            let first = try #require(index.search(stored, k: 3).first)
            #expect(first.id == item.id)
            #expect(abs(first.score - 1) < 1e-5)
            #expect(index.source(of: item.id) == item.source)
        }
        #expect(index.lookup(42) == nil)
    }

    @Test func appendingAnIDAgainReplacesIt() {
        var builder = ExactIndex.Builder(dimension: 3, version: 7)
        builder.append(id: 1, vector: [1, 0, 0], source: "a")
        builder.append(id: 2, vector: [0, 1, 0], source: "a")
        builder.append(id: 1, vector: [0, 0, 2], source: "b")
        let index = builder.build()
        #expect(index.version == 7)
        #expect(index.count == 2)
        #expect(index.lookup(1) == [0, 0, 1])
        #expect(index.search([0, 0, 1], k: 1) == [Neighbour(id: 1, score: 1)])
        #expect(index.search([0, 0, 1], k: 5, source: "a") == [Neighbour(id: 2, score: 0)])
        #expect(index.source(of: 1) == "b")
    }
}

/// The batched search filters by a range of ids (and a source) as the single query does: both
/// are brute force's over the matching items, in the minority case (gathered rows) and the
/// majority case (rows skipped in place).
@Suite struct ExactIndexRangeTests {
    @Test func batchedSearchFiltersByIDRange() {
        let d = 8
        let vectors = gaussianVectors(count: 400, dimension: d, seed: 11)
        let items = vectors.enumerated().map { TestItem(id: UInt64($0 + 1), vector: $1, source: $0 % 2 == 0 ? "even" : "odd") }
        let index = exactIndex(items, dimension: d)
        let queries = gaussianVectors(count: 12, dimension: d, seed: 12)
        for (range, source) in [(UInt64(50)...UInt64(120), nil), (UInt64(1)...UInt64(350), nil), (UInt64(1)...UInt64(350), "odd")] as [(ClosedRange<UInt64>, String?)] {
            let batched = index.search(queries: queries, k: 5, source: source, ids: range)
            for (query, answer) in zip(queries, batched) {
                let reference = bruteForce(items.filter { range.contains($0.id) }, query: query, source: source)
                expectAgrees(answer, reference, k: 5, "\(range) \(source ?? "any")")
                expectAgrees(index.search(query, k: 5, source: source, ids: range), reference, k: 5, "single \(range)")
            }
        }
    }
}
