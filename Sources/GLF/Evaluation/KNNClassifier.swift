// kNN evaluation with solo-learn's protocol: features are L2-normalised; each query's k nearest
// memory-bank items by cosine similarity vote for their label with weight exp(similarity / T).
// Defaults k = 20, T = 0.07. Top-1 accuracy is the share of queries whose heaviest label is right.
//
//   memory  [M, D] features, labels [M] in 0..<classes
//   queries [Q, D] features, labels [Q]
//   similarities are computed a block of queries at a time: S[q, M] = queries · memoryᵀ (sgemm)
import Foundation
import Neural

public struct KNNClassifier: Sendable {
    public var neighbours: Int
    public var temperature: Float
    /// Queries per similarity block (bounds memory: block × M floats).
    public var queryBlock: Int

    public init(neighbours: Int = 20, temperature: Float = 0.07, queryBlock: Int = 256) {
        precondition(neighbours >= 1 && temperature > 0 && queryBlock >= 1)
        self.neighbours = neighbours
        self.temperature = temperature
        self.queryBlock = queryBlock
    }

    /// Predicted label of every query.
    public func predict(memory: Tensor, memoryLabels: [Int], queries: Tensor, classes: Int) -> [Int] {
        precondition(memory.shape.count == 2 && queries.shape.count == 2 && memory.shape[1] == queries.shape[1],
                     "memory \(memory.shape) and queries \(queries.shape) must be [M, D] and [Q, D]")
        precondition(memoryLabels.count == memory.shape[0] && memoryLabels.allSatisfy { (0..<classes).contains($0) })
        let (m, d, q) = (memory.shape[0], memory.shape[1], queries.shape[0])
        let bank = normalizedRows(memory), asked = normalizedRows(queries)
        let k = min(neighbours, m)
        let similarities = Tensor(zeros: [min(queryBlock, q), m])
        var predictions: [Int] = []
        predictions.reserveCapacity(q)
        var votes = [Float](repeating: 0, count: classes)
        var best = [(similarity: Float, index: Int)]()
        best.reserveCapacity(k + 1)
        for start in stride(from: 0, to: q, by: queryBlock) {
            let rows = min(queryBlock, q - start)
            BLAS.gemm(transposeB: true, m: rows, n: m, k: d, a: asked.data + start * d, lda: d,
                      b: bank.data, ldb: d, c: similarities.data, ldc: m)
            for r in 0..<rows {
                let s = similarities.data + r * m
                // The k largest similarities: a small sorted buffer, smallest first.
                best.removeAll(keepingCapacity: true)
                for j in 0..<m where best.count < k || s[j] > best[0].similarity {
                    let position = best.firstIndex { $0.similarity > s[j] } ?? best.count
                    best.insert((s[j], j), at: position)
                    if best.count > k { best.removeFirst() }
                }
                for c in 0..<classes { votes[c] = 0 }
                for neighbour in best { votes[memoryLabels[neighbour.index]] += exp(neighbour.similarity / temperature) }
                predictions.append(votes.indices.max { votes[$0] < votes[$1] }!)
            }
        }
        return predictions
    }

    /// Top-1 accuracy in [0, 1].
    public func accuracy(memory: Tensor, memoryLabels: [Int], queries: Tensor, queryLabels: [Int], classes: Int) -> Double {
        precondition(queryLabels.count == queries.shape[0])
        let predicted = predict(memory: memory, memoryLabels: memoryLabels, queries: queries, classes: classes)
        let correct = zip(predicted, queryLabels).filter { $0 == $1 }.count
        return Double(correct) / Double(max(queryLabels.count, 1))
    }

    private func normalizedRows(_ x: Tensor) -> Tensor {
        let (n, d) = (x.shape[0], x.shape[1])
        let y = Tensor(zeros: x.shape)
        for r in 0..<n {
            let norm = max(BLAS.norm(count: d, x.data + r * d), 1e-12)
            for j in 0..<d { y.data[r * d + j] = x.data[r * d + j] / norm }
        }
        return y
    }
}
