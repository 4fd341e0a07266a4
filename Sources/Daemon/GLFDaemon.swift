// glfd: the parts wired together.
//
//   RequestServer ──(ingest)──► decode on the ingest queue ──► ImageStore (group commit) ──► reply
//                 ──(embed, knn)──► the query queue: the current Catalog (one model version)
//                 ──(get, delete, status, model, last_announcement)──► answered from the store
//   ContinuousTrainer ──publish──► ModelVersions ──► new Catalog built in the background, swapped
//                                                    in on the query queue; announcement on PUB
//
// Queries come first: they run on a high-priority serial queue while the trainer's thread runs at
// nice 10, so on 2 cores the trainer takes what the queries leave.
import Foundation
import GLF
import Imaging
import Index
import Logging
import Neural
import Observability
import Protocol
import Store
import ZeroMQ

public struct DaemonSettings: Sendable {
    public var stateDirectory: URL
    public var store: StoreConfiguration
    public var server = ServerSettings()
    public var training = TrainingConfig()
    public var trainingEnabled = true
    public var trainer = ContinuousTrainer.Settings()
    public var keepVersions = 5
    public var catalog = CatalogSettings()

    /// glfd's defaults (its configuration's key table reads them) on `stateDirectory`.
    public init(stateDirectory: URL) {
        self.stateDirectory = stateDirectory
        store = StoreConfiguration(directory: stateDirectory.appendingPathComponent(Self.storeFolder).path)
        modelsDirectory = stateDirectory.appendingPathComponent(Self.modelsFolder)
    }

    /// Where the store and the published versions live by default, inside the state directory.
    public static let storeFolder = "store"
    public static let modelsFolder = "models"

    public var modelsDirectory: URL
    var snapshotDirectory: URL { stateDirectory.appendingPathComponent("training") }
    /// Each kept version's catalog embeddings (`<version>.index`), so a restart need not re-embed.
    var catalogDirectory: URL { stateDirectory.appendingPathComponent("catalog") }
}

public final class GLFDaemon: RequestHandling, @unchecked Sendable {
    public let settings: DaemonSettings
    public let store: ImageStore
    public let versions: ModelVersions
    public private(set) var trainer: ContinuousTrainer!
    public private(set) var server: RequestServer!
    /// systemd's notification socket, when run by systemd: readiness, status, watchdog.
    public var notifier: SystemdNotifier?
    /// Counters, gauges and latency histograms for Prometheus (nil: not collected).
    public var metrics: GLFDMetrics?
    private let logger = Logger(label: "glfd")
    private let started = Date()

    private let ingestQueue = DispatchQueue(label: "glfd.ingest", qos: .utility, attributes: .concurrent)
    private let queryQueue = DispatchQueue(label: "glfd.query", qos: .userInitiated)
    private let catalogQueue = DispatchQueue(label: "glfd.catalog", qos: .utility)
    /// Embeds new items for the current catalog's tail, off the query queue.
    private let tailQueue = DispatchQueue(label: "glfd.tail", qos: .utility)
    /// `get`: reads of up to 10,000 items (and their pixels) off the request loop, one at a time.
    private let lookupQueue = DispatchQueue(label: "glfd.lookup", qos: .userInitiated)
    /// Touched only on the query queue: the newest loaded encoder (answers embed), and the newest
    /// built catalog (answers knn and export; its version may trail the encoder's while it builds).
    private var encoder: VersionEncoder?
    private var catalog: Catalog?
    /// Stops catalog builds when the daemon stops.
    private let catalogBuilds = Cancellation()
    private let lock = NSLock()
    private var lastAnnouncement: Announcement?
    /// Under `lock`: the newest version embed answers under. `model` and `status` report this one,
    /// not the newest on disk, so a client never sees a version that embed does not answer under.
    private var servedModel: PublishedVersion?
    /// Under `lock`: what status reports of the catalog.
    private var catalogStatus = StatusResult.Catalog(version: 0, items: 0, building: nil)
    /// Under `lock`: the newest item the current catalog has embedded (status's `complete`).
    private var catalogEmbeddedThrough: UInt64 = 0
    /// Under `lock`: catalog builds asked for and not yet finished (queued or running).
    private var queuedBuilds = 0
    private var shuttingDown = false

    /// Opens the store and the model versions and binds the sockets; `start()` begins serving.
    public init(settings: DaemonSettings) throws {
        self.settings = settings
        try FileManager.default.createDirectory(at: settings.stateDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        store = try ImageStore(settings.store)
        versions = try ModelVersions(directory: settings.modelsDirectory, keep: settings.keepVersions)
        try FileManager.default.createDirectory(at: settings.catalogDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        if let latest = versions.latest { lastAnnouncement = Self.announcement(latest) }
        trainer = try ContinuousTrainer(store: store, versions: versions, config: settings.training, settings: settings.trainer,
                                        snapshotDirectory: settings.snapshotDirectory) { [weak self] version in
            self?.published(version)
        }
        if let step = trainer.resumedStep {
            logger.info("training resumes", metadata: ["step": "\(step)", "changed": "\(trainer.resumedChanges.count)"])
        }
        for change in trainer.resumedChanges {
            logger.notice("a changed setting applies to the resumed run", metadata: [
                "setting": "\(change.field.settingKey)", "saved": "\(change.saved)", "now": "\(change.wanted)"])
        }
        for change in trainer.settingsChanged {
            logger.notice("a changed setting applies from now", metadata: [
                "setting": "\(change.key)", "before": "\(change.before)", "now": "\(change.now)"])
        }
        server = try RequestServer(settings: settings.server, handler: self)
    }

    public func start() {
        if let notifier {
            server.heartbeat = { notifier.beat("server") }
            trainer.heartbeat = { notifier.beat("trainer") }
        }
        // A version is served before the first request is read: `model` and `embed` agree from the start.
        if let latest = versions.latest {
            // Knn answers from the newest saved catalog while the latest version's is built, if
            // the process stopped before that was saved.
            if !FileManager.default.fileExists(atPath: catalogFile(latest.version).path),
               let saved = versions.all.last(where: { FileManager.default.fileExists(atPath: catalogFile($0.version).path) }) {
                rebuildCatalog(for: saved, evenIfSuperseded: true)
            }
            serve(latest, announcing: false)
        } else {
            // With or without training, queries have a model from the start.
            do {
                try trainer.publishInitialVersion()
            } catch {
                logger.error("could not publish the initial model version", metadata: ["error": "\(error)"])
            }
        }
        queryQueue.sync {}
        server.start()
        if settings.trainingEnabled { trainer.start() }
    }

    /// Graceful stop: refuse new work, finish the trainer's step (snapshot saved), let queued
    /// ingests commit and their replies go out, then close the store.
    public func stop() {
        lock.withLock { shuttingDown = true }
        catalogBuilds.cancel()
        trainer.stop()
        notifier?.retire("trainer")
        // A build gives up at its next batch; none may read the store once it is closed.
        catalogQueue.sync {}
        tailQueue.sync {}
        ingestQueue.sync(flags: .barrier) {}
        queryQueue.sync {}
        lookupQueue.sync {}
        // Give acknowledgements of commits that just finished a moment to be handed back.
        Thread.sleep(forTimeInterval: 0.05)
        server.stop()
        notifier?.retire("server")
        store.close()
    }

    /// Refreshes the gauges that follow state (store, training, model) from `status()`.
    public func updateGauges() {
        guard let metrics else { return }
        let s = status(), storeStatistics = store.statistics
        metrics.setStore(items: s.store.items, bytes: s.store.bytes, mapSize: s.store.mapSize, mapUsed: s.store.mapUsedBytes,
                         replayMembers: storeStatistics.replayMembers)
        metrics.setTraining(step: s.training.step, imagesPerSecond: s.training.imagesPerSecond, loss: s.training.loss,
                            collapse: s.training.collapse, rolledBack: s.training.rolledBack, idle: trainer.currentStatus.idle,
                            gradientShares: s.training.gradientShare)
        metrics.setModelVersion(s.model.version, step: s.model.step, publishedAt: s.model.publishedAt)
    }

    /// One line for systemd's STATUS= (and logs): items, training step, model version.
    public var statusLine: String {
        let s = status()
        return "\(s.store.items) items, step \(s.training.step), model version \(s.model.version)"
    }

    private static func announcement(_ version: PublishedVersion) -> Announcement {
        Announcement(version: version.version, path: version.path, step: version.step, publishedAt: version.publishedAt,
                     metrics: version.metrics)
    }

    /// The trainer published a version: serve it, announce it, and embed the catalog under it.
    private func published(_ version: PublishedVersion) {
        logger.info("published model version", metadata: ["version": "\(version.version)", "step": "\(version.step)",
                                                          "path": "\(version.path)"])
        serve(version, announcing: true)
    }

    /// Embed answers under `version` as soon as its encoder is loaded (milliseconds); knn once its
    /// catalog is built (in the background). `model`, `status` and the announcement name the
    /// version only from the moment embed answers under it.
    private func serve(_ version: PublishedVersion, announcing: Bool) {
        do {
            let loaded = try VersionEncoder(version: version, shape: store.configuration.canonical)
            queryQueue.async { [self] in
                if (encoder?.version.version ?? 0) < version.version { encoder = loaded }
                lock.withLock { if (servedModel?.version ?? 0) < version.version { servedModel = version } }
                metrics?.setModelVersion(version.version, step: version.step, publishedAt: version.publishedAt)
                guard announcing else { return }
                let announcement = Self.announcement(version)
                lock.withLock { lastAnnouncement = announcement }
                server?.announce(announcement)
            }
        } catch {
            logger.error("could not load the model version; it is not served", metadata: ["version": "\(version.version)", "error": "\(error)"])
        }
        rebuildCatalog(for: version)
    }

    /// The version `model` and `status` report: the one embed answers under.
    private var servedModelResult: ModelResult {
        let served = lock.withLock { servedModel }
        return ModelResult(version: served?.version ?? 0, path: served?.path, step: served?.step ?? 0, publishedAt: served?.publishedAt)
    }

    /// Query queue only: a rebuild of the current version (to fold in its tail) is under way.
    private var tailRebuildPending = false

    private func catalogFile(_ version: Int) -> URL {
        settings.catalogDirectory.appendingPathComponent(String(format: "%06d.index", version))
    }

    /// Query queue only: rebuilds the current catalog with its tail folded into the base; its HNSW
    /// graph, if it has one, is extended rather than built again.
    private func foldTail(of catalog: Catalog) {
        tailRebuildPending = true
        rebuildCatalog(for: catalog.version, start: catalog.everything, graph: catalog.graph)
    }

    /// Builds `version`'s catalog in the background from `start` (this version's rows already
    /// embedded), or else from its saved file, and swaps it in on the query queue. `graph` is the
    /// HNSW graph of `start`'s base, if any, to extend. A build whose version was superseded while
    /// it waited is skipped, unless `evenIfSuperseded` (a saved catalog to answer from meanwhile).
    private func rebuildCatalog(for version: PublishedVersion, start: ExactIndex? = nil, graph previousGraph: HNSWIndex? = nil,
                                evenIfSuperseded: Bool = false) {
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
            guard !catalogBuilds.isCancelled, evenIfSuperseded || (versions.latest?.version ?? 0) <= version.version else { return }
            lock.withLock { catalogStatus.building = version.version }
            // Its files stay while it is built, however many versions come meanwhile, and until
            // the query queue has served it (after the swap below, on the same queue).
            versions.pin(version.version, for: .building)
            defer { queryQueue.async { [versions] in versions.unpin(version.version, for: .building) } }
            let started = Date()
            let shape = store.configuration.canonical
            let built: Catalog
            // The saved file holds this version's rows unless the build starts elsewhere.
            var savedFileIsCurrent = false
            do {
                let queryEncoder = try VersionEncoder(version: version, shape: shape)
                let saved = start == nil ? savedIndex(of: version, dimension: queryEncoder.dimension) : nil
                savedFileIsCurrent = saved != nil
                let builder = try VersionEncoder(version: version, shape: shape, threads: settings.catalog.buildThreads)
                guard let catalog = try Catalog(encoder: queryEncoder, store: store, settings: settings.catalog, start: start ?? saved,
                                                builder: builder, cancellation: catalogBuilds) else {
                    logger.info("catalog build cancelled", metadata: ["version": "\(version.version)"])
                    return
                }
                built = catalog
            } catch {
                logger.error("could not build the catalog", metadata: ["version": "\(version.version)", "error": "\(error)"])
                queryQueue.async { [self] in tailRebuildPending = false }
                return
            }
            let seconds = Date().timeIntervalSince(started)
            metrics?.catalogBuilt(seconds: seconds, items: built.count)
            logger.info("catalog ready", metadata: ["version": "\(version.version)", "items": "\(built.count)",
                                                    "changed": "\(built.rowsChanged)",
                                                    "seconds": "\(String(format: "%.1f", seconds))"])
            if built.rowsChanged > 0 || !savedFileIsCurrent { saveIndex(built.base) }
            queryQueue.async { [self] in
                // Versions only move forward, even if builds finish out of order; a rebuild of the
                // same version (folding in its tail) replaces it when it holds more items.
                let current = catalog?.version.version ?? 0
                if current < built.version.version || (current == built.version.version && built.count >= catalog!.count) {
                    catalog = built
                    versions.pin(built.version.version, for: .served)
                    removeSavedCatalogsOfVersionsGone()
                    noteCatalogSize()
                }
                if built.version.version >= current { tailRebuildPending = false }
            }
            if store.configuration.replay.policy == .minred { showReplay(built) }
            // knn answers (exactly) from here; approximate search joins once its graph is built.
            guard built.wantsApproximate, !catalogBuilds.isCancelled else { return }
            let graphStarted = Date()
            let extended = previousGraph.flatMap { graph in
                start.flatMap { built.extendApproximate(graph, from: $0, cancellation: catalogBuilds) }
            }
            guard let graph = extended ?? built.buildApproximate(cancellation: catalogBuilds) else { return }
            logger.info("approximate index ready", metadata: ["version": "\(version.version)", "items": "\(built.base.count)",
                                                              "extended": "\(extended != nil)",
                                                              "seconds": "\(String(format: "%.1f", Date().timeIntervalSince(graphStarted)))"])
            queryQueue.async { built.attach(graph) }
        }
    }

    /// MinRed chooses what to evict by these embeddings from now on (catalog queue; seconds for a
    /// large replay set, which ingest does not wait for).
    private func showReplay(_ built: Catalog) {
        let started = Date()
        let seen = store.setReplayEmbeddings(built.base.ids, built.base.vectors, dimension: built.dimension,
                                             cancelled: { [catalogBuilds] in catalogBuilds.isCancelled })
        guard !catalogBuilds.isCancelled else { return }
        logger.info("replay set seen through the catalog", metadata: [
            "version": "\(built.version.version)", "members": "\(seen)",
            "seconds": "\(String(format: "%.1f", Date().timeIntervalSince(started)))"])
        queryQueue.async { [self] in replayViewThrough = built.base.ids.last ?? 0 }
        refreshReplayViewIfDue()
    }

    /// Query queue only: the newest item the replay view was built with.
    private var replayViewThrough: UInt64 = 0

    /// MinRed sees only the members embedded when its view was built, and never evicts the others:
    /// once a sixteenth of the replay capacity (at most `tailLimit`) arrived unseen, the catalog
    /// folds them in (embedding just them) and hands the replay set over again. One refresh at a
    /// time; each ends by checking whether another is due, so under steady ingest they follow one
    /// another, and when ingest stops the last arrivals are seen too.
    private func refreshReplayViewIfDue() {
        guard store.configuration.replay.policy == .minred else { return }
        queryQueue.async { [self] in
            guard let catalog, !tailRebuildPending, !catalogBuilds.isCancelled else { return }
            let s = store.statistics
            let due = max(1, min(settings.catalog.tailLimit, store.configuration.replay.capacity / 16))
            guard s.replayMembers - s.replayEmbedded >= due, s.nextID - 1 > replayViewThrough else { return }
            foldTail(of: catalog)
        }
    }

    /// Query queue only: status reports the current catalog's version and size.
    private func noteCatalogSize() {
        guard let catalog else { return }
        lock.withLock {
            catalogStatus.version = catalog.version.version
            catalogStatus.items = catalog.count
            catalogEmbeddedThrough = catalog.embeddedThrough
        }
    }

    /// The saved catalog of `version`, if there is a sound one.
    private func savedIndex(of version: PublishedVersion, dimension: Int) -> ExactIndex? {
        let file = catalogFile(version.version)
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
    private func saveIndex(_ index: ExactIndex) {
        do {
            try index.write(to: catalogFile(index.version))
        } catch {
            logger.error("could not save the catalog; a restart will re-embed it", metadata: ["error": "\(error)"])
        }
    }

    /// Removes the saved catalogs of versions no longer kept, once a newer catalog took over (and
    /// its version was pinned): before, the one served may be of a version already superseded.
    private func removeSavedCatalogsOfVersionsGone() {
        let kept = Set(versions.all.map { catalogFile($0.version).lastPathComponent })
        let files = (try? FileManager.default.contentsOfDirectory(atPath: settings.catalogDirectory.path)) ?? []
        for file in files where file.hasSuffix(".index") && !kept.contains(file) {
            try? FileManager.default.removeItem(at: settings.catalogDirectory.appendingPathComponent(file))
        }
    }

    // MARK: Requests

    public func handle(_ request: Request, from client: ClientRef, respond answer: @escaping @Sendable (Reply) -> Void) {
        let id = request.id
        let started = Date()
        let metrics = self.metrics, logger = self.logger
        let respond: @Sendable (Reply) -> Void = { reply in
            answer(reply)
            guard let metrics else { return }
            var errorCode: String?
            if case .failure(let error) = reply.outcome { errorCode = error.code.rawValue }
            metrics.request(command: request.command.name, error: errorCode)
            switch request.command {
            case .ingest(let images):
                if let errorCode { metrics.ingestRefused(code: errorCode) }
                else { metrics.ingested(items: images.count, bytes: images.reduce(0) { $0 + $1.bytes.count }) }
                if let errorCode, errorCode == ErrorCode.storeFull.rawValue || errorCode == ErrorCode.diskFull.rawValue {
                    logger.warning("ingest refused", metadata: ["code": "\(errorCode)"])
                }
            case .embed:
                metrics.queryLatency(command: "embed", seconds: Date().timeIntervalSince(started))
            case .knn(let query):
                metrics.queryLatency(command: "knn", exact: query.exact, seconds: Date().timeIntervalSince(started))
            default:
                break
            }
        }
        if lock.withLock({ shuttingDown }) {
            respond(.failure(id: id, ProtocolError(.shuttingDown, "the daemon is stopping; the request was not applied")))
            return
        }
        switch request.command {
        case .ingest(let images):
            ingestQueue.async { [self] in ingest(images, id: id, respond: respond) }
        case .embed(let images):
            queryQueue.async { [self] in respond(embed(images, id: id)) }
        case .knn(let query):
            queryQueue.async { [self] in respond(knn(query, id: id)) }
        case .get(let ids, let pixels):
            lookupQueue.async { [self] in respond(get(ids, pixels: pixels, id: id)) }
        case .delete(let ids):
            store.delete(ids) { result in
                switch result {
                case .success(let deleted): respond(.success(id: id, DeleteResult(deleted: deleted)))
                case .failure(let error): respond(.failure(id: id, Self.protocolError(error)))
                }
            }
        case .status:
            respond(.success(id: id, status()))
        case .model:
            respond(.success(id: id, servedModelResult))
        case .lastAnnouncement:
            respond(.success(id: id, LastAnnouncementResult(announcement: lock.withLock { lastAnnouncement })))
        case .export(let after, let limit):
            queryQueue.async { [self] in respond(export(after: after, limit: limit, id: id)) }
        }
    }

    private func decode(_ images: [ImagePayload]) -> Result<[NewItem], ProtocolError> {
        let decoder = IngestDecoder(canonical: store.configuration.canonical)
        var items: [NewItem] = []
        for (index, image) in images.enumerated() {
            do {
                let d = image.descriptor
                var item: NewItem
                switch d.format ?? .auto {
                case .raw:
                    item = try decoder.item(raw: image.bytes, width: d.width ?? 0, height: d.height ?? 0, channels: d.channels ?? 0)
                case .auto, .jpeg, .png:
                    item = try decoder.item(encoded: image.bytes)
                    if let format = d.format, format != .auto, format.rawValue != item.originalFormat.rawValue {
                        return .failure(ProtocolError(.badImage, "declared \(format.rawValue), but the bytes are \(item.originalFormat.rawValue)", index: index))
                    }
                }
                item.source = d.source ?? ""
                item.metadata = Array((d.meta ?? "").utf8)
                items.append(item)
            } catch {
                var protocolError = Self.protocolError(error)
                protocolError.index = index
                return .failure(protocolError)
            }
        }
        return .success(items)
    }

    private func ingest(_ images: [ImagePayload], id: RequestID?, respond: @escaping @Sendable (Reply) -> Void) {
        switch decode(images) {
        case .failure(let error):
            respond(.failure(id: id, error))
        case .success(let items):
            // Answered from the store's writer thread once durable: no task, no thread waiting.
            let trainer = self.trainer
            store.ingest(items) { result in
                switch result {
                case .success(let ids):
                    respond(.success(id: id, IngestResult(ids: ids)))
                    trainer?.notifyIngest()
                    self.refreshReplayViewIfDue()
                case .failure(let error):
                    respond(.failure(id: id, Self.protocolError(error)))
                }
            }
        }
    }

    /// On the query queue.
    private func embed(_ images: [ImagePayload], id: RequestID?) -> Reply {
        guard let encoder else { return .failure(id: id, ProtocolError(.notReady, "no model version is loaded yet")) }
        switch decode(images) {
        case .failure(let error):
            return .failure(id: id, error)
        case .success(let items):
            let vectors = encoder.embed(items.map(\.image.pixels))
            return .success(id: id, EmbedResult(version: encoder.version.version, dim: encoder.dimension),
                            payloads: vectors.map { VectorFrame.encode($0) })
        }
    }

    /// Query queue only: keeps `catalog` up with the store. A knn embeds a few new items itself
    /// (`catchUpLimit`) so that its answer includes them; more would hold every query for as long
    /// as one thread takes to embed them (41 s for 10,000 items with training on), so they are
    /// embedded in the background instead, into the tail (`embedTailInBackground`) or, past
    /// `tailLimit`, by a rebuild that folds them into the base, and answers leave them out until
    /// then (status shows `catalog.items` below `store.items`). Export pages through everything,
    /// embedding the backlog a slice at a time as its pages reach it (`export`).
    private func catchUp(_ catalog: Catalog) throws {
        let newest = store.nextID - 1
        let backlog = newest > catalog.embeddedThrough ? Int(newest - catalog.embeddedThrough) : 0
        if backlog <= settings.catalog.catchUpLimit && !tailEmbedding {
            try catalog.catchUp()
            noteCatalogSize()
        } else if backlog <= settings.catalog.tailLimit {
            embedTailInBackground(catalog)
        }
        if (catalog.wantsRebuild || backlog > settings.catalog.tailLimit) && !tailRebuildPending {
            foldTail(of: catalog)
        }
    }

    /// Query queue only: a background embedding for the tail is under way.
    private var tailEmbedding = false
    /// Tail queue only: the encoder it embeds with, loaded per version.
    private var tailEncoder: VersionEncoder?

    /// Query queue only: embeds the catalog's new items on the tail queue and appends them to its
    /// tail on this queue; the tail may then be folded in.
    private func embedTailInBackground(_ catalog: Catalog) {
        guard !tailEmbedding else { return }
        tailEmbedding = true
        let after = catalog.embeddedThrough
        tailQueue.async { [self] in
            var embedded: Catalog.TailRows?
            do {
                if tailEncoder?.version.version != catalog.version.version {
                    tailEncoder = try VersionEncoder(version: catalog.version, shape: store.configuration.canonical)
                }
                embedded = try Catalog.tailRows(of: store, after: after, encoder: tailEncoder!, cancellation: catalogBuilds)
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

    /// On the query queue.
    private func knn(_ query: KNNQuery, id: RequestID?) -> Reply {
        guard let catalog else { return .failure(id: id, ProtocolError(.notReady, "the catalog is not built yet")) }
        do {
            try catchUp(catalog)
            let vector: [Float]
            /// Knn by item: the item itself comes first, even before an exact duplicate that the
            /// search ranks first (equal scores go to the lower id).
            var itself: Index.Neighbour?
            switch query.target {
            case .image(let image):
                switch decode([image]) {
                case .failure(let error): return .failure(id: id, error)
                case .success(let items): vector = catalog.encoder.embed([items[0].image.pixels])[0]
                }
            case .item(let item):
                guard let stored = try store.item(item) else {
                    return .failure(id: id, ProtocolError(.notFound, "no stored item \(item)"))
                }
                // Embedded already, or of the backlog (embedded here, as it would be if indexed).
                vector = catalog.vector(of: item) ?? catalog.encoder.embed([stored.image.pixels])[0]
                if query.source == nil || query.source == stored.source { itself = Index.Neighbour(id: item, score: 1) }
            case .vector(let given):
                guard given.count == catalog.dimension else {
                    return .failure(id: id, ProtocolError(.badHeader, "the vector has dim \(given.count); version \(catalog.version.version) embeds in \(catalog.dimension)"))
                }
                vector = given
            }
            var (neighbours, exact) = try catalog.search(vector, k: query.k, source: query.source, exact: query.exact)
            if let itself { neighbours = Array(([itself] + neighbours.filter { $0.id != itself.id }).prefix(query.k)) }
            return .success(id: id, KNNResult(version: catalog.version.version, exact: exact,
                                              neighbours: neighbours.map { Protocol.Neighbour(id: $0.id, score: $0.score) }))
        } catch {
            return .failure(id: id, Self.protocolError(error))
        }
    }

    /// Backlog items an export embeds per page at most (about 0.2 s of one core at 32×32).
    static let exportSlice = 512

    /// On the query queue.
    private func export(after: UInt64, limit: Int, id: RequestID?) -> Reply {
        guard let catalog else { return .failure(id: id, ProtocolError(.notReady, "the catalog is not built yet")) }
        do {
            try catchUp(catalog)
            // At most 4 MiB of vectors per page (4,096 rows at dim 256): pages may be short.
            let limit = min(limit, max(1, settings.server.limits.maxReplyPayloadBytes / (catalog.dimension * 4)))
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
            return .failure(id: id, Self.protocolError(error))
        }
    }

    private func get(_ ids: [UInt64], pixels: Bool, id: RequestID?) -> Reply {
        // A reply a client does not read stays queued for it (up to the send high-water mark): the
        // pixels of one reply are bounded so that this stays affordable.
        let canonical = store.configuration.canonical
        let maxWithPixels = max(1, settings.server.limits.maxReplyPayloadBytes / canonical.pixelBytes)
        if pixels && ids.count > maxWithPixels {
            return .failure(id: id, ProtocolError(.tooLarge, "\(ids.count) ids with pixels; at most \(maxWithPixels) per request "
                                                  + "(\(settings.server.limits.maxReplyPayloadBytes) bytes of \(canonical) pixels)"))
        }
        do {
            let items = try store.items(ids)
            let infos = items.map { item in
                item.map {
                    ItemInfo(id: $0.id, source: $0.source, meta: String(decoding: $0.metadata, as: UTF8.self),
                             width: $0.originalWidth, height: $0.originalHeight, format: $0.originalFormat.rawValue,
                             ingestedAt: $0.ingestedAt.timeIntervalSince1970, storedSide: $0.image.width,
                             storedChannels: $0.image.channels)
                }
            }
            return .success(id: id, GetResult(items: infos), payloads: pixels ? items.compactMap { $0?.image.pixels } : [])
        } catch {
            return .failure(id: id, Self.protocolError(error))
        }
    }

    public func status() -> StatusResult {
        let s = store.statistics
        let t = trainer.currentStatus
        let method = settings.training.method.rawValue + (settings.training.adc == nil ? "" : "+adc")
        var (catalog, embeddedThrough) = lock.withLock { (catalogStatus, catalogEmbeddedThrough) }
        catalog.complete = catalog.version > 0 && catalog.building == nil && embeddedThrough >= s.nextID - 1
        return StatusResult(
            uptimeSeconds: Date().timeIntervalSince(started),
            store: .init(items: s.items, bytes: s.recordBytes, ingested: s.ingested, replayPolicy: s.replayPolicy.rawValue,
                         replayMembers: s.replayMembers, replayEmbedded: s.replayEmbedded, mapUsedBytes: s.mapUsedBytes, mapSize: s.mapSize),
            training: .init(method: method, step: t.step, imagesPerSecond: t.imagesPerSecond, loss: t.loss,
                            collapse: t.collapse, rolledBack: t.rolledBack, gradientShare: t.gradientShares),
            model: servedModelResult,
            catalog: catalog)
    }

    static func protocolError(_ error: Error) -> ProtocolError {
        switch error as? StoreError {
        case .badImage(let image)?: ProtocolError(.badImage, image.description)
        case .invalidItem(let message)?: ProtocolError(.badImage, message)
        case .storeFull?: ProtocolError(.storeFull, "\(error)")
        case .diskFull?: ProtocolError(.diskFull, "\(error)")
        case .closed?: ProtocolError(.shuttingDown, "the store is closed")
        default: ProtocolError(.internalError, "\(error)")
        }
    }
}
