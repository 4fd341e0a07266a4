// The catalog: every stored item's embedding under one model version, and that version's encoder
// for embedding queries. A catalog is used by one thread at a time (the query queue); a new version
// gets a new catalog, built in the background and swapped in whole, so an answer never mixes
// versions.
//
//   base         ExactIndex of the items present when the catalog was built (sgemm search: the
//                ground truth), plus an HNSW index of them for large catalogs
//   tail         items ingested since, embedded on demand before each query (`catchUp`), searched
//                exactly; folded into a rebuilt base when it grows past `tailLimit`
//
// Deleted items stay in the indexes until the next build; answers drop them by checking the store.
import Foundation
import GLF
import Index
import Neural
import Store

public struct CatalogSettings: Sendable {
    public var approximate = true
    /// Below this many items exact search is fast enough, and no HNSW graph is built.
    public var approximateMinItems = 20_000
    public var hnsw = HNSWParameters()
    public var tailLimit = 4096
    public init() {}
}

final class Catalog: @unchecked Sendable {
    let version: PublishedVersion
    let settings: CatalogSettings
    private let store: ImageStore
    private let embedder: Embedder
    private let shape: CanonicalShape
    private(set) var base: ExactIndex
    private var approximate: HNSWIndex?
    private var tail: ExactIndex.Builder
    private var tailIndex: ExactIndex
    /// The highest id embedded into base or tail.
    private var indexedThrough: UInt64 = 0

    /// Loads the version's encoder and embeds every stored item (the slow part: run it off the
    /// query queue).
    init(version: PublishedVersion, store: ImageStore, settings: CatalogSettings) throws {
        self.version = version
        self.settings = settings
        self.store = store
        shape = store.configuration.canonical
        embedder = try Embedder.load(modelDirectory: URL(fileURLWithPath: version.path), workers: 1, batch: 256)
        let dimension = embedder.encoderConfig.featureDimension
        var builder = ExactIndex.Builder(dimension: dimension, version: version.version)
        var after: UInt64 = 0
        while true {
            let items = try store.items(after: after, limit: 1024)
            guard let last = items.last else { break }
            for (item, vector) in zip(items, Self.embed(items.map(\.image.pixels), with: embedder, shape: shape)) {
                builder.append(id: item.id, vector: vector, source: item.source)
            }
            after = last.id
        }
        indexedThrough = after
        base = builder.build()
        tail = ExactIndex.Builder(dimension: dimension, version: version.version)
        tailIndex = tail.build()
        if settings.approximate && base.count >= settings.approximateMinItems {
            approximate = HNSWIndex(from: base, parameters: settings.hnsw)
        }
    }

    var dimension: Int { base.dimension }
    var count: Int { base.count + tailIndex.count }

    /// Unit embeddings of canonical images (each `shape.pixelBytes` bytes).
    func embed(_ images: [[UInt8]]) -> [[Float]] { Self.embed(images, with: embedder, shape: shape) }

    private static func embed(_ images: [[UInt8]], with embedder: Embedder, shape: CanonicalShape) -> [[Float]] {
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

    /// Embeds items ingested since the last call into the tail.
    func catchUp() throws(StoreError) {
        while true {
            let items = try store.items(after: indexedThrough, limit: 512)
            guard let last = items.last else { break }
            for (item, vector) in zip(items, embed(items.map(\.image.pixels))) {
                tail.append(id: item.id, vector: vector, source: item.source)
            }
            indexedThrough = last.id
        }
        if tail.count != tailIndex.count { tailIndex = tail.build() }
    }

    /// True when the tail is large enough that a rebuilt catalog should absorb it.
    var wantsRebuild: Bool { tail.count > settings.tailLimit }

    /// The stored vector of an item (knn by item).
    func vector(of id: UInt64) -> [Float]? { base.lookup(id) ?? tailIndex.lookup(id) }

    /// Up to `limit` items with id > `after` that are still stored, in id order, with their unit
    /// vectors (ids.count × dimension); and whether more follow.
    func page(after: UInt64, limit: Int) throws(StoreError) -> (ids: [UInt64], vectors: [Float], more: Bool) {
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
        let present = try store.items(ids)
        let kept = present.indices.filter { present[$0] != nil }
        if kept.count == ids.count { return (ids, vectors, more) }
        let d = dimension
        return (kept.map { ids[$0] }, kept.flatMap { vectors[$0 * d..<($0 + 1) * d] }, more)
    }

    private static func firstRow(in ids: [UInt64], after: UInt64) -> Int {
        var low = 0, high = ids.count
        while low < high {
            let middle = (low + high) / 2
            if ids[middle] <= after { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The k nearest stored items, nearest first; items deleted since they were indexed are dropped.
    func search(_ query: [Float], k: Int, source: String?, exact: Bool) throws(StoreError) -> (neighbours: [Index.Neighbour], exact: Bool) {
        // Over-fetch a little so deleted items can be dropped without coming up short.
        let fetch = k + 16
        let useApproximate = !exact && approximate != nil
        var found = useApproximate
            ? approximate!.search(query, k: fetch, source: source)
            : base.search(query, k: fetch, source: source)
        found += tailIndex.search(query, k: fetch, source: source)
        found.sort { $0.isNearer(than: $1) }
        let present = try store.items(found.map(\.id))
        let kept = zip(found, present).compactMap { $1 == nil ? nil : $0 }
        return (Array(kept.prefix(k)), !useApproximate)
    }
}
