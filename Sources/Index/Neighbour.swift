// What a kNN answer is made of, and the one order every answer is sorted in: higher cosine
// similarity first, equal similarities by smaller id (so equal inputs give equal answers, whatever
// order the items were added in). `TopK` keeps the k best of a stream in that order.

/// One item of a kNN answer.
public struct Neighbour: Equatable, Sendable, CustomStringConvertible {
    public var id: UInt64
    /// Cosine similarity of the unit vectors, in [-1, 1]; higher is nearer.
    public var score: Float

    public init(id: UInt64, score: Float) {
        self.id = id
        self.score = score
    }

    /// True when `self` comes before `other` in an answer.
    @inline(__always)
    public func isNearer(than other: Neighbour) -> Bool {
        score > other.score || (score == other.score && id < other.id)
    }

    public var description: String { "\(id):\(score)" }
}

/// The k nearest of a stream of (score, id): a binary heap of at most k entries whose root is the
/// farthest one kept, so a candidate that is not nearer than the root is rejected with one compare.
/// O(n log k) for n offers; in practice nearly all offers stop at the first compare.
struct TopK {
    let k: Int
    private var scores: [Float] = []
    private var ids: [UInt64] = []
    /// The root's score once k entries are held; -infinity before (everything gets in).
    private(set) var worstScore: Float = -.infinity

    init(k: Int) {
        self.k = max(0, k)
        scores.reserveCapacity(self.k)
        ids.reserveCapacity(self.k)
    }

    var count: Int { scores.count }
    var isFull: Bool { scores.count >= k }

    /// a is farther than b: lower score, or the same score and a larger id.
    @inline(__always)
    private static func farther(_ aScore: Float, _ aID: UInt64, _ bScore: Float, _ bID: UInt64) -> Bool {
        aScore < bScore || (aScore == bScore && aID > bID)
    }

    @inline(__always)
    mutating func offer(score: Float, id: UInt64) {
        // Fast path: most candidates are strictly farther than the k-th kept.
        if score < worstScore { return }
        if scores.count < k {
            scores.append(score)
            ids.append(id)
            siftUp(scores.count - 1)
            if scores.count == k { worstScore = scores[0] }
            return
        }
        guard k > 0, Self.farther(scores[0], ids[0], score, id) else { return }
        scores[0] = score
        ids[0] = id
        siftDown(0)
        worstScore = scores[0]
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.farther(scores[child], ids[child], scores[parent], ids[parent]) else { break }
            scores.swapAt(child, parent)
            ids.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let n = scores.count
        while true {
            let left = 2 * parent + 1
            guard left < n else { break }
            var farthest = left
            let right = left + 1
            if right < n && Self.farther(scores[right], ids[right], scores[left], ids[left]) { farthest = right }
            guard Self.farther(scores[farthest], ids[farthest], scores[parent], ids[parent]) else { break }
            scores.swapAt(farthest, parent)
            ids.swapAt(farthest, parent)
            parent = farthest
        }
    }

    /// The kept entries, nearest first.
    func sorted() -> [Neighbour] {
        zip(ids, scores).map { Neighbour(id: $0, score: $1) }.sorted { $0.isNearer(than: $1) }
    }
}
