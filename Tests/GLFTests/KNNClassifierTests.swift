import Foundation
import Testing
import GLF
import Neural

@Suite struct KNNClassifierTests {
    /// Brute force in Double: sort all similarities, take k, vote.
    func reference(memory: [[Double]], labels: [Int], query: [Double], k: Int, temperature: Double, classes: Int) -> Int {
        func normalized(_ v: [Double]) -> [Double] { let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot(); return v.map { $0 / n } }
        let q = normalized(query)
        let scored = memory.enumerated().map { (i, row) in (zip(normalized(row), q).reduce(0) { $0 + $1.0 * $1.1 }, labels[i]) }
        var votes = [Double](repeating: 0, count: classes)
        for (similarity, label) in scored.sorted(by: { $0.0 > $1.0 }).prefix(k) { votes[label] += exp(similarity / temperature) }
        return votes.indices.max { votes[$0] < votes[$1] }!
    }

    @Test func matchesABruteForceVote() {
        var rng = SeededGenerator(seed: 4)
        let (m, q, d, classes) = (300, 40, 8, 5)
        let memory = Tensor(zeros: [m, d]), queries = Tensor(zeros: [q, d])
        memory.fillNormal(std: 1, using: &rng)
        queries.fillNormal(std: 1, using: &rng)
        let labels = (0..<m).map { _ in Int(rng.next() % UInt64(classes)) }
        let knn = KNNClassifier(neighbours: 20, temperature: 0.07, queryBlock: 16)   // several blocks
        let predicted = knn.predict(memory: memory, memoryLabels: labels, queries: queries, classes: classes)
        let rows = { (t: Tensor, r: Int) in (0..<d).map { Double(t[r * d + $0]) } }
        let memoryRows = (0..<m).map { rows(memory, $0) }
        for r in 0..<q {
            #expect(predicted[r] == reference(memory: memoryRows, labels: labels, query: rows(queries, r), k: 20,
                                              temperature: 0.07, classes: classes))
        }
    }

    @Test func separableClustersAreClassifiedPerfectly() {
        var rng = SeededGenerator(seed: 5)
        let classes = 3, d = 6
        func sample(_ count: Int) -> (Tensor, [Int]) {
            let x = Tensor(zeros: [count, d]); var labels: [Int] = []
            for r in 0..<count {
                let c = r % classes
                labels.append(c)
                for j in 0..<d { x[r * d + j] = (j == c ? 5 : 0) + rng.nextNormal() * 0.3 }
            }
            return (x, labels)
        }
        let (memory, memoryLabels) = sample(90), (queries, queryLabels) = sample(30)
        let accuracy = KNNClassifier().accuracy(memory: memory, memoryLabels: memoryLabels, queries: queries,
                                                queryLabels: queryLabels, classes: classes)
        #expect(accuracy == 1)
    }
}
