// Exact nearest neighbours: every item is scored, so this is the ground truth the approximate
// index is measured against, and the answer for small catalogs and rare source filters.
//
//   vectors   [N, D] row-major, unit rows (normalised when added; a zero vector stays zero)
//   ids       [N], sourceCodes [N] (codes of `sourceTags`)
//   queries   [Q, D], normalised before scoring, so every score is a cosine similarity
//
// One query is one pass over the items (an sdot per row; see VectorMath.swift). A batch of
// queries is sgemm: S[q, i] = queries · itemsᵀ, a block of `queryBlock` queries by `itemBlock`
// items at a time, so the scratch is queryBlock × itemBlock floats whatever N is, and each row of
// S feeds its query's TopK heap (partial selection, never a sort of N). A filtered batch gathers
// the matching rows first when they are a minority, so sgemm does only useful work.
//
// An ExactIndex is a value: built once from a Builder, then never changed, so it can be shared
// between threads and swapped whole when a new model version's embeddings are ready.
import Neural

public struct ExactIndex: Sendable {
    /// The model version whose embeddings these are: every answer from this index is in it.
    public let version: Int
    public let dimension: Int
    /// Row → id.
    public let ids: [UInt64]
    /// [count, dimension] unit rows.
    public let vectors: [Float]
    /// Row → code of its source tag in `sourceTags`.
    public let sourceCodes: [UInt32]
    let tags: SourceTags
    let rowByID: [UInt64: Int32]

    /// Items per sgemm block in batched search: 4096 × D floats of items, queryBlock × 4096 scores.
    public static let itemBlock = 4096
    /// Queries per sgemm block in batched search.
    public static let queryBlock = 256

    public var count: Int { ids.count }
    /// Code → tag.
    public var sourceTags: [String] { tags.tags }
    /// Tag → code, nil for a tag no item has.
    public func sourceCode(of tag: String) -> UInt32? { tags.code(of: tag) }

    /// The stored unit vector of `id` (for kNN by item), or nil.
    public func lookup(_ id: UInt64) -> [Float]? {
        guard let row = rowByID[id].map(Int.init) else { return nil }
        return Array(vectors[row * dimension..<(row + 1) * dimension])
    }

    public func contains(_ id: UInt64) -> Bool { rowByID[id] != nil }

    /// Bytes of its buffers: vectors, ids, source codes and tags, and the id → row table.
    public var allocatedBytes: Int {
        vectors.allocatedBytes + ids.allocatedBytes + sourceCodes.allocatedBytes + tags.allocatedBytes + rowByID.allocatedBytes
    }

    /// The source tag of `id`, or nil.
    public func source(of id: UInt64) -> String? {
        guard let row = rowByID[id] else { return nil }
        return tags.tags[Int(sourceCodes[Int(row)])]
    }

    // MARK: Building

    /// Collects (id, vector, source) and makes the immutable index.
    public struct Builder {
        public let version: Int
        public let dimension: Int
        private var ids: [UInt64] = []
        private var vectors: [Float] = []
        private var sourceCodes: [UInt32] = []
        private var tags = SourceTags()
        private var rowByID: [UInt64: Int32] = [:]

        public init(dimension: Int, version: Int = 0, capacity: Int = 0) {
            precondition(dimension >= 1, "dimension must be at least 1")
            self.dimension = dimension
            self.version = version
            ids.reserveCapacity(capacity)
            vectors.reserveCapacity(capacity * dimension)
            sourceCodes.reserveCapacity(capacity)
            rowByID.reserveCapacity(capacity)
        }

        public var count: Int { ids.count }

        /// Bytes of what it collected so far (as `ExactIndex.allocatedBytes`).
        public var allocatedBytes: Int {
            vectors.allocatedBytes + ids.allocatedBytes + sourceCodes.allocatedBytes + tags.allocatedBytes + rowByID.allocatedBytes
        }

        /// Adds an item; `vector` (finite, any length scale) is stored normalised. Adding an id
        /// again replaces its vector and source.
        public mutating func append(id: UInt64, vector: [Float], source: String = "") {
            precondition(vector.count == dimension, "vector of \(vector.count) values for dimension \(dimension)")
            let code = tags.intern(source)
            let row: Int
            if let existing = rowByID[id] {
                row = Int(existing)
                sourceCodes[row] = code
            } else {
                row = ids.count
                precondition(row < Int(Int32.max), "too many items for Int32 rows")
                rowByID[id] = Int32(row)
                ids.append(id)
                sourceCodes.append(code)
                vectors.append(contentsOf: repeatElement(0, count: dimension))
            }
            let d = dimension
            vector.withUnsafeBufferPointer { v in
                vectors.withUnsafeMutableBufferPointer { out in writeUnit(v.baseAddress!, count: d, to: out.baseAddress! + row * d) }
            }
        }

        /// The index of everything added so far.
        public func build() -> ExactIndex {
            var tags = self.tags
            for (row, code) in sourceCodes.enumerated() { tags.append(row: row, code: code) }
            return ExactIndex(version: version, dimension: dimension, ids: ids, vectors: vectors,
                              sourceCodes: sourceCodes, tags: tags, rowByID: rowByID)
        }
    }

    // MARK: Search

    /// The k items most similar to `query` (any scale, finite; length `dimension`), nearest first,
    /// optionally only those with source tag `source` and an id in `ids`. Fewer than k when fewer
    /// items match.
    public func search(_ query: [Float], k: Int, source: String? = nil, ids range: ClosedRange<UInt64>? = nil) -> [Neighbour] {
        precondition(query.count == dimension, "query of \(query.count) values for dimension \(dimension)")
        guard k > 0, count > 0 else { return [] }
        var code: UInt32? = nil
        if let source {
            guard let known = tags.code(of: source) else { return [] }
            code = known
        }
        let unit = unitVector(query)
        var best = TopK(k: k)
        let d = dimension
        unit.withUnsafeBufferPointer { q in
            vectors.withUnsafeBufferPointer { v in
                ids.withUnsafeBufferPointer { idp in
                    let inRange: (Int) -> Bool = { row in range.map { $0.contains(idp[row]) } ?? true }
                    if let code {
                        // Only the rows with this source: the cost follows the filter's share.
                        tags.rows[Int(code)].withUnsafeBufferPointer { rows in
                            scanRows(rows, query: q.baseAddress!, vectors: v.baseAddress!, dimension: d,
                                     ids: idp.baseAddress!, into: &best, where: inRange)
                        }
                    } else {
                        for r in 0..<count where inRange(r) {
                            best.offer(score: dot(q.baseAddress!, v.baseAddress! + r * d, count: d), id: idp[r])
                        }
                    }
                }
            }
        }
        return best.sorted()
    }

    /// `search(_:k:source:)` for many queries at once, through sgemm; answers in query order.
    public func search(queries: [[Float]], k: Int, source: String? = nil, ids range: ClosedRange<UInt64>? = nil) -> [[Neighbour]] {
        guard !queries.isEmpty else { return [] }
        let d = dimension
        guard k > 0, count > 0 else { return queries.map { _ in [] } }
        var matrix = [Float](repeating: 0, count: queries.count * d)
        matrix.withUnsafeMutableBufferPointer { m in
            for (i, query) in queries.enumerated() {
                precondition(query.count == d, "query \(i) has \(query.count) values for dimension \(d)")
                query.withUnsafeBufferPointer { writeUnit($0.baseAddress!, count: d, to: m.baseAddress! + i * d) }
            }
        }
        var heaps = (0..<queries.count).map { _ in TopK(k: k) }
        guard source != nil || range != nil else {
            vectors.withUnsafeBufferPointer { v in
                ids.withUnsafeBufferPointer { idp in
                    matrix.withUnsafeBufferPointer { q in
                        Self.blockedSearch(queries: q.baseAddress!, queryCount: queries.count, items: v.baseAddress!,
                                           itemIDs: idp.baseAddress!, itemCount: count, dimension: d, into: &heaps)
                    }
                }
            }
            return heaps.map { $0.sorted() }
        }
        var code: UInt32? = nil
        if let source {
            guard let known = tags.code(of: source) else { return queries.map { _ in [] } }
            code = known
        }
        // The matching rows, gathered into their own matrix (at most N·D floats; only the minority
        // case pays it, and then it is less than half of `vectors`).
        let sourceRows: [Int32] = code.map { tags.rows[Int($0)] } ?? []
        let rows: [Int32] = range.map { range in
            code == nil ? ids.indices.filter { range.contains(ids[$0]) }.map(Int32.init) : sourceRows.filter { range.contains(ids[Int($0)]) }
        } ?? sourceRows
        if rows.count * 2 <= count {
            var gathered = [Float](repeating: 0, count: rows.count * d)
            var gatheredIDs = [UInt64](repeating: 0, count: rows.count)
            vectors.withUnsafeBufferPointer { v in
                gathered.withUnsafeMutableBufferPointer { g in
                    for (i, row) in rows.enumerated() {
                        (g.baseAddress! + i * d).update(from: v.baseAddress! + Int(row) * d, count: d)
                        gatheredIDs[i] = ids[Int(row)]
                    }
                }
            }
            gathered.withUnsafeBufferPointer { v in
                gatheredIDs.withUnsafeBufferPointer { idp in
                    matrix.withUnsafeBufferPointer { q in
                        Self.blockedSearch(queries: q.baseAddress!, queryCount: queries.count, items: v.baseAddress!,
                                           itemIDs: idp.baseAddress!, itemCount: rows.count, dimension: d, into: &heaps)
                    }
                }
            }
        } else {
            vectors.withUnsafeBufferPointer { v in
                ids.withUnsafeBufferPointer { idp in
                    sourceCodes.withUnsafeBufferPointer { codes in
                        matrix.withUnsafeBufferPointer { q in
                            Self.blockedSearch(queries: q.baseAddress!, queryCount: queries.count, items: v.baseAddress!,
                                               itemIDs: idp.baseAddress!, itemCount: count, dimension: d, into: &heaps,
                                               keep: { (code == nil || codes[$0] == code) && (range?.contains(idp[$0]) ?? true) })
                        }
                    }
                }
            }
        }
        return heaps.map { $0.sorted() }
    }

    /// Scores queries [queryCount, D] against items [itemCount, D] block by block with sgemm and
    /// offers each score to its query's heap; `keep(row)` (when given) skips item rows.
    static func blockedSearch(queries: UnsafePointer<Float>, queryCount: Int, items: UnsafePointer<Float>,
                              itemIDs: UnsafePointer<UInt64>, itemCount: Int, dimension d: Int,
                              into heaps: inout [TopK], keep: ((Int) -> Bool)? = nil) {
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: min(queryBlock, queryCount) * min(itemBlock, itemCount))
        defer { scores.deallocate() }
        for itemStart in stride(from: 0, to: itemCount, by: itemBlock) {
            let itemRows = min(itemBlock, itemCount - itemStart)
            for queryStart in stride(from: 0, to: queryCount, by: queryBlock) {
                let queryRows = min(queryBlock, queryCount - queryStart)
                // S[queryRows, itemRows] = Q[queryRows, D] · Xᵀ, X the item block [itemRows, D].
                BLAS.gemm(transposeB: true, m: queryRows, n: itemRows, k: d,
                          a: queries + queryStart * d, lda: d, b: items + itemStart * d, ldb: d,
                          c: scores, ldc: itemRows)
                for r in 0..<queryRows {
                    let s = scores + r * itemRows
                    if let keep {
                        for j in 0..<itemRows where keep(itemStart + j) {
                            heaps[queryStart + r].offer(score: s[j], id: itemIDs[itemStart + j])
                        }
                    } else {
                        heaps.withUnsafeMutableBufferPointer { h in
                            // Most scores lose to the k-th kept: compare against a local copy of it,
                            // refreshed only when an offer gets in.
                            var worst = h[queryStart + r].worstScore
                            for j in 0..<itemRows where s[j] >= worst {
                                h[queryStart + r].offer(score: s[j], id: itemIDs[itemStart + j])
                                worst = h[queryStart + r].worstScore
                            }
                        }
                    }
                }
            }
        }
    }
}
