// What the daemon answers queries with: the version embed answers under, and the catalog of every
// stored item that knn and export answer from, kept up with the store as items arrive and
// rebuilt for each new version. One owner of version → encoder → catalog → tail → fold → MinRed
// view, with its queues:
//
//   query queue    (high priority, serial) the served encoder and catalog live here, and only
//                  here: embed, knn and export run on it, and so does every swap
//   catalog queue  (utility, serial) builds: a new version's catalog, a tail folded into the
//                  base, an HNSW graph built or extended, MinRed's view handed over
//   tail queue     (utility, serial) embeds the items ingested since the catalog was built
//
// A method that must run on one of these queues checks it (`dispatchPrecondition`); what status
// reads from other threads is copied under `lock`. Knn only reads; the router calls `keepUp`
// before it, the one mutation on a query's path, named as such (export embeds a slice of the
// backlog per page itself, and says so).
import Foundation
import GLF
import Index
import Logging
import Neural
import Observability
import Protocol
import Store

final class CatalogService: @unchecked Sendable {
    private let store: ImageStore
    private let versions: ModelVersions
    private let settings: CatalogSettings
    /// Each kept version's catalog embeddings (`<version>.index`), so a restart need not re-embed.
    private let directory: URL
    private let maxReplyPayloadBytes: Int
    private let logger: Logger
    var metrics: GLFDMetrics?

    private let queryQueue = DispatchQueue(label: "glfd.query", qos: .userInitiated)
    private let catalogQueue = DispatchQueue(label: "glfd.catalog", qos: .utility)
    /// `duplicates` joins: seconds to minutes each, one at a time, beside queries.
    private let duplicatesQueue = DispatchQueue(label: "glfd.duplicates", qos: .utility)
    private let tailQueue = DispatchQueue(label: "glfd.tail", qos: .utility)
    /// Stops catalog builds when the daemon stops.
    private let builds = Cancellation()
    /// How far new items lie from the replay set (status's `drift`); checks run on the tail queue.
    let drift: DriftMonitor

    // Query queue only.
    /// The newest loaded encoder (answers embed).
    private var encoder: VersionEncoder?
    /// The newest built catalog (answers knn and export; its version may trail the encoder's while it builds).
    private var catalog: Catalog?
    /// A rebuild of the current version (to fold in its tail) is under way.
    private var tailRebuildPending = false
    /// A background embedding for the tail is under way.
    private var tailEmbedding = false
    /// The newest item MinRed's view was built with.
    private var replayViewThrough: UInt64 = 0
    /// Under `serveWithCatalog`: what to do once a version is served, by version, until its
    /// catalog is swapped in (versions a newer catalog skips are dropped then, unannounced).
    private var servedOnceBuilt: [Int: @Sendable (PublishedVersion) -> Void] = [:]

    // Catalog queue only.
    /// The newest version a rebuild for a new version has built (folds aside).
    private var newestVersionRebuilt = 0

    // Tail queue only.
    /// The encoder the tail is embedded with, loaded per version.
    private var tailEncoder: VersionEncoder?

    // Under `lock`: what other threads read.
    private let lock = NSLock()
    /// The newest version embed answers under.
    private var served: PublishedVersion?
    private var catalogStatus = StatusResult.Catalog(version: 0, items: 0, building: nil)
    /// The newest item the current catalog has embedded (status's `complete`).
    private var embeddedThrough: UInt64 = 0
    /// Catalog builds asked for and not yet finished (queued or running).
    private var queuedBuilds = 0
    /// Bytes of the served catalog, and of the one being built as far as it got.
    private var catalogBytes = 0, buildingBytes = 0
    /// The rebuild share's memory: when the last rebuild for a new version ended, and its seconds.
    private var lastRebuild: (ended: Date, seconds: Double)?
    /// The newest version whose rebuild waits for the share, and when it may start.
    private var waitingRebuild: (version: PublishedVersion, encoder: VersionEncoder?, at: Date)?

    init(store: ImageStore, versions: ModelVersions, settings: CatalogSettings, directory: URL, maxReplyPayloadBytes: Int,
         logger: Logger) throws {
        (self.store, self.versions, self.settings, self.directory) = (store, versions, settings, directory)
        (self.maxReplyPayloadBytes, self.logger) = (maxReplyPayloadBytes, logger)
        drift = DriftMonitor(store: store, settings: settings.drift)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    /// Starts serving the newest kept version (after a restart): embed answers under it at once,
    /// and knn from the newest saved catalog while the latest version's is built, if the process
    /// stopped before that was saved. Returns when embed answers.
    func resume(_ latest: PublishedVersion) {
        if !FileManager.default.fileExists(atPath: file(of: latest.version).path),
           let saved = versions.all.last(where: { FileManager.default.fileExists(atPath: file(of: $0.version).path) }) {
            rebuild(for: saved, evenIfSuperseded: true)
        }
        serve(latest)
        waitUntilServing()
    }

    /// Returns once every version asked to be served is (or failed to load): embed answers under it.
    func waitUntilServing() { queryQueue.sync {} }

    /// Stops building and lets every queued piece of work finish; afterwards the store may close.
    func stop() {
        builds.cancel()
        // A build gives up at its next batch; none may read the store once it is closed.
        catalogQueue.sync {}
        tailQueue.sync {}
        queryQueue.sync {}
    }

    // MARK: Versions

    /// Embed answers under `version` as soon as its encoder is loaded (milliseconds); knn once its
    /// catalog is built (in the background). `then` runs once embed answers under it, on the
    /// query queue: `model`, `status` and the announcement name the version only from then on.
    func serve(_ version: PublishedVersion, then: (@Sendable (PublishedVersion) -> Void)? = nil) {
        do {
            let loaded = try VersionEncoder(version: version, shape: store.configuration.canonical, batch: VersionEncoder.queryBatch)
            rebuild(for: version, encoder: loaded)
            queryQueue.async { [self] in
                if settings.serveWithCatalog {
                    servedOnceBuilt[version.version] = then ?? { _ in }
                } else {
                    adopt(loaded, then: then)
                }
            }
        } catch {
            logger.error("could not load the model version; it is not served", metadata: ["version": "\(version.version)", "error": "\(error)"])
        }
    }

    /// Query queue only: embed answers under `loaded` from now on, unless a newer version does.
    private func adopt(_ loaded: VersionEncoder, then: (@Sendable (PublishedVersion) -> Void)?) {
        dispatchPrecondition(condition: .onQueue(queryQueue))
        let version = loaded.version
        if (encoder?.version.version ?? 0) < version.version { encoder = loaded }
        lock.withLock { if (served?.version ?? 0) < version.version { served = version } }
        metrics?.setModelVersion(version.version, step: version.step, publishedAt: version.publishedAt)
        then?(version)
    }

    /// The version embed answers under, if any.
    var servedVersion: PublishedVersion? { lock.withLock { served } }

    /// What status reports of the catalog; `newestItem` is the store's.
    func status(newestItem: UInt64) -> StatusResult.Catalog {
        var (status, through, waiting) = lock.withLock { (catalogStatus, embeddedThrough, waitingRebuild) }
        status.complete = status.version > 0 && status.building == nil && through >= newestItem
        status.nextBuildAt = waiting?.at.timeIntervalSince1970
        return status
    }

    // MARK: Queries (each runs on the query queue and answers there)

    /// Runs `answer` on the query queue, where the served encoder and catalog live.
    func query(_ answer: @escaping @Sendable () -> Void) { queryQueue.async(execute: answer) }

    /// Query queue only.
    func embed(_ images: [ImagePayload], id: RequestID?) -> Reply {
        dispatchPrecondition(condition: .onQueue(queryQueue))
        guard let encoder else { return .failure(id: id, ProtocolError(.notReady, "no model version is loaded yet")) }
        switch ImagePayloadDecoding.items(images, canonical: store.configuration.canonical) {
        case .failure(let error):
            return .failure(id: id, error)
        case .success(let items):
            let vectors = encoder.embed(items.map(\.image.pixels))
            return .success(id: id, EmbedResult(version: encoder.version.version, dim: encoder.dimension),
                            payloads: vectors.map { VectorFrame.encode($0) })
        }
    }

    /// Query queue only: the nearest neighbours in the current catalog, as it is (call `keepUp`
    /// first for the items stored since). Several queries (by `images` or `vectors`) are answered
    /// one by one under the same version, in one reply.
    func knn(_ query: KNNQuery, id: RequestID?) -> Reply {
        dispatchPrecondition(condition: .onQueue(queryQueue))
        guard let catalog else { return .failure(id: id, ProtocolError(.notReady, "the catalog is not built yet")) }
        do {
            /// Knn by item: the item itself comes first, even before an exact duplicate that the
            /// search ranks first (equal scores go to the lower id).
            var itself: Index.Neighbour?
            let vectors: [[Float]]
            switch query.target {
            case .image(let image):
                vectors = try embedded([image], by: catalog)
            case .images(let images):
                vectors = try embedded(images, by: catalog)
            case .item(let item):
                guard let stored = try store.item(item) else {
                    return .failure(id: id, ProtocolError(.notFound, "no stored item \(item)"))
                }
                // Embedded already, or of the backlog (embedded here, as it would be if indexed).
                vectors = [catalog.vector(of: item) ?? catalog.encoder.embed([stored.image.pixels])[0]]
                let time = stored.ingestedAt.timeIntervalSince1970
                if (query.source == nil || query.source == stored.source) && time > (query.ingestedAfter ?? -.infinity)
                    && time < (query.ingestedBefore ?? .infinity) {
                    itself = Index.Neighbour(id: item, score: 1)
                }
            case .vector(let given):
                vectors = [given]
            case .vectors(let given):
                vectors = given
            }
            if let wrong = vectors.first(where: { $0.count != catalog.dimension }) {
                return .failure(id: id, ProtocolError(.badHeader, "the vector has dim \(wrong.count); version \(catalog.version.version) embeds in \(catalog.dimension)"))
            }
            // A time filter is a range of ids: ingest times grow with ids.
            var ids: ClosedRange<UInt64>? = nil
            var nothingMatches = false
            if query.ingestedAfter != nil || query.ingestedBefore != nil {
                ids = try store.ids(ingestedAfter: query.ingestedAfter, before: query.ingestedBefore)
                nothingMatches = ids == nil
            }
            let (found, allExact) = nothingMatches ? (vectors.map { _ in [] }, true)
                : try catalog.search(vectors, k: query.k, source: query.source, ids: ids, exact: query.exact)
            let answers: [[Protocol.Neighbour]] = found.map { neighbours in
                var neighbours = neighbours
                if let itself { neighbours = Array(([itself] + neighbours.filter { $0.id != itself.id }).prefix(query.k)) }
                // Scores are cosines of unit vectors: rounding can put a duplicate's at 1.0000001,
                // above the item itself (PROTOCOL.md: scores in [-1, 1], nearest first).
                return neighbours.map { Protocol.Neighbour(id: $0.id, score: min(1, max(-1, $0.score))) }
            }
            let (version, catalogItems, storeItems) = (catalog.version.version, catalog.count, store.statistics.items)
            guard query.target.isBatch else {
                return .success(id: id, KNNResult(version: version, exact: allExact, neighbours: answers[0],
                                                  catalogItems: catalogItems, storeItems: storeItems))
            }
            return .success(id: id, KNNBatchResult(version: version, exact: allExact, results: answers.map(KNNBatchResult.Answer.init),
                                                   catalogItems: catalogItems, storeItems: storeItems))
        } catch let error as ProtocolError {
            return .failure(id: id, error)
        } catch {
            return .failure(id: id, GLFDaemon.protocolError(error))
        }
    }

    /// The images decoded and embedded under the catalog's version (a bad image fails them all,
    /// naming its index).
    private func embedded(_ images: [ImagePayload], by catalog: Catalog) throws -> [[Float]] {
        switch ImagePayloadDecoding.items(images, canonical: store.configuration.canonical) {
        case .failure(let error): throw error
        case .success(let items): return catalog.encoder.embed(items.map(\.image.pixels))
        }
    }

    /// Backlog items an export embeds per page at most (about 0.2 s of one core at 32×32).
    static let exportSlice = 512

    /// Query queue only: a page of the catalog (call `keepUp` first). A page that reaches the end
    /// of what is embedded embeds the next slice of the backlog into the catalog.
    func exportPage(after: UInt64, limit: Int, id: RequestID?) -> Reply {
        dispatchPrecondition(condition: .onQueue(queryQueue))
        guard let catalog else { return .failure(id: id, ProtocolError(.notReady, "the catalog is not built yet")) }
        do {
            // At most 4 MiB of vectors per page (4,096 rows at dim 256): pages may be short.
            let limit = min(limit, max(1, maxReplyPayloadBytes / (catalog.dimension * 4)))
            var page = try catalog.page(after: after, limit: limit)
            // A page that reaches the end of what is embedded, with items stored beyond it, embeds
            // the next slice of them here: bounded, so that one export does not hold every query
            // for as long as the whole backlog takes (12–24 s measured). The page may then be
            // short, with `next_after` where the embedding stopped.
            let newest = store.nextID - 1
            if !page.more && catalog.embeddedThrough < newest {
                try catalog.catchUp(atMost: Self.exportSlice)
                noteCatalogSize()
                page = try catalog.page(after: after, limit: limit)
            }
            let more = page.more || catalog.embeddedThrough < newest
            let nextAfter = page.more ? page.through : (more ? max(after, catalog.embeddedThrough) : nil)
            return .success(id: id, ExportResult(version: catalog.version.version, dim: catalog.dimension, ids: page.ids,
                                                 nextAfter: nextAfter),
                            payloads: [VectorFrame.encode(page.vectors)])
        } catch {
            return .failure(id: id, GLFDaemon.protocolError(error))
        }
    }

    // MARK: Keeping up with the store

    /// Query queue only: keeps `catalog` up with the store. Each query embeds up to
    /// `catchUpLimit` new items itself, oldest first, so that its answer includes them (and a
    /// catalog built on an empty store answers from the first items of a burst at once, never
    /// empty); more would hold every query for as long as one thread takes to embed them (41 s
    /// for 10,000 items with training on), so the rest is embedded in the background, into the
    /// tail (`embedTailInBackground`) or, past `tailLimit`, by a rebuild that folds them into the
    /// base, and answers leave them out until then: their coverage (`catalog_items` below
    /// `store_items`) says so. Export pages through everything, embedding the backlog a slice at a
    /// time as its pages reach it (`exportPage`).
    ///
    /// A failure (the store unreadable) is the answer to the query that asked.
    /// Near-duplicate groups of the catalog as it is now (every stored item embedded under the
    /// served version): the parts are taken on the query queue, the join runs on its own queue
    /// (N²·D: 31 s for 10⁵ items on two cores, measured beside a training run), so queries go on.
    func duplicates(_ query: DuplicatesQuery, id: RequestID?, respond: @escaping @Sendable (Reply) -> Void) {
        queryQueue.async { [self] in
            if let error = keepUp() { return respond(.failure(id: id, error)) }
            guard let catalog else { return respond(.failure(id: id, ProtocolError(.notReady, "the catalog is not built yet"))) }
            let (parts, version) = (catalog.parts, catalog.encoder.version.version)
            // A time window is a range of ids (ingest times grow with ids); with nothing stored in
            // it, 0...0 (no item has id 0) leaves no item.
            let ids: ClosedRange<UInt64>?
            do {
                ids = query.ingestedAfter == nil && query.ingestedBefore == nil ? nil
                    : try store.ids(ingestedAfter: query.ingestedAfter, before: query.ingestedBefore) ?? 0...0
            } catch {
                return respond(.failure(id: id, GLFDaemon.protocolError(error)))
            }
            duplicatesQueue.async { [store, settings] in
                let lists = ExactIndex.selfJoin(parts, k: 10, source: query.source, ids: ids, workers: settings.buildThreads)
                let spacing = lists.spacing(rank: 10)
                // Identical items are duplicates even when copies make the spacing 0 (a catalog of
                // one scene): at least 10⁻⁵, above what float rounding leaves of identical vectors.
                let maxDistance = max(query.within * spacing, 1e-5)
                do {
                    // Items deleted since they were embedded are in no group.
                    let present = Set(zip(lists.ids, try store.contains(lists.ids)).compactMap { $1 ? $0 : nil })
                    let groups = lists.duplicateGroups(maxDistance: maxDistance, keep: present.contains)
                    respond(.success(id: id, DuplicatesResult(
                        version: version, items: present.count, storeItems: store.statistics.items, spacing: spacing, within: query.within, maxDistance: maxDistance,
                        groupsFound: groups.count,
                        groups: groups.prefix(query.maxGroups).map { DuplicatesResult.Group(ids: $0.ids, weakestLink: $0.weakestLink) })))
                } catch {
                    respond(.failure(id: id, GLFDaemon.protocolError(error)))
                }
            }
        }
    }

    func keepUp() -> ProtocolError? {
        dispatchPrecondition(condition: .onQueue(queryQueue))
        guard let catalog else { return nil }
        do {
            try keepUp(catalog)
            return nil
        } catch {
            return GLFDaemon.protocolError(error)
        }
    }

    private func keepUp(_ catalog: Catalog) throws {
        let newest = store.nextID - 1
        var backlog: Int { newest > catalog.embeddedThrough ? Int(newest - catalog.embeddedThrough) : 0 }
        if backlog > 0 && !tailEmbedding {
            try catalog.catchUp(atMost: settings.catchUpLimit)
            noteCatalogSize()
        }
        if backlog > 0 && backlog <= settings.tailLimit {
            embedTailInBackground(catalog)
        }
        if (catalog.wantsRebuild || backlog > settings.tailLimit) && !tailRebuildPending {
            foldTail(of: catalog)
        }
    }

    /// Query queue only: embeds the catalog's new items on the tail queue and appends them to its
    /// tail on this queue; the tail may then be folded in.
    private func embedTailInBackground(_ catalog: Catalog) {
        dispatchPrecondition(condition: .onQueue(queryQueue))
        guard !tailEmbedding else { return }
        tailEmbedding = true
        let after = catalog.embeddedThrough
        tailQueue.async { [self] in
            var embedded: Catalog.TailRows?
            do {
                if tailEncoder?.version.version != catalog.version.version {
                    tailEncoder = try VersionEncoder(version: catalog.version, shape: store.configuration.canonical,
                                                     batch: VersionEncoder.queryBatch)
                }
                embedded = try Catalog.tailRows(of: store, after: after, encoder: tailEncoder!, cancellation: builds)
            } catch {
                logger.error("could not embed new items for the catalog", metadata: ["error": "\(error)"])
            }
            queryQueue.async { [self, rows = embedded] in
                tailEmbedding = false
                guard let rows else { return }
                catalog.appendToTail(rows)
                guard catalog === self.catalog else { return }
                noteCatalogSize()
                if catalog.wantsRebuild && !tailRebuildPending { foldTail(of: catalog) }
            }
        }
    }

    /// Query queue only: rebuilds the current catalog with its tail folded into the base; its HNSW
    /// graph, if it has one, is extended rather than built again.
    private func foldTail(of catalog: Catalog) {
        dispatchPrecondition(condition: .onQueue(queryQueue))
        tailRebuildPending = true
        rebuild(for: catalog.version, encoder: catalog.encoder, start: catalog.everything, graph: catalog.graph, folding: true)
    }

    /// Items were stored: MinRed sees only the members embedded when its view was built, and
    /// never evicts the others; once a sixteenth of the replay capacity (at most `tailLimit`)
    /// arrived unseen, the catalog folds them in (embedding just them) and hands the replay set
    /// over again. One refresh at a time; each ends by checking whether another is due, so under
    /// steady ingest they follow one another, and when ingest stops the last arrivals are seen too.
    func itemsStored() {
        checkDriftIfDue()
        guard store.configuration.replay.policy.seesEmbeddings else { return }
        queryQueue.async { [self] in
            guard let catalog, !tailRebuildPending, !builds.isCancelled else { return }
            let s = store.statistics
            let due = max(1, min(settings.tailLimit, store.configuration.replay.capacity / 16))
            guard s.replayMembers - s.replayEmbedded >= due, s.nextID - 1 > replayViewThrough else { return }
            foldTail(of: catalog)
        }
    }

    /// Any thread: once a second at most while items arrive, embeds a sample of the newest on the
    /// tail queue and measures their distance to the replay set (DriftMonitor.swift). Items that
    /// arrive within the second are checked when it has passed, so the last of a burst are seen.
    private func checkDriftIfDue() {
        guard !builds.isCancelled else { return }
        switch drift.claimCheck(newestItem: store.nextID - 1) {
        case .nothing:
            return
        case .after(let seconds):
            tailQueue.asyncAfter(deadline: .now() + seconds) { [self] in checkDriftIfDue() }
        case .now(let version):
            tailQueue.async { [self] in
                guard !builds.isCancelled else { return }
                do {
                    if tailEncoder?.version.version != version.version {
                        tailEncoder = try VersionEncoder(version: version, shape: store.configuration.canonical,
                                                         batch: VersionEncoder.queryBatch)
                    }
                    try drift.check(version: version.version, embed: tailEncoder!.embed)
                } catch {
                    logger.warning("could not measure drift", metadata: ["error": "\(error)"])
                }
                checkDriftIfDue()
            }
        }
    }

    // MARK: Builds

    /// Builds `version`'s catalog in the background from `start` (this version's rows already
    /// embedded), or else from its saved file, and swaps it in on the query queue. `graph` is the
    /// HNSW graph of `start`'s base, if any, to extend. A build whose version was superseded while
    /// it waited builds the newest version instead (nothing, if a rebuild reached that one), unless
    /// `evenIfSuperseded` (a saved catalog to answer from meanwhile).
    /// A fold (`folding`: the served catalog with its backlog folded in) is what the answers
    /// depend on until a newer version's catalog takes over, so it runs unless one already has:
    /// a burst into a fresh daemon is in the catalog as soon as one build can embed it.
    /// `encoder` is the version's encoder already loaded for the query queue (embed's), which the
    /// catalog then shares: the build only reads its version and dimension.
    private func rebuild(for version: PublishedVersion, encoder: VersionEncoder? = nil, start: ExactIndex? = nil,
                         graph previousGraph: HNSWIndex? = nil, evenIfSuperseded: Bool = false, folding: Bool = false) {
        // `building` names a build from the moment it is asked for, not from when it starts: a
        // client that waits for `building` to be null must not see the lull between the two.
        lock.withLock {
            queuedBuilds += 1
            catalogStatus.building = version.version
        }
        catalogQueue.async { [self] in
            defer {
                lock.withLock {
                    queuedBuilds -= 1
                    if queuedBuilds == 0 { catalogStatus.building = nil }
                }
            }
            // A rebuild for a version builds the newest version published by the time it starts,
            // and one whose version a rebuild has reached already does nothing. (It used to build
            // the version it was asked for unless a newer one had come meanwhile: with versions
            // published faster than the queue drained, folds ahead of each rebuild, every rebuild
            // found a newer version and was skipped, and knn stayed on one version for good:
            // MemorySoakTests, under load, saw version 9 served while 354 were published.)
            let newer = folding || evenIfSuperseded ? nil : versions.latest.flatMap { $0.version > version.version ? $0 : nil }
            let (version, encoder) = newer.map { ($0, nil) } ?? (version, encoder)
            let wanted = folding ? lock.withLock { catalogStatus.version } <= version.version
                                 : evenIfSuperseded || newestVersionRebuilt < version.version
            guard !builds.isCancelled, wanted else {
                if folding { queryQueue.async { [self] in tailRebuildPending = false } }
                return
            }
            // A new version's rebuild waits its turn under the rebuild share (folds and a first
            // catalog do not: answers depend on them).
            let isVersionRebuild = !folding && !evenIfSuperseded
            if isVersionRebuild, let at = rebuildMayStart(), at > Date() {
                waitForRebuildShare(version, encoder: encoder, until: at)
                return
            }
            lock.withLock { catalogStatus.building = version.version }
            // Its files stay while it is built, however many versions come meanwhile, and until
            // the query queue has served it (after the swap below, on the same queue).
            versions.pin(version.version, for: .building)
            defer { queryQueue.async { [versions] in versions.unpin(version.version, for: .building) } }
            let started = Date()
            var completed = false
            defer {
                if isVersionRebuild && completed {
                    lock.withLock { lastRebuild = (ended: Date(), seconds: Date().timeIntervalSince(started)) }
                }
            }
            let shape = store.configuration.canonical
            let built: Catalog
            // The saved file holds this version's rows unless the build starts elsewhere.
            var savedFileIsCurrent = false
            do {
                let queryEncoder = try encoder ?? VersionEncoder(version: version, shape: shape, batch: VersionEncoder.queryBatch)
                let saved = start == nil ? savedIndex(of: version, dimension: queryEncoder.dimension) : nil
                savedFileIsCurrent = saved != nil
                let builder = try VersionEncoder(version: version, shape: shape, threads: settings.buildThreads)
                defer { lock.withLock { buildingBytes = 0 } }
                guard let catalog = try Catalog(encoder: queryEncoder, store: store, settings: settings, start: start ?? saved,
                                                builder: builder, cancellation: builds,
                                                progress: { bytes in lock.withLock { buildingBytes = bytes } }) else {
                    logger.info("catalog build cancelled", metadata: ["version": "\(version.version)"])
                    return
                }
                built = catalog
            } catch {
                logger.error("could not build the catalog", metadata: ["version": "\(version.version)", "error": "\(error)"])
                queryQueue.async { [self] in tailRebuildPending = false }
                return
            }
            completed = true
            if isVersionRebuild { newestVersionRebuilt = version.version }
            let seconds = Date().timeIntervalSince(started)
            metrics?.catalogBuilt(seconds: seconds, items: built.count)
            logger.info("catalog ready", metadata: ["version": "\(version.version)", "items": "\(built.count)",
                                                    "changed": "\(built.rowsChanged)",
                                                    "seconds": "\(String(format: "%.1f", seconds))"])
            if built.rowsChanged > 0 || !savedFileIsCurrent { save(built.base) }
            queryQueue.async { [self] in
                swapIn(built)
                // The catalog it replaced is freed now; trimming takes a moment, off the query queue.
                catalogQueue.async { [self] in returnFreeHeapAfterBuild() }
            }
            if store.configuration.replay.policy.seesEmbeddings { showReplay(built) }
            // knn answers (exactly) from here; approximate search joins once its graph is built.
            guard built.wantsApproximate, !builds.isCancelled else { return }
            let graphStarted = Date()
            let extended = previousGraph.flatMap { graph in
                built.canExtend(graph) ? start.flatMap { built.extendApproximate(graph, from: $0, cancellation: builds) } : nil
            }
            guard let graph = extended ?? built.buildApproximate(cancellation: builds) else { return }
            logger.info("approximate index ready", metadata: ["version": "\(version.version)", "items": "\(built.base.count)",
                                                              "extended": "\(extended != nil)",
                                                              "seconds": "\(String(format: "%.1f", Date().timeIntervalSince(graphStarted)))"])
            queryQueue.async { [self] in
                built.attach(graph)
                noteCatalogSize()
            }
        }
    }

    /// When a rebuild for a new version may start under `rebuildShare`: t × (1/share − 1) seconds
    /// after the last one (of t seconds, its HNSW graph included) ended; nil before the first.
    private func rebuildMayStart() -> Date? {
        guard let last = lock.withLock({ lastRebuild }), settings.rebuildShare < 1 else { return nil }
        return last.ended.addingTimeInterval(last.seconds * (1 / settings.rebuildShare - 1))
    }

    /// Keeps `version` as the one to rebuild at `until` (a newer version waiting replaces it: the
    /// ones between are skipped), and arms the one timer that starts it.
    private func waitForRebuildShare(_ version: PublishedVersion, encoder: VersionEncoder?, until: Date) {
        let arm = lock.withLock { () -> Bool in
            let armed = waitingRebuild != nil
            if (waitingRebuild?.version.version ?? 0) < version.version { waitingRebuild = (version, encoder, until) }
            return !armed
        }
        guard arm else { return }
        logger.info("catalog rebuild waits for index.rebuild_share", metadata: [
            "version": "\(version.version)", "seconds": "\(String(format: "%.1f", until.timeIntervalSinceNow))"])
        catalogQueue.asyncAfter(deadline: .now() + max(0, until.timeIntervalSinceNow)) { [self] in
            let waiting = lock.withLock { () -> (version: PublishedVersion, encoder: VersionEncoder?, at: Date)? in
                defer { waitingRebuild = nil }
                return waitingRebuild
            }
            guard let waiting, !builds.isCancelled else { return }
            rebuild(for: waiting.version, encoder: waiting.encoder)
        }
    }

    /// Query queue only: a built catalog takes over. Versions only move forward, even if builds
    /// finish out of order; a rebuild of the same version (folding in its tail) replaces it unless
    /// it is older than the current base (it then reaches less far). Not by its number of rows:
    /// under retention or deletes a fold holds fewer rows than the catalog it replaces, whose
    /// removed rows count until then, and was thrown away. Rows the current tail embedded beyond
    /// the fold's end are embedded again, into the new tail, as any new item is.
    private func swapIn(_ built: Catalog) {
        dispatchPrecondition(condition: .onQueue(queryQueue))
        let current = catalog?.version.version ?? 0
        if current < built.version.version || (current == built.version.version && built.baseThrough >= catalog!.baseThrough) {
            if current < built.version.version {
                let lag = Date().timeIntervalSince1970 - built.version.publishedAt
                metrics?.catalogServed(lagSeconds: lag)
                logger.info("knn answers from the new version", metadata: [
                    "version": "\(built.version.version)", "seconds_since_published": "\(String(format: "%.1f", lag))"])
            }
            catalog = built
            versions.pin(built.version.version, for: .served)
            // Only the rows go to the tail queue, not the catalog: a catalog (its encoder, its graph)
            // held by queued work would outlive its replacement.
            let (base, version, through) = (built.base, built.version, built.baseThrough)
            tailQueue.async { [self] in
                drift.setReference(version, base: base, through: through)
                checkDriftIfDue()
            }
            removeSavedCatalogsOfVersionsGone()
            noteCatalogSize()
            // After the catalog's status: whoever reads the served version and then the catalog's
            // never sees the first ahead of the second.
            if settings.serveWithCatalog, (encoder?.version.version ?? 0) < built.version.version {
                let then = servedOnceBuilt[built.version.version]
                servedOnceBuilt = servedOnceBuilt.filter { $0.key > built.version.version }
                adopt(built.encoder, then: then)
            }
        }
        if built.version.version >= current { tailRebuildPending = false }
    }

    /// Catalog queue: MinRed chooses what to evict by these embeddings from now on (seconds for a
    /// large replay set, which ingest does not wait for).
    private func showReplay(_ built: Catalog) {
        dispatchPrecondition(condition: .onQueue(catalogQueue))
        let started = Date()
        let seen = store.setReplayEmbeddings(built.base.ids, built.base.vectors, dimension: built.dimension,
                                             cancelled: { [builds] in builds.isCancelled })
        guard !builds.isCancelled else { return }
        logger.info("replay set seen through the catalog", metadata: [
            "version": "\(built.version.version)", "members": "\(seen)",
            "seconds": "\(String(format: "%.1f", Date().timeIntervalSince(started)))"])
        queryQueue.async { [self] in replayViewThrough = built.base.ids.last ?? 0 }
        itemsStored()
    }

    /// A build frees hundreds of MiB at once (the builder's activation buffers, the catalog it
    /// replaced), which glibc keeps for reuse in whichever of its per-thread arenas they came
    /// from: in the 30-minute soak the resident set between rebuilds crept from 2.9 to 3.1 GB
    /// while the heap in use stayed at 2.35 GB (README, "Memory"). Handing the free pages back to the kernel after each build keeps it down.
    private func returnFreeHeapAfterBuild() {
        let before = ProcessMemory.current().residentBytes
        guard ProcessMemory.returnFreeHeap() else { return }
        logger.debug("free heap returned to the kernel", metadata: [
            "resident_mib_before": "\(before >> 20)", "resident_mib_after": "\(ProcessMemory.current().residentBytes >> 20)"])
    }

    /// Query queue only: status reports the current catalog's version and size.
    private func noteCatalogSize() {
        dispatchPrecondition(condition: .onQueue(queryQueue))
        guard let catalog else { return }
        let bytes = catalog.allocatedBytes
        lock.withLock {
            catalogStatus.version = catalog.version.version
            catalogStatus.items = catalog.count
            embeddedThrough = catalog.embeddedThrough
            catalogBytes = bytes
        }
    }

    /// Bytes of the served catalog, and of the one being built (0 when none is).
    var memory: (served: Int, building: Int) { lock.withLock { (catalogBytes, buildingBytes) } }

    // MARK: Saved catalogs

    private func file(of version: Int) -> URL {
        directory.appendingPathComponent(String(format: "%06d.index", version))
    }

    /// The saved catalog of `version`, if there is a sound one.
    private func savedIndex(of version: PublishedVersion, dimension: Int) -> ExactIndex? {
        let file = file(of: version.version)
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        do {
            let index = try ExactIndex(contentsOf: file)
            guard index.version == version.version, index.dimension == dimension else {
                logger.warning("ignoring a saved catalog of another shape", metadata: ["file": "\(file.path)"])
                return nil
            }
            return index
        } catch {
            logger.warning("ignoring a damaged saved catalog; re-embedding", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Saves a version's base (what a restart answers from until a newer catalog is built).
    private func save(_ index: ExactIndex) {
        do {
            try index.write(to: file(of: index.version))
        } catch {
            logger.error("could not save the catalog; a restart will re-embed it", metadata: ["error": "\(error)"])
        }
    }

    /// Removes the saved catalogs of versions no longer kept, once a newer catalog took over (and
    /// its version was pinned): before, the one served may be of a version already superseded.
    private func removeSavedCatalogsOfVersionsGone() {
        let kept = Set(versions.all.map { file(of: $0.version).lastPathComponent })
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for file in files where file.hasSuffix(".index") && !kept.contains(file) {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(file))
        }
    }
}
