// What MinRed sees of the replay set through one model: each embedded member's unit vector and its
// `neighbourCount` nearest embedded members, most similar first.
//
// Building it is the heavy part, done off the store's lock each time embeddings are handed over
// (after every catalog build in the daemon): all pairwise similarities, S = V·Vᵀ, block by block
// through sgemm (N²·D multiply-adds: about 2·10¹² flops for 65,536 members of dimension 256),
// keeping each row's top neighbours.
//
// After that, members only leave (evicted, deleted, retired; new arrivals have no embedding until
// the next view), so a member's redundancy — the similarity to its nearest member still embedded —
// can only fall. That makes both operations cheap:
//   remove            marks the row dead, O(1)
//   mostRedundant     a max-heap of scores that may be stale-high: pop the top, recompute its score
//                     from its neighbour list (skipping dead rows); if unchanged it is the maximum,
//                     otherwise push it back with the lower score. A list whose neighbours all left
//                     is recomputed against every live row (one matrix-vector product).
import Neural

struct RedundancyView: Sendable {
    let dimension: Int
    let neighbourCount: Int
    /// Row → id, and id → row for the rows still embedded.
    private let ids: [UInt64]
    private var rows: [UInt64: Int]
    private var alive: [Bool]
    /// rows × dimension unit vectors.
    private let vectors: [Float]
    /// rows × neighbourCount: nearest rows first (-1 pads a short list) and their similarities.
    private var neighbourRows: [Int32]
    private var neighbourSimilarities: [Float]
    private var heap = ScoreHeap()

    var allocatedBytes: Int {
        ids.allocatedBytes + rows.allocatedBytes + alive.allocatedBytes + vectors.allocatedBytes
            + neighbourRows.allocatedBytes + neighbourSimilarities.allocatedBytes
    }

    /// Rows and columns of S computed per sgemm: 512 × 8192 scores (16 MiB) at a time.
    struct Blocks: Sendable {
        var rows = 512
        var columns = 8192
    }

    /// `vectors` is ids.count × dimension, any scale; each row is normalised. Nil if `cancelled`
    /// says so (it is asked between blocks of rows).
    init?(ids: [UInt64], vectors raw: [Float], dimension: Int, neighbourCount: Int = 32, blocks: Blocks = Blocks(),
          cancelled: () -> Bool = { false }) {
        precondition(raw.count == ids.count * dimension, "vectors must be ids.count × dimension")
        let n = ids.count, k = neighbourCount
        self.dimension = dimension
        self.neighbourCount = k
        self.ids = ids
        rows = Dictionary(uniqueKeysWithValues: zip(ids, 0..<n))
        alive = [Bool](repeating: true, count: n)
        var unit = raw
        for row in 0..<n {
            unit.withUnsafeMutableBufferPointer { v in
                let start = v.baseAddress! + row * dimension
                let norm = BLAS.norm(count: dimension, start)
                if norm > 0 { BLAS.scale(count: dimension, alpha: 1 / norm, x: start) }
            }
        }
        vectors = unit
        neighbourRows = [Int32](repeating: -1, count: n * k)
        neighbourSimilarities = [Float](repeating: -.infinity, count: n * k)
        guard computeNeighbourLists(blocks, cancelled: cancelled) else { return nil }
        for row in 0..<n { heap.push(score: neighbourSimilarities[row * k], row: Int32(row)) }
    }

    /// Members still embedded.
    var count: Int { rows.count }

    /// The member left the replay set.
    mutating func remove(_ id: UInt64) {
        guard let row = rows.removeValue(forKey: id) else { return }
        alive[row] = false
    }

    /// The embedded member with the most similar embedded neighbour; nil below two. It stays
    /// embedded until `remove`d.
    mutating func mostRedundant() -> UInt64? {
        guard rows.count >= 2 else { return nil }
        while let (score, row) = heap.top {
            let r = Int(row)
            guard alive[r] else { heap.pop(); continue }
            let current = currentScore(r)
            if current == score { return ids[r] }
            heap.pop()
            heap.push(score: current, row: row)
        }
        return nil
    }

    // MARK: Scores

    /// Similarity of `row` to its nearest live neighbour; recomputes the list once it has none.
    private mutating func currentScore(_ row: Int) -> Float {
        let k = neighbourCount
        for j in 0..<k {
            let neighbour = neighbourRows[row * k + j]
            if neighbour < 0 { break }
            if alive[Int(neighbour)] { return neighbourSimilarities[row * k + j] }
        }
        recomputeNeighbours(of: row)
        return neighbourRows[row * k] < 0 ? -.infinity : neighbourSimilarities[row * k]
    }

    /// The list of `row` against every live row: one matrix-vector product.
    private mutating func recomputeNeighbours(of row: Int) {
        let n = ids.count, d = dimension
        var similarities = [Float](repeating: 0, count: n)
        vectors.withUnsafeBufferPointer { v in
            similarities.withUnsafeMutableBufferPointer { s in
                BLAS.gemm(m: n, n: 1, k: d, a: v.baseAddress!, lda: d, b: v.baseAddress! + row * d, ldb: 1,
                          c: s.baseAddress!, ldc: 1)
            }
        }
        var list = TopNeighbours(count: neighbourCount)
        for column in 0..<n where column != row && alive[column] { list.offer(similarities[column], Int32(column)) }
        list.write(into: &neighbourRows, &neighbourSimilarities, at: row * neighbourCount)
    }

    /// Every row's nearest rows, from S = V·Vᵀ computed block by block; false if cancelled.
    private mutating func computeNeighbourLists(_ blocks: Blocks, cancelled: () -> Bool) -> Bool {
        let n = ids.count, d = dimension, k = neighbourCount
        guard n > 1 else { return true }
        var scores = [Float](repeating: 0, count: blocks.rows * blocks.columns)
        var lists: [TopNeighbours] = []
        for rowStart in stride(from: 0, to: n, by: blocks.rows) {
            if cancelled() { return false }
            let rowCount = min(blocks.rows, n - rowStart)
            lists = (0..<rowCount).map { _ in TopNeighbours(count: k) }
            for columnStart in stride(from: 0, to: n, by: blocks.columns) {
                let columnCount = min(blocks.columns, n - columnStart)
                // scores[rowCount, columnCount] = V[rows] · V[columns]ᵀ
                vectors.withUnsafeBufferPointer { v in
                    scores.withUnsafeMutableBufferPointer { s in
                        BLAS.gemm(transposeB: true, m: rowCount, n: columnCount, k: d,
                                  a: v.baseAddress! + rowStart * d, lda: d,
                                  b: v.baseAddress! + columnStart * d, ldb: d,
                                  c: s.baseAddress!, ldc: columnCount)
                    }
                }
                for r in 0..<rowCount {
                    let row = rowStart + r
                    scores.withUnsafeBufferPointer { s in
                        let line = s.baseAddress! + r * columnCount
                        for c in 0..<columnCount where columnStart + c != row {
                            lists[r].offer(line[c], Int32(columnStart + c))
                        }
                    }
                }
            }
            for r in 0..<rowCount {
                lists[r].write(into: &neighbourRows, &neighbourSimilarities, at: (rowStart + r) * k)
            }
        }
        return true
    }
}

/// The `count` most similar rows offered, most similar first (ties: the lower row first).
private struct TopNeighbours {
    private(set) var similarities: [Float]
    private(set) var rows: [Int32]

    init(count: Int) {
        similarities = [Float](repeating: -.infinity, count: count)
        rows = [Int32](repeating: -1, count: count)
    }

    @inline(__always)
    mutating func offer(_ similarity: Float, _ row: Int32) {
        // Most offers lose to the weakest kept: one comparison.
        guard similarity > similarities[similarities.count - 1] else { return }
        var slot = similarities.count - 1
        while slot > 0 && similarity > similarities[slot - 1] {
            similarities[slot] = similarities[slot - 1]
            rows[slot] = rows[slot - 1]
            slot -= 1
        }
        similarities[slot] = similarity
        rows[slot] = row
    }

    func write(into rowTable: inout [Int32], _ similarityTable: inout [Float], at offset: Int) {
        for j in 0..<rows.count {
            rowTable[offset + j] = rows[j]
            similarityTable[offset + j] = similarities[j]
        }
    }
}

/// A binary max-heap of (score, row).
private struct ScoreHeap {
    private var scores: [Float] = []
    private var rows: [Int32] = []

    var top: (score: Float, row: Int32)? { scores.isEmpty ? nil : (scores[0], rows[0]) }

    mutating func push(score: Float, row: Int32) {
        scores.append(score)
        rows.append(row)
        var child = scores.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard scores[child] > scores[parent] else { break }
            scores.swapAt(child, parent)
            rows.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() {
        guard !scores.isEmpty else { return }
        scores.swapAt(0, scores.count - 1)
        rows.swapAt(0, rows.count - 1)
        scores.removeLast()
        rows.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var largest = parent
            if left < scores.count && scores[left] > scores[largest] { largest = left }
            if right < scores.count && scores[right] > scores[largest] { largest = right }
            guard largest != parent else { break }
            scores.swapAt(parent, largest)
            rows.swapAt(parent, largest)
            parent = largest
        }
    }
}
