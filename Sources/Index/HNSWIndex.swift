// Approximate nearest neighbours for large catalogs: a Hierarchical Navigable Small World graph
// (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using Hierarchical
// Navigable Small World graphs", TPAMI 2018; arXiv 1603.09320), written from the paper.
//
// Each item is a node on layers 0...level, level drawn as ⌊−ln U · mL⌋ with mL = 1/ln M from a
// seeded generator, so a build is a function of (items in order, parameters). A node keeps up to M
// links on layers ≥ 1 and M0 = 2M on layer 0. Insertion (Algorithm 1) descends greedily from the
// entry point to the node's top layer, then on each layer below searches with efConstruction
// (Algorithm 2), links the node to M of the results chosen by the heuristic of Algorithm 4 (a
// candidate is kept only if it is nearer to the new node than to every neighbour kept so far, which
// keeps links pointing in different directions; no candidate extension, no pruned-connection
// refill, as in hnswlib), and links back, re-running the heuristic on a neighbour whose list is
// full. A query (Algorithm 5) descends greedily and searches layer 0 with ef = max(ef, k).
//
// Similarity is the inner product of unit vectors (= cosine), higher is nearer, so heaps are
// ordered by similarity; answers come out in Neighbour order (score, then smaller id). Vectors are
// stored contiguously, [N, D], and links in fixed-size slots (the layout is in HNSWGraph.swift,
// which holds the walk itself); similarities are single-vector sdot calls (see VectorMath.swift).
//
// Removal marks an item deleted: it is never an answer, but stays in the graph as a waypoint, so
// the graph does not need repair; it is rebuilt with the next model version anyway.
//
// Filters (a source, a range of ids). The filter is applied inside the layer-0 search: a node that does not match is
// walked through but takes no result slot, so ef counts matching items only. That is post-filtering
// with an ef that grows until ef matching items are held (hnswlib's filter functor does the same).
// It pays while matching items are common; when they are rare the walk has to cross about
// ef / share nodes to collect ef of them, and scoring the matching items directly is cheaper.
// The rule: **exact search over the matching items when they are fewer than 20% of the live items,
// or no more than ef** (a walk scores at least ef nodes anyway); the graph otherwise. 20% is where
// the two cross (glf-bench knn, 10⁵ items of dimension 128, ef 64: at 20% the walk answered 3,970
// queries/s and a scan of the matching items 4,302; at 10%, 3,065 and 6,846; at 50%, 5,032 and 1,556). A filtered
// walk only ends short of ef matching items when it has reached every node it can reach; if it
// then holds fewer than k while at least k match (the pruning heuristic can leave a few nodes
// unreachable), the answer is recomputed exactly: an answer is never short.
//
// Threads: searches run concurrently (a reader–writer lock; each search takes its own scratch);
// insert and remove take the lock exclusively. The build is single-threaded: one insert at a time,
// in the order given — simple, deterministic, and the two cores are busy training anyway.
import Foundation
import Neural

public struct HNSWParameters: Sendable, Equatable {
    /// Links per node on layers ≥ 1; layer 0 keeps up to 2M.
    public var m: Int
    /// ef while inserting: breadth of the search for a new node's neighbours.
    public var efConstruction: Int
    /// ef of a query unless the query names its own (always at least k).
    public var efSearch: Int
    /// Seeds the level draws.
    public var seed: UInt64

    public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, seed: UInt64 = 2016) {
        precondition(m >= 2 && efConstruction >= 1 && efSearch >= 1, "HNSW needs M ≥ 2, efConstruction ≥ 1 and efSearch ≥ 1")
        self.m = m
        self.efConstruction = efConstruction
        self.efSearch = efSearch
        self.seed = seed
    }

    /// Links per node on layer 0.
    public var m0: Int { 2 * m }
    /// mL: level = ⌊−ln U · mL⌋.
    public var levelMultiplier: Double { 1 / log(Double(m)) }
}

public final class HNSWIndex: @unchecked Sendable {
    public let parameters: HNSWParameters
    public let dimension: Int
    /// The model version whose embeddings these are.
    public let version: Int

    /// Share of live items below which a filter is answered by exact search (see above).
    public static let exactFilterShare = 0.2

    // All state below is guarded by `lock`; the layout is in HNSWGraph.swift.
    private let lock = ReadWriteLock()
    private var vectors: RawBuffer<Float>
    private var links0: RawBuffer<Int32>
    private var upperLinks: RawBuffer<Int32>
    private var upperOffsets: RawBuffer<Int>
    private var deleted: RawBuffer<Bool>
    private var sourceCodes: RawBuffer<UInt32>
    private var levels: [UInt8] = []
    private var ids: [UInt64] = []
    private var tags = SourceTags()
    /// Live items per source code.
    private var liveBySource: [Int] = []
    private var rowByID: [UInt64: Int32] = [:]
    private var liveCount = 0
    private var entryPoint: Int32 = -1
    private var maxLevel = -1
    private var levelGenerator: SeededGenerator
    /// Scratch for inserts (used under the write lock only) and a pool for concurrent searches.
    private let buildScratch: SearchScratch
    private let searchScratch: ScratchPool

    public init(dimension: Int, version: Int = 0, parameters: HNSWParameters = HNSWParameters(), capacity: Int = 1024) {
        precondition(dimension >= 1, "dimension must be at least 1")
        self.dimension = dimension
        self.version = version
        self.parameters = parameters
        let nodes = max(1, capacity)
        vectors = RawBuffer(capacity: nodes * dimension)
        links0 = RawBuffer(capacity: nodes * (parameters.m0 + 1))
        upperLinks = RawBuffer(capacity: max(1, nodes / parameters.m) * (parameters.m + 1))
        upperOffsets = RawBuffer(capacity: nodes)
        deleted = RawBuffer(capacity: nodes)
        sourceCodes = RawBuffer(capacity: nodes)
        levelGenerator = SeededGenerator(seed: parameters.seed)
        buildScratch = SearchScratch(dimension: dimension, maxLinks: parameters.m0)
        searchScratch = ScratchPool(dimension: dimension, maxLinks: parameters.m0)
    }

    /// The graph of every item of `exact`, inserted in its row order (same vectors, same version).
    public convenience init(from exact: ExactIndex, parameters: HNSWParameters = HNSWParameters()) {
        self.init(from: exact, parameters: parameters, cancelled: { false })!
    }

    /// As `init(from:parameters:)`, but gives up (nil) when `cancelled` turns true, which it asks
    /// every 1024 insertions: a daemon that stops does not wait for a 40-second build.
    public convenience init?(from exact: ExactIndex, parameters: HNSWParameters = HNSWParameters(),
                             cancelled: () -> Bool) {
        self.init(dimension: exact.dimension, version: exact.version, parameters: parameters, capacity: exact.count)
        let d = dimension
        let completed = exact.vectors.withUnsafeBufferPointer { v in
            lock.writing {
                for row in 0..<exact.count {
                    if row % 1024 == 0 && cancelled() { return false }
                    insertUnit(id: exact.ids[row], unit: v.baseAddress! + row * d,
                               source: exact.sourceTags[Int(exact.sourceCodes[row])])
                }
                return true
            }
        }
        if !completed { return nil }
    }

    deinit {
        vectors.deallocate()
        links0.deallocate()
        upperLinks.deallocate()
        upperOffsets.deallocate()
        deleted.deallocate()
        sourceCodes.deallocate()
    }

    /// Live (not removed) items.
    public var count: Int { lock.reading { liveCount } }

    /// Nodes in the graph, removed ones included: a removal only marks its node (its links still
    /// route searches), so the graph's memory follows this, not `count`.
    public var nodeCount: Int { lock.reading { ids.count } }

    /// Bytes of the graph: its own copy of the vectors, the links of every layer, ids, levels,
    /// source codes and tags, and the id → row table (the search scratch aside: a few KiB).
    public var allocatedBytes: Int {
        lock.reading {
            vectors.allocatedBytes + links0.allocatedBytes + upperLinks.allocatedBytes + upperOffsets.allocatedBytes
                + deleted.allocatedBytes + sourceCodes.allocatedBytes + levels.allocatedBytes + ids.allocatedBytes
                + tags.allocatedBytes + liveBySource.allocatedBytes + rowByID.allocatedBytes
        }
    }

    public func contains(_ id: UInt64) -> Bool {
        lock.reading { rowByID[id].map { !deleted.base[Int($0)] } ?? false }
    }

    /// The stored unit vector of a live item, or nil.
    public func lookup(_ id: UInt64) -> [Float]? {
        lock.reading {
            guard let row = rowByID[id].map(Int.init), !deleted.base[row] else { return nil }
            return Array(UnsafeBufferPointer(start: vectors.base + row * dimension, count: dimension))
        }
    }

    /// The walk over the current buffers; valid until the next insert.
    private var graph: HNSWGraph {
        HNSWGraph(vectors: vectors.base, links0: links0.base, upperLinks: upperLinks.base, upperOffsets: upperOffsets.base,
                  deleted: deleted.base, sourceCodes: sourceCodes.base, nodeCount: ids.count, dimension: dimension,
                  m: parameters.m, m0: parameters.m0)
    }

    // MARK: Changes

    /// Adds an item (`vector` finite, any scale; stored normalised). Inserting a live id again
    /// replaces it: the old node is marked deleted and a new one inserted.
    public func insert(id: UInt64, vector: [Float], source: String = "") {
        precondition(vector.count == dimension, "vector of \(vector.count) values for dimension \(dimension)")
        let unit = unitVector(vector)
        unit.withUnsafeBufferPointer { u in
            lock.writing { insertUnit(id: id, unit: u.baseAddress!, source: source) }
        }
    }

    /// Marks `id` deleted: no answer contains it again. Returns false if it was not a live item.
    @discardableResult
    public func remove(_ id: UInt64) -> Bool {
        lock.writing {
            guard let row = rowByID[id].map(Int.init), !deleted.base[row] else { return false }
            markDeleted(row)
            return true
        }
    }

    private func markDeleted(_ row: Int) {
        deleted.base[row] = true
        liveCount -= 1
        liveBySource[Int(sourceCodes.base[row])] -= 1
    }

    /// Algorithm 1 (INSERT), for a unit vector, under the write lock.
    private func insertUnit(id: UInt64, unit: UnsafePointer<Float>, source: String) {
        if let old = rowByID[id].map(Int.init), !deleted.base[old] { markDeleted(old) }
        let (m, m0, d) = (parameters.m, parameters.m0, dimension)
        let row = ids.count
        precondition(row < Int(Int32.max), "too many items for Int32 rows")
        let level = drawLevel()

        // Storage first (buffers may move), the graph's pointers after.
        ids.append(id)
        rowByID[id] = Int32(row)
        let code = tags.intern(source)
        if Int(code) == liveBySource.count { liveBySource.append(0) }
        tags.append(row: row, code: code)
        sourceCodes.append(repeating: code, count: 1)
        deleted.append(repeating: false, count: 1)
        liveCount += 1
        liveBySource[Int(code)] += 1
        levels.append(UInt8(level))
        vectors.append(from: unit, count: d)
        links0.append(repeating: 0, count: m0 + 1)
        upperOffsets.append(repeating: level > 0 ? upperLinks.append(repeating: 0, count: level * (m + 1)) : -1, count: 1)

        let node = Int32(row)
        guard entryPoint >= 0 else {
            entryPoint = node
            maxLevel = level
            return
        }
        let graph = self.graph
        let query = graph.vector(node)
        var nearest = entryPoint
        var nearestSimilarity = graph.similarity(query, entryPoint)
        if maxLevel > level {
            for layer in stride(from: maxLevel, to: level, by: -1) {
                graph.greedyDescent(query, layer: layer, nearest: &nearest, similarity: &nearestSimilarity)
            }
        }
        for layer in stride(from: min(level, maxLevel), through: 0, by: -1) {
            graph.searchLayer(query, entry: nearest, entrySimilarity: nearestSimilarity, ef: parameters.efConstruction,
                              layer: layer, scratch: buildScratch, filter: .all)
            let found = graph.nearestFirst(buildScratch.results)
            let chosen = graph.selectNeighbours(found, count: m)
            let list = graph.links(node, layer: layer)
            list[0] = Int32(chosen.count)
            for (i, neighbour) in chosen.enumerated() { list[1 + i] = neighbour.node }
            for neighbour in chosen { graph.link(neighbour.node, to: node, similarity: neighbour.similarity, layer: layer) }
            nearest = found[0].node
            nearestSimilarity = found[0].similarity
        }
        if level > maxLevel {
            entryPoint = node
            maxLevel = level
        }
    }

    private func drawLevel() -> Int {
        // U in (0, 1]: never ln 0.
        let u = Double((levelGenerator.next() >> 11) + 1) * 0x1p-53
        return min(Int(-log(u) * parameters.levelMultiplier), 30)
    }

    // MARK: Search

    /// The k items most similar to `query` (any scale, finite), nearest first; `ef` defaults to
    /// parameters.efSearch and is raised to k. With `source`, only items with that tag (see the
    /// filter rule at the top of the file).
    public func search(_ query: [Float], k: Int, ef: Int? = nil, source: String? = nil, ids range: ClosedRange<UInt64>? = nil) -> [Neighbour] {
        searchReportingExact(query, k: k, ef: ef, source: source, ids: range).neighbours
    }

    /// `search`, and whether it scored every matching item instead of walking the graph: a filter
    /// (`source`, `ids`) that leaves under `exactFilterShare` of the items, or fewer than the
    /// search width, is answered exactly, and so is a walk that found fewer than k of them.
    public func searchReportingExact(_ query: [Float], k: Int, ef: Int? = nil, source: String? = nil,
                                     ids range: ClosedRange<UInt64>? = nil) -> (neighbours: [Neighbour], exact: Bool) {
        precondition(query.count == dimension, "query of \(query.count) values for dimension \(dimension)")
        guard k > 0 else { return ([], false) }
        let width = max(ef ?? parameters.efSearch, k)
        return lock.reading {
            guard liveCount > 0 else { return ([], false) }
            var code: UInt32? = nil
            var matching = liveCount
            if let source {
                guard let known = tags.code(of: source) else { return ([], true) }
                code = known
                matching = liveBySource[Int(known)]
            }
            // A range's matching rows, found in one pass over the ids (no dot products; a range's
            // share is not kept): the exact answer scores just these.
            var rangeRows: [Int32]? = nil
            if let range {
                let (codes, deleted) = (sourceCodes.base, deleted.base)
                rangeRows = ids.indices.compactMap { row in
                    !deleted[row] && range.contains(ids[row]) && (code == nil || codes[row] == code) ? Int32(row) : nil
                }
                matching = rangeRows!.count
            }
            guard matching > 0 else { return ([], true) }
            return searchScratch.withScratch { scratch in
                query.withUnsafeBufferPointer { writeUnit($0.baseAddress!, count: dimension, to: scratch.query) }
                let filtered = code != nil || range != nil
                if filtered && (Double(matching) < Self.exactFilterShare * Double(liveCount) || matching <= width) {
                    return (exactSearch(scratch.query, k: k, code: code, ids: range, rows: rangeRows), true)
                }
                let found = ids.withUnsafeBufferPointer { nodeIDs in
                    graphSearch(scratch.query, k: k, ef: width, code: code, ids: range, nodeIDs: nodeIDs.baseAddress!, scratch: scratch)
                }
                if found.count < min(k, matching) { return (exactSearch(scratch.query, k: k, code: code, ids: range, rows: rangeRows), true) }
                return (found, false)
            }
        }
    }

    /// Algorithm 5 (K-NN-SEARCH): greedy descent to layer 1, then an ef-wide search of layer 0
    /// whose results are live items (with source `code`, if given).
    private func graphSearch(_ query: UnsafePointer<Float>, k: Int, ef: Int, code: UInt32?, ids range: ClosedRange<UInt64>?,
                             nodeIDs: UnsafePointer<UInt64>, scratch: SearchScratch) -> [Neighbour] {
        let graph = self.graph
        var nearest = entryPoint
        var nearestSimilarity = graph.similarity(query, entryPoint)
        for layer in stride(from: maxLevel, to: 0, by: -1) {
            graph.greedyDescent(query, layer: layer, nearest: &nearest, similarity: &nearestSimilarity)
        }
        let filter: HNSWGraph.ResultFilter = if let range { .liveMatching(code: code, ids: range, nodeIDs: nodeIDs) }
            else if let code { .liveWithSource(code) } else if liveCount < ids.count { .live } else { .all }
        graph.searchLayer(query, entry: nearest, entrySimilarity: nearestSimilarity, ef: ef, layer: 0, scratch: scratch,
                          filter: filter)
        var best = TopK(k: k)
        let results = scratch.results
        for i in 0..<results.count { best.offer(score: results.keys.base[i], id: ids[Int(results.nodes.base[i])]) }
        return best.sorted()
    }

    /// Every live item (with source `code` and an id in `range`, if given) scored: the exact answer.
    /// `rows`, when given, are the matching rows already found.
    private func exactSearch(_ query: UnsafePointer<Float>, k: Int, code: UInt32?, ids range: ClosedRange<UInt64>?,
                             rows matching: [Int32]? = nil) -> [Neighbour] {
        var best = TopK(k: k)
        let (d, vectors, deleted) = (dimension, vectors.base, deleted.base)
        ids.withUnsafeBufferPointer { ids in
            let keep: (Int) -> Bool = { row in !deleted[row] && (range?.contains(ids[row]) ?? true) }
            if let matching {
                matching.withUnsafeBufferPointer { rows in
                    scanRows(rows, query: query, vectors: vectors, dimension: d, ids: ids.baseAddress!, into: &best)
                }
            } else if let code {
                tags.rows[Int(code)].withUnsafeBufferPointer { rows in
                    scanRows(rows, query: query, vectors: vectors, dimension: d, ids: ids.baseAddress!, into: &best, where: keep)
                }
            } else {
                for r in 0..<ids.count where keep(r) {
                    best.offer(score: dot(query, vectors + r * d, count: d), id: ids[r])
                }
            }
        }
        return best.sorted()
    }

    // MARK: Inspection (tests)

    /// Neighbour ids of `id` on `layer`, in link order; nil when the item has no such layer.
    func linkedIDs(of id: UInt64, layer: Int) -> [UInt64]? {
        lock.reading {
            guard let row = rowByID[id], layer >= 0, layer <= Int(levels[Int(row)]) else { return nil }
            let list = graph.links(row, layer: layer)
            return (0..<Int(list[0])).map { ids[Int(list[1 + $0])] }
        }
    }

    /// The number of nodes on each layer, from layer 0 up.
    var layerSizes: [Int] {
        lock.reading {
            var sizes = [Int](repeating: 0, count: max(0, maxLevel + 1))
            for level in levels { for l in 0...Int(level) { sizes[l] += 1 } }
            return sizes
        }
    }
}
