// The yardsticks the index tests measure against: a brute-force kNN in Double, a comparison that
// forgives only what Float rounding can change, and recall.
@testable import Index
import Neural
import Testing

struct TestItem {
    var id: UInt64
    var vector: [Float]
    var source: String
}

/// Rows of a flat [n, dimension] matrix.
func rows(_ flat: [Float], dimension: Int) -> [[Float]] {
    stride(from: 0, to: flat.count, by: dimension).map { Array(flat[$0..<$0 + dimension]) }
}

func gaussianVectors(count: Int, dimension: Int, seed: UInt64) -> [[Float]] {
    var rng = SeededGenerator(seed: seed)
    return (0..<count).map { _ in (0..<dimension).map { _ in rng.nextNormal() } }
}

func exactIndex(_ items: [TestItem], dimension: Int) -> ExactIndex {
    var builder = ExactIndex.Builder(dimension: dimension)
    for item in items { builder.append(id: item.id, vector: item.vector, source: item.source) }
    return builder.build()
}

/// Every item scored in Double (cosine of the raw vectors; a zero vector scores 0), nearest first,
/// ties by smaller id; only `source`'s items when given.
func bruteForce(_ items: [TestItem], query: [Float], source: String? = nil) -> [(id: UInt64, score: Double)] {
    func norm(_ v: [Float]) -> Double { v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
    let qn = norm(query)
    return items.filter { source == nil || $0.source == source }.map { item in
        let n = norm(item.vector)
        let dot = zip(item.vector, query).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        return (item.id, n > 0 && qn > 0 ? dot / (n * qn) : 0)
    }.sorted { $0.score > $1.score || ($0.score == $1.score && $0.id < $1.id) }
}

/// `got` is the reference's top k up to Float rounding: same length, distinct ids, each score
/// within `tolerance` of the reference's at that position, and each id the reference's, or one
/// whose true score is within `tolerance` of it (a near-tie that rounding may order either way).
func expectAgrees(_ got: [Neighbour], _ reference: [(id: UInt64, score: Double)], k: Int, tolerance: Double = 1e-5,
                  _ context: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    let trueScore = Dictionary(reference.map { ($0.id, $0.score) }, uniquingKeysWith: { a, _ in a })
    expectAgrees(got, Array(reference.prefix(k)), trueScore: { trueScore[$0] ?? .infinity }, tolerance: tolerance,
                 context, sourceLocation: sourceLocation)
}

func expectAgrees(_ got: [Neighbour], _ want: [(id: UInt64, score: Double)], trueScore: (UInt64) -> Double,
                  tolerance: Double = 1e-5, _ context: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.count == want.count, "\(context): \(got.count) results, expected \(want.count)", sourceLocation: sourceLocation)
    #expect(Set(got.map(\.id)).count == got.count, "\(context): repeated ids \(got)", sourceLocation: sourceLocation)
    for (i, (g, w)) in zip(got, want).enumerated() {
        #expect(abs(Double(g.score) - w.score) <= tolerance,
                "\(context): position \(i) score \(g.score), reference \(w.score)", sourceLocation: sourceLocation)
        let sameOrTied = g.id == w.id || abs(trueScore(g.id) - w.score) <= tolerance
        #expect(sameOrTied, "\(context): position \(i) id \(g.id), reference \(w.id) (score \(w.score))",
                sourceLocation: sourceLocation)
    }
}

/// Share of the exact answers' ids that the approximate answers found.
func recall(_ approximate: [[Neighbour]], _ exact: [[Neighbour]]) -> Double {
    var found = 0, total = 0
    for (a, e) in zip(approximate, exact) {
        let truth = Set(e.map(\.id))
        found += a.filter { truth.contains($0.id) }.count
        total += truth.count
    }
    return Double(found) / Double(max(total, 1))
}
