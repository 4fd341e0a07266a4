// MinRed's view against a brute-force MinRed: with lists of only 8 neighbours, blocks far smaller
// than the set (so block edges are crossed), and members leaving both as victims and by deletion,
// every victim must be a member whose nearest remaining neighbour is as similar as anyone's.
import Foundation
import Neural
@testable import Store
import Testing

@Suite struct RedundancyViewTests {
    /// `count` vectors of dimension `d`: tight clusters of varying size among scattered points.
    func clusteredVectors(_ count: Int, d: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        func uniform() -> Float { Float(rng.next() % 1_000_000) / 500_000 - 1 }
        var vectors: [Float] = []
        var centre = (0..<d).map { _ in uniform() }
        for row in 0..<count {
            if row % 7 == 0 { centre = (0..<d).map { _ in uniform() } }
            let spread: Float = row % 3 == 0 ? 1 : 0.05
            vectors += centre.map { $0 + spread * uniform() }
        }
        return vectors
    }

    /// All pairwise cosine similarities, n × n, in Double.
    func similarityMatrix(_ raw: [Float], n: Int, d: Int) -> [Double] {
        let unit = (0..<n).map { row -> [Double] in
            let v = raw[row * d..<(row + 1) * d].map(Double.init)
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return v.map { $0 / norm }
        }
        var similarities = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n { similarities[i * n + j] = zip(unit[i], unit[j]).reduce(0) { $0 + $1.0 * $1.1 } }
        }
        return similarities
    }

    /// The brute-force score of each live row: its similarity to its nearest other live row.
    func bruteForceScores(_ similarities: [Double], n: Int, live: Set<Int>) -> [Int: Double] {
        let rows = Array(live)
        var scores: [Int: Double] = [:]
        for i in rows {
            var best = -Double.infinity
            for j in rows where j != i { best = max(best, similarities[i * n + j]) }
            scores[i] = best
        }
        return scores
    }

    @Test func victimsAreAlwaysAmongTheMostRedundant() throws {
        let n = 700, d = 12
        let raw = clusteredVectors(n, d: d, seed: 7)
        let similarities = similarityMatrix(raw, n: n, d: d)
        let ids = (0..<n).map { UInt64(1000 + $0) }
        var view = try #require(RedundancyView(ids: ids, vectors: raw, dimension: d, neighbourCount: 8,
                                               blocks: .init(rows: 64, columns: 100)))
        var live = Set(0..<n)
        var rng = SeededGenerator(seed: 11)
        var evictions = 0
        while live.count > 2 {
            // Now and then a member leaves on its own (a delete), not as MinRed's victim.
            if rng.next() % 5 == 0 {
                let leaving = live.randomElement(using: &rng)!
                view.remove(ids[leaving])
                live.remove(leaving)
                continue
            }
            let chosen = view.mostRedundant()
            let victim = try #require(chosen)
            let row = Int(victim - 1000)
            try #require(live.contains(row), "evicted \(victim), which already left")
            // Checking a step costs O(n²): check the first 60, then every 10th.
            if evictions < 60 || evictions % 10 == 0 {
                let scores = bruteForceScores(similarities, n: n, live: live)
                let best = scores.values.max()!
                #expect(scores[row]! >= best - 1e-5, "eviction \(evictions): \(scores[row]!) < \(best)")
            }
            view.remove(victim)
            live.remove(row)
            evictions += 1
        }
        #expect(view.count == 2)
        let lastPair = view.mostRedundant()
        #expect(lastPair != nil)
        view.remove(ids[live.first!])
        let alone = view.mostRedundant()
        #expect(alone == nil, "one member has no neighbour to be redundant with")
        #expect(evictions > 400)
    }

    @Test func aCancelledBuildGivesNoView() {
        let raw = clusteredVectors(300, d: 4, seed: 1)
        var asked = 0
        let view = RedundancyView(ids: (0..<300).map { UInt64($0) }, vectors: raw, dimension: 4,
                                  blocks: .init(rows: 64, columns: 64), cancelled: { asked += 1; return asked > 2 })
        #expect(view == nil)
        #expect(asked == 3)
    }
}
