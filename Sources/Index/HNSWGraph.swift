// The HNSW graph walk (the paper's Algorithms 2 and 4 and the descent of 1 and 5) on raw storage.
// HNSWIndex owns the buffers and the lock; it hands out an HNSWGraph — a bundle of their base
// pointers, valid until the next insert grows them — so the hot loops read plain pointers: no
// bounds, exclusivity or uniqueness checks.
//
//   vectors      [nodeCount, dimension] unit rows
//   links0       [nodeCount, 1 + m0] Int32: link count, then the neighbour rows (layer 0)
//   upperLinks   per node of level L ≥ 1, L blocks of [1 + m] Int32 from upperOffsets[node]
//   deleted      [nodeCount] Bool; sourceCodes [nodeCount] UInt32

/// A node and its similarity to some base vector.
struct ScoredNode {
    var similarity: Float
    var node: Int32

    /// Nearer first; equal similarities by smaller row, so sorting is deterministic.
    @inline(__always)
    func isNearer(than other: ScoredNode) -> Bool {
        similarity > other.similarity || (similarity == other.similarity && node < other.node)
    }
}

struct HNSWGraph {
    let vectors: UnsafeMutablePointer<Float>
    let links0: UnsafeMutablePointer<Int32>
    let upperLinks: UnsafeMutablePointer<Int32>
    let upperOffsets: UnsafeMutablePointer<Int>
    let deleted: UnsafeMutablePointer<Bool>
    let sourceCodes: UnsafeMutablePointer<UInt32>
    let nodeCount: Int
    let dimension: Int
    let m: Int
    let m0: Int

    /// Which nodes a layer search may return; all of them are walked through.
    enum ResultFilter {
        case all, live, liveWithSource(UInt32)
        /// Live, with source `code` (any, if nil) and an id (`nodeIDs[node]`) in `ids`.
        case liveMatching(code: UInt32?, ids: ClosedRange<UInt64>, nodeIDs: UnsafePointer<UInt64>)
    }

    @inline(__always)
    func vector(_ node: Int32) -> UnsafeMutablePointer<Float> { vectors + Int(node) * dimension }

    @inline(__always)
    func similarity(_ query: UnsafePointer<Float>, _ node: Int32) -> Float { dot(query, vector(node), count: dimension) }

    /// The link list of `node` on `layer`: [count, row, row, ...].
    @inline(__always)
    func links(_ node: Int32, layer: Int) -> UnsafeMutablePointer<Int32> {
        layer == 0 ? links0 + Int(node) * (m0 + 1) : upperLinks + upperOffsets[Int(node)] + (layer - 1) * (m + 1)
    }

    @inline(__always)
    func accepts(_ node: Int32, _ filter: ResultFilter) -> Bool {
        switch filter {
        case .all: true
        case .live: !deleted[Int(node)]
        case .liveWithSource(let code): !deleted[Int(node)] && sourceCodes[Int(node)] == code
        case .liveMatching(let code, let ids, let nodeIDs):
            !deleted[Int(node)] && (code == nil || sourceCodes[Int(node)] == code) && ids.contains(nodeIDs[Int(node)])
        }
    }

    /// SEARCH-LAYER with ef = 1: move to the most similar neighbour until none is more similar.
    func greedyDescent(_ query: UnsafePointer<Float>, layer: Int, nearest: inout Int32, similarity best: inout Float) {
        var moved = true
        while moved {
            moved = false
            let list = links(nearest, layer: layer)
            let linkCount = Int(list[0])
            var i = 1
            while i <= linkCount {
                let candidate = list[i]
                i += 1
                let s = similarity(query, candidate)
                if s > best {
                    best = s
                    nearest = candidate
                    moved = true
                }
            }
        }
    }

    /// Algorithm 2 (SEARCH-LAYER) from one entry: best-first expansion, stopping when the nearest
    /// unexpanded candidate is farther than the farthest of ef results. Leaves the results in
    /// `scratch.results` (root: farthest). Nodes the filter refuses (deleted items, other sources)
    /// are expanded but take no result slot.
    func searchLayer(_ query: UnsafePointer<Float>, entry: Int32, entrySimilarity: Float, ef: Int, layer: Int,
                     scratch: SearchScratch, filter: ResultFilter) {
        let epoch = scratch.beginVisit(nodeCount: nodeCount)
        let visited = scratch.visited.base
        // Local copies of the heaps (raw storage, so no copy of the entries), written back at the end.
        var candidates = scratch.candidates, results = scratch.results
        defer {
            scratch.candidates = candidates
            scratch.results = results
        }
        candidates.removeAll()
        results.removeAll()
        visited[Int(entry)] = epoch
        candidates.push(-entrySimilarity, entry)
        if accepts(entry, filter) { results.push(entrySimilarity, entry) }
        var bound: Float = results.isEmpty ? -.infinity : results.topKey
        // The unvisited neighbours of the node being expanded, and their similarities: scoring them
        // in a loop of independent dot products lets their cache misses overlap.
        let fresh = scratch.fresh, freshSimilarities = scratch.freshSimilarities
        while !candidates.isEmpty {
            let current = candidates.topNode
            if -candidates.topKey < bound && results.count >= ef { break }
            candidates.pop()
            let list = links(current, layer: layer)
            var freshCount = 0
            for i in 1..<(1 + Int(list[0])) where visited[Int(list[i])] != epoch {
                visited[Int(list[i])] = epoch
                fresh[freshCount] = list[i]
                freshCount += 1
            }
            for i in 0..<freshCount { freshSimilarities[i] = similarity(query, fresh[i]) }
            for i in 0..<freshCount {
                let s = freshSimilarities[i], neighbour = fresh[i]
                guard results.count < ef || s > bound else { continue }
                candidates.push(-s, neighbour)
                if accepts(neighbour, filter) {
                    results.push(s, neighbour)
                    if results.count > ef { results.pop() }
                    bound = results.topKey
                }
            }
        }
    }

    /// A results heap's entries, nearest first.
    func nearestFirst(_ heap: NodeHeap) -> [ScoredNode] {
        var found = (0..<heap.count).map { ScoredNode(similarity: heap.keys.base[$0], node: heap.nodes.base[$0]) }
        found.sort { $0.isNearer(than: $1) }
        return found
    }

    /// Algorithm 4 (SELECT-NEIGHBORS-HEURISTIC) without extension or refill: from candidates sorted
    /// nearest first (similarities to the base vector), keep each one that is more similar to the
    /// base than to every one kept before it, until `count` are kept.
    func selectNeighbours(_ candidates: [ScoredNode], count: Int) -> [ScoredNode] {
        var kept: [ScoredNode] = []
        kept.reserveCapacity(count)
        for candidate in candidates {
            if kept.count >= count { break }
            let v = vector(candidate.node)
            var diverse = true
            for other in kept where dot(v, vector(other.node), count: dimension) > candidate.similarity {
                diverse = false
                break
            }
            if diverse { kept.append(candidate) }
        }
        return kept
    }

    /// Adds `node` to the links of `from` on `layer`; when the list is full, Algorithm 4 picks
    /// the list's capacity of the old links and the new one, as seen from `from`.
    func link(_ from: Int32, to node: Int32, similarity: Float, layer: Int) {
        let capacity = layer == 0 ? m0 : m
        let list = links(from, layer: layer)
        let n = Int(list[0])
        if n < capacity {
            list[1 + n] = node
            list[0] = Int32(n + 1)
            return
        }
        let base = vector(from)
        var candidates = [ScoredNode(similarity: similarity, node: node)]
        candidates.reserveCapacity(n + 1)
        for i in 1...n { candidates.append(ScoredNode(similarity: dot(base, vector(list[i]), count: dimension), node: list[i])) }
        candidates.sort { $0.isNearer(than: $1) }
        let kept = selectNeighbours(candidates, count: capacity)
        list[0] = Int32(kept.count)
        for (i, neighbour) in kept.enumerated() { list[1 + i] = neighbour.node }
    }
}
