// The catalog: every stored item's embedding under one model version, and that version's encoder
// for embedding queries. A catalog is used by one thread at a time (the query queue); a new version
// gets a new catalog, built in the background and swapped in whole, so an answer never mixes
// versions.
//
//   base         ExactIndex of the items present when the catalog was built (sgemm search: the
//                ground truth), plus an HNSW index of them for large catalogs, attached once built
//                (43 s for 100k items): until then knn answers exactly, and says so
//   tail         items ingested since, searched exactly: a knn embeds a few itself (`catchUp`),
//                more are embedded in the background (`appendToTail`); folded into a rebuilt base
//                when it grows past `tailLimit`
//
// A build starts from what is already embedded under its version (the saved base after a restart,
// or the current base and tail when folding a tail in) and embeds only the items after it, so a
// restart does not re-embed the store. Deleted items stay in the indexes until the next build drops
// them; answers leave them out by asking the store.
import Foundation
import GLF
import Index
import Neural
import Store

public struct CatalogSettings: Sendable, Equatable {
    public var approximate = true
    /// Below this many items exact search is fast enough, and no HNSW graph is built.
    public var approximateMinItems = 20_000
    public var hnsw = HNSWParameters()
    public var tailLimit = 4096
    /// New items a knn embeds itself before answering; more are embedded in the background (into
    /// the tail, or past `tailLimit` by folding them into the base) and answers leave them out
    /// until then.
    public var catchUpLimit = 128
    /// Threads that embed the store when a version is published (queries embed on one).
    public var buildThreads = 2
    /// Share of the time rebuilds for new versions may take (0 < share ≤ 1): after one of t
    /// seconds the next starts no sooner than t × (1/share − 1) seconds after it ended, and the
    /// versions published meanwhile are skipped for the newest. A rebuild re-embeds the whole
    /// store, so its cost, and with it the interval between served versions, grows with the store
    /// while training keeps the rest of the time. Folds of new items and the first catalog after a
    /// start do not wait: answers depend on them. Half by default: at 10⁶ items a rebuild takes 14
    /// minutes and training runs at 0.31 of its speed meanwhile (README, "Serving a million
    /// items"); back to back, as versions outpace rebuilds, that would be its speed for good.
    public var rebuildShare = 0.5
    /// How far new items lie from the replay set (status's `drift`, DriftMonitor.swift).
    public var drift = DriftSettings()
    /// A replica's rule (issue 16): a new version is served, by embed and knn alike and in
    /// `model`, `status` and the announcement, only once its catalog is built, so every answer
    /// of the replica comes from a complete catalog of the version it names. Off, a version is
    /// served by embed as soon as its encoder loads, and by knn once its catalog is built.
    public var serveWithCatalog = false
    public init() {}
}

/// A published version's encoder, loaded: it embeds images into unit vectors. Embedding runs in
/// place, so one encoder serves one thread at a time.
final class VersionEncoder: @unchecked Sendable {
    let version: PublishedVersion
    let shape: CanonicalShape
    private let embedder: Embedder

    /// `batch`: images per forward pass. The encoder keeps the activation buffers of the largest
    /// batch it ran, about 1.7 MiB per image at 32×32 and width 32 (427 MiB at 256), so encoders
    /// that answer queries embed in small batches (`queryBatch`) and only catalog builds in large
    /// ones.
    init(version: PublishedVersion, shape: CanonicalShape, threads: Int = 1, batch: Int = 256) throws {
        self.version = version
        self.shape = shape
        embedder = try Embedder.load(modelDirectory: URL(fileURLWithPath: version.path), workers: threads,
                                     batch: max(threads, batch / threads * threads))
    }

    /// Images per forward pass of the encoders on the query path (embed, knn, the tail).
    static let queryBatch = 32

    var dimension: Int { embedder.encoderConfig.featureDimension }

    /// Unit embeddings of canonical images (each `shape.pixelBytes` bytes).
    func embed(_ images: [[UInt8]]) -> [[Float]] {
        guard !images.isEmpty else { return [] }
        let features = embedder.embed(images.flatMap { $0 }, count: images.count, height: shape.side, width: shape.side,
                                      channels: shape.channels)
        let width = features.lastDimension
        return (0..<images.count).map { row in
            let values = Array(UnsafeBufferPointer(start: features.data + row * width, count: width))
            let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return norm > 0 ? values.map { $0 / norm } : values
        }
    }
}

/// Set once to ask a running build to give up at its next batch.
final class Cancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    var isCancelled: Bool { lock.withLock { cancelled } }
    func cancel() { lock.withLock { cancelled = true } }
}

final class Catalog: @unchecked Sendable {
    let encoder: VersionEncoder
    let settings: CatalogSettings
    private let store: ImageStore
    private(set) var base: ExactIndex
    /// Set on the query queue by `attach`.
    private var approximate: HNSWIndex?
    private var tail: ExactIndex.Builder
    private var tailIndex: ExactIndex
    /// The highest id embedded into base or tail.
    private var indexedThrough: UInt64 = 0
    /// The highest id the build looked at: the base holds every stored item up to it.
    let baseThrough: UInt64
    /// Rows the build embedded or dropped: when 0, the saved base is already this catalog's.
    let rowsChanged: Int

    /// Builds the catalog of `encoder`'s version from `start` (rows already embedded under it, or
    /// nil): drops the rows the store no longer holds and embeds, with `builder`, every item after
    /// the last one. The slow part: run it off the query queue. Nil when cancelled. `progress`
    /// hears the bytes collected so far after each batch.
    init?(encoder: VersionEncoder, store: ImageStore, settings: CatalogSettings, start: ExactIndex?,
          builder: VersionEncoder, cancellation: Cancellation, progress: (_ allocatedBytes: Int) -> Void = { _ in }) throws {
        self.encoder = encoder
        self.settings = settings
        self.store = store
        let dimension = encoder.dimension
        var index = ExactIndex.Builder(dimension: dimension, version: encoder.version.version, capacity: start?.count ?? 0)
        var after: UInt64 = 0, changed = 0
        if let start {
            precondition(start.version == encoder.version.version && start.dimension == dimension)
            for rows in stride(from: 0, to: start.count, by: 4096) {
                let ids = Array(start.ids[rows..<min(rows + 4096, start.count)])
                for (offset, present) in try store.contains(ids).enumerated() {
                    guard present else { changed += 1; continue }
                    index.append(row: rows + offset, of: start)
                }
            }
            after = start.ids.last ?? 0
        }
        // Items stored from here on go to the tail: under steady ingest a build that chased the
        // end of the store would never end.
        let through = try Self.embedItems(of: store, after: after, encoder: builder, cancellation: cancellation) { items, vectors in
            for (item, vector) in zip(items, vectors) { index.append(id: item.id, vector: vector, source: item.source) }
            changed += items.count
            progress(index.allocatedBytes)
        }
        guard let through else { return nil }
        rowsChanged = changed
        indexedThrough = through
        baseThrough = through
        base = index.build()
        tail = ExactIndex.Builder(dimension: dimension, version: encoder.version.version)
        tailIndex = tail.build()
    }

    /// Whether the base is large enough for an HNSW graph to pay.
    var wantsApproximate: Bool { settings.approximate && base.count >= settings.approximateMinItems }

    /// The HNSW graph of the base (slow: off the query queue; the base never changes), or nil when
    /// cancelled.
    func buildApproximate(cancellation: Cancellation) -> HNSWIndex? {
        HNSWIndex(from: base, parameters: settings.hnsw, cancelled: { cancellation.isCancelled })
    }

    /// Whether `graph`, from an earlier catalog of this version, is still worth extending: removed
    /// items stay in a graph as marked nodes, so under retention (or deletes) a graph extended fold
    /// after fold grows without bound while the store does not. Once its nodes would outnumber
    /// the base's items twice, a new graph is built instead (of the base alone).
    func canExtend(_ graph: HNSWIndex) -> Bool { graph.nodeCount + (base.count - graph.count) <= 2 * base.count }

    /// Brings the graph of an earlier catalog of this version up to this base: the rows `previous`
    /// lacked are inserted and the rows this base dropped (deleted items) removed. Folding a tail of
    /// a few thousand items in costs seconds where a new graph of 100k items costs 40. The graph
    /// may still be searched meanwhile (it locks), by the catalog it came from, whose answers then
    /// meet the inserted items twice (from the graph and from its tail): `search` drops repeats.
    /// Nil when cancelled.
    func extendApproximate(_ graph: HNSWIndex, from previous: ExactIndex, cancellation: Cancellation) -> HNSWIndex? {
        precondition(graph.version == version.version && graph.dimension == dimension)
        // Both id lists ascend: walk them together for the ids the base no longer has.
        var row = 0
        for id in previous.ids {
            while row < base.count && base.ids[row] < id { row += 1 }
            if row == base.count || base.ids[row] != id { graph.remove(id) }
        }
        var inserted = 0
        let d = dimension
        for row in 0..<base.count where !graph.contains(base.ids[row]) {
            if inserted % 1024 == 0 && cancellation.isCancelled { return nil }
            graph.insert(id: base.ids[row], vector: Array(base.vectors[row * d..<(row + 1) * d]),
                         source: base.sourceTags[Int(base.sourceCodes[row])])
            inserted += 1
        }
        return graph
    }

    /// Query queue only: approximate searches use `graph` from now on.
    func attach(_ graph: HNSWIndex) { approximate = graph }

    /// Query queue only: the attached HNSW graph, if any.
    var graph: HNSWIndex? { approximate }

    var version: PublishedVersion { encoder.version }
    var dimension: Int { base.dimension }
    /// Query queue only: bytes of its embeddings (base, tail) and its HNSW graph; its encoder is
    /// counted with the networks (`NeuralMemory`).
    var allocatedBytes: Int { base.allocatedBytes + tail.allocatedBytes + tailIndex.allocatedBytes + (approximate?.allocatedBytes ?? 0) }
    var count: Int { base.count + tailIndex.count }

    /// Base and tail as one index: where a rebuild of this version starts.
    var everything: ExactIndex {
        guard tailIndex.count > 0 else { return base }
        var merged = ExactIndex.Builder(dimension: dimension, version: version.version, capacity: count)
        for index in [base, tailIndex] {
            for row in 0..<index.count { merged.append(row: row, of: index) }
        }
        return merged.build()
    }

    /// Embeds with `encoder`, batch by batch, the items stored after `after` when it starts, handing
    /// each batch and its unit vectors to `body`; returns the newest id looked at, or nil when
    /// cancelled. What a build, a catch-up and a background embedding for the tail share: the slow
    /// part, which runs on any thread with an encoder of its own.
    static func embedItems(of store: ImageStore, after: UInt64, atMost: Int = .max, encoder: VersionEncoder,
                           cancellation: Cancellation? = nil, _ body: ([StoredItem], [[Float]]) -> Void) throws(StoreError) -> UInt64? {
        let end = store.nextID
        var through = after
        var left = atMost
        while through + 1 < end && left > 0 {
            if cancellation?.isCancelled == true { return nil }
            let items = try store.items(after: through, limit: min(512, left)).filter { $0.id < end }
            left -= items.count
            // Nothing stored between here and `end` (the newest were deleted): all looked at.
            guard let last = items.last else { through = end - 1; break }
            body(items, encoder.embed(items.map(\.image.pixels)))
            through = last.id
        }
        return through
    }

    /// Items embedded for the tail: rows in id order, and the newest id looked at.
    struct TailRows: Sendable {
        var ids: [UInt64] = []
        var vectors: [[Float]] = []
        var sources: [String] = []
        var through: UInt64
    }

    /// `embedItems` collected for `appendToTail`.
    static func tailRows(of store: ImageStore, after: UInt64, atMost: Int = .max, encoder: VersionEncoder,
                         cancellation: Cancellation? = nil) throws(StoreError) -> TailRows? {
        var rows = TailRows(through: after)
        guard let through = try embedItems(of: store, after: after, atMost: atMost, encoder: encoder, cancellation: cancellation, { items, vectors in
            rows.ids += items.map(\.id)
            rows.vectors += vectors
            rows.sources += items.map(\.source)
        }) else { return nil }
        rows.through = through
        return rows
    }

    /// Query queue only: appends rows embedded for the tail, skipping any it already holds (rows
    /// from a background embedding that a catch-up overtook).
    func appendToTail(_ rows: TailRows) {
        for (row, id) in rows.ids.enumerated() where id > indexedThrough {
            tail.append(id: id, vector: rows.vectors[row], source: rows.sources[row])
        }
        indexedThrough = max(indexedThrough, rows.through)
        if tail.count != tailIndex.count { tailIndex = tail.build() }
    }

    /// Query queue only: embeds the items stored since the last call (at most `atMost` of them, the
    /// oldest first) into the tail, here and now.
    func catchUp(atMost: Int = .max) throws(StoreError) {
        if let rows = try Self.tailRows(of: store, after: indexedThrough, atMost: atMost, encoder: encoder) { appendToTail(rows) }
    }

    /// The newest item embedded into base or tail.
    var embeddedThrough: UInt64 { indexedThrough }

    /// True when the tail is large enough that a rebuilt catalog should absorb it.
    var wantsRebuild: Bool { tail.count > settings.tailLimit }

    /// The stored vector of an item (knn by item).
    func vector(of id: UInt64) -> [Float]? { base.lookup(id) ?? tailIndex.lookup(id) }

    /// Up to `limit` items with id > `after` that are still stored, in id order, with their unit
    /// vectors (ids.count × dimension); whether more follow, and the last id the page looked at
    /// (the next page starts after it: a page whose rows were all deleted since is empty, not the end).
    func page(after: UInt64, limit: Int) throws(StoreError) -> (ids: [UInt64], vectors: [Float], more: Bool, through: UInt64) {
        var ids: [UInt64] = [], vectors: [Float] = []
        var more = false
        // Base and tail each hold ascending ids, and every tail id is above every base id.
        outer: for index in [base, tailIndex] {
            var row = Self.firstRow(in: index.ids, after: after)
            while row < index.count {
                if ids.count == limit { more = true; break outer }
                ids.append(index.ids[row])
                vectors += index.vectors[row * index.dimension..<(row + 1) * index.dimension]
                row += 1
            }
        }
        let through = ids.last ?? after
        let present = try store.contains(ids)
        let kept = present.indices.filter { present[$0] }
        if kept.count == ids.count { return (ids, vectors, more, through) }
        let d = dimension
        return (kept.map { ids[$0] }, kept.flatMap { vectors[$0 * d..<($0 + 1) * d] }, more, through)
    }

    private static func firstRow(in ids: [UInt64], after: UInt64) -> Int {
        var low = 0, high = ids.count
        while low < high {
            let middle = (low + high) / 2
            if ids[middle] <= after { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Everything embedded: the base, and the tail embedded since (query queue only).
    var parts: [ExactIndex] { [base, tailIndex] }

    /// The k nearest stored items, nearest first; items deleted since they were indexed are dropped.
    /// `exact` in the answer: every matching item was scored (asked for, no approximate index yet,
    /// or a filter selective enough that the approximate index scored its items instead).
    func search(_ query: [Float], k: Int, source: String?, ids: ClosedRange<UInt64>? = nil,
                exact: Bool) throws(StoreError) -> (neighbours: [Index.Neighbour], exact: Bool) {
        let (answers, answeredExactly) = try search([query], k: k, source: source, ids: ids, exact: exact)
        return (answers[0], answeredExactly)
    }

    /// Several queries at once: the approximate index answers them one by one, an exact search
    /// scores them together through sgemm (ExactIndex.search(queries:)); the tail likewise.
    func search(_ queries: [[Float]], k: Int, source: String?, ids: ClosedRange<UInt64>? = nil,
                exact: Bool) throws(StoreError) -> (neighbours: [[Index.Neighbour]], exact: Bool) {
        // Over-fetch a little so deleted items can be dropped without coming up short.
        let fetch = k + 16
        var found: [[Index.Neighbour]], answeredExactly = true
        if let approximate, !exact {
            found = queries.map { query in
                let (answer, wasExact) = approximate.searchReportingExact(query, k: fetch, source: source, ids: ids)
                answeredExactly = answeredExactly && wasExact
                return answer
            }
        } else {
            found = queries.count == 1 ? [base.search(queries[0], k: fetch, source: source, ids: ids)]
                : base.search(queries: queries, k: fetch, source: source, ids: ids)
        }
        let tail = queries.count == 1 ? [tailIndex.search(queries[0], k: fetch, source: source, ids: ids)]
            : tailIndex.search(queries: queries, k: fetch, source: source, ids: ids)
        for i in found.indices {
            found[i] += tail[i]
            found[i].sort { $0.isNearer(than: $1) }
            var seen = Set<UInt64>()
            found[i] = found[i].filter { seen.insert($0.id).inserted }
        }
        let candidates = Array(Set(found.flatMap { $0.map(\.id) }))
        let present = Set(zip(candidates, try store.contains(candidates)).compactMap { $1 ? $0 : nil })
        return (found.map { Array($0.filter { present.contains($0.id) }.prefix(k)) }, answeredExactly)
    }
}

extension ExactIndex.Builder {
    /// Appends row `row` of `index` (same dimension): its id, unit vector and source tag.
    mutating func append(row: Int, of index: ExactIndex) {
        let d = index.dimension
        append(id: index.ids[row], vector: Array(index.vectors[row * d..<(row + 1) * d]),
               source: index.sourceTags[Int(index.sourceCodes[row])])
    }
}
