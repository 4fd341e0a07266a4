// glfd: the parts wired together, and each request routed to the part that answers it.
//
//   RequestServer ──(ingest)──► decode on the ingest queue ──► ImageStore (group commit) ──► reply
//                 ──(embed, knn, export)──► CatalogService's query queue: the served version
//                 ──(get)──► the lookup queue; (delete, status, model, last_announcement) at once
//   ContinuousTrainer ──publish──► ModelVersions ──► CatalogService serves the version (embed at
//                                  once, knn once its catalog is built) ──► announcement on PUB
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

public final class GLFDaemon: RequestHandling, @unchecked Sendable {
    public let settings: DaemonSettings
    public let store: ImageStore
    public let versions: ModelVersions
    /// Nil on a replica: it serves its trainer's versions, and a trainer of its own would hold its
    /// networks (training replicas, optimiser state) for nothing.
    public let trainer: ContinuousTrainer?
    public let server: RequestServer
    /// Images from a NATS JetStream stream (`ingest.jetstream_servers`), nil when off.
    public let jetStream: JetStreamIngest?
    /// A replica's link to its trainer's versions (`replica.follow`), nil on a trainer.
    public let replica: ReplicaFollower?
    /// systemd's notification socket, when run by systemd: readiness, status, watchdog.
    public var notifier: SystemdNotifier?
    /// Counters, gauges and latency histograms for Prometheus (nil: not collected).
    public var metrics: GLFDMetrics? {
        didSet { catalogs.metrics = metrics }
    }
    /// The version embed answers under, and the catalog knn and export answer from.
    let catalogs: CatalogService
    private let announcements: AnnouncementBoard
    private let logger = Logger(label: "glfd")
    private let started = Date()

    private let ingestQueue = DispatchQueue(label: "glfd.ingest", qos: .utility, attributes: .concurrent)
    /// `get`: reads of up to 10,000 items (and their pixels) off the request loop, one at a time.
    private let lookupQueue = DispatchQueue(label: "glfd.lookup", qos: .userInitiated)
    /// `snapshot`: one at a time, off the request loop (the store copy reads the whole store).
    private let snapshotQueue = DispatchQueue(label: "glfd.snapshot", qos: .utility)
    private let lock = NSLock()
    /// Under `lock`.
    private var shuttingDown = false

    /// Opens the store and the model versions and binds the sockets; `start()` begins serving.
    public init(settings: DaemonSettings) throws {
        precondition(!(settings.replica.isEnabled && settings.trainingEnabled), "a replica serves its trainer's versions and does not train")
        self.settings = settings
        try FileManager.default.createDirectory(at: settings.stateDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        store = try ImageStore(settings.store)
        versions = try ModelVersions(directory: settings.modelsDirectory, keep: settings.keepVersions)
        let logger = logger
        var catalogSettings = settings.catalog
        // A replica serves a version only once its catalog is built (CatalogSettings.serveWithCatalog).
        if settings.replica.isEnabled { catalogSettings.serveWithCatalog = true }
        let catalogs = try CatalogService(store: store, versions: versions, settings: catalogSettings,
                                          directory: settings.catalogDirectory,
                                          maxReplyPayloadBytes: settings.server.limits.maxReplyPayloadBytes, logger: logger)
        self.catalogs = catalogs
        server = try RequestServer(settings: settings.server)
        let announcements = AnnouncementBoard(server: server, last: versions.latest.map(Announcement.init),
                                              historyFile: settings.stateDirectory.appendingPathComponent("history.jsonl"))
        self.announcements = announcements
        // A published version is served (embed at once, knn once its catalog is built) and
        // announced once embed answers under it.
        let trainer = settings.replica.isEnabled ? nil
            : try ContinuousTrainer(store: store, versions: versions, config: settings.training, settings: settings.trainer,
                                    snapshotDirectory: settings.snapshotDirectory) { version in
                logger.info("published model version", metadata: ["version": "\(version.version)", "step": "\(version.step)",
                                                                  "path": "\(version.path)"])
                catalogs.serve(version) { announcements.announce(Announcement($0)) }
            }
        self.trainer = trainer
        if settings.jetStream.isEnabled {
            jetStream = JetStreamIngest(settings: settings.jetStream, store: store, logger: logger) { _ in
                trainer?.notifyIngest()
                catalogs.itemsStored()
            }
        } else {
            jetStream = nil
        }
        if settings.replica.isEnabled {
            replica = ReplicaFollower(settings: settings.replica, versions: versions, logger: logger) { version in
                catalogs.serve(version) { announcements.announce(Announcement($0)) }
            }
        } else {
            replica = nil
        }
        catalogs.drift.onAlert = { alert in
            logger.log(level: alert.state == .rising ? .warning : .info,
                       alert.state == .rising ? "new items lie far from the replay set (drift)" : "drift settled",
                       metadata: ["score": "\(String(format: "%.2f", alert.score))", "alert_score": "\(alert.alertScore)",
                                  "version": "\(alert.version)", "arrivals": "\(alert.arrivals)"])
            announcements.announce(alert)
        }
        trainer?.onRollbackStreak = { step, inARow, pause in
            logger.warning("training keeps collapsing from its snapshot; pausing before it tries again", metadata: [
                "step": "\(step)", "rollbacks_in_a_row": "\(inARow)", "pause_seconds": "\(pause)",
                "hint": "a lower training.learning_rate, or another training.method, usually helps"])
        }
        if let step = trainer?.resumedStep {
            logger.info("training resumes", metadata: ["step": "\(step)", "changed": "\(trainer?.resumedChanges.count ?? 0)"])
        }
        for change in trainer?.resumedChanges ?? [] {
            logger.notice("a changed setting applies to the resumed run", metadata: [
                "setting": "\(change.field.settingKey)", "saved": "\(change.saved)", "now": "\(change.wanted)"])
        }
        for change in trainer?.settingsChanged ?? [] {
            logger.notice("a changed setting applies from now", metadata: [
                "setting": "\(change.key)", "before": "\(change.before)", "now": "\(change.now)"])
        }
    }

    public func start() {
        if let notifier {
            server.heartbeat = { notifier.beat("server") }
            trainer?.heartbeat = { notifier.beat("trainer") }
        }
        // A version is served before the first request is read: `model` and `embed` agree from the start.
        if let latest = versions.latest {
            catalogs.resume(latest)
        } else if let trainer {
            // With or without training, queries have a model from the start (a replica's first
            // comes from its trainer, and it answers `not_ready` until that version's catalog is built).
            do {
                try trainer.publishInitialVersion()
            } catch {
                logger.error("could not publish the initial model version", metadata: ["error": "\(error)"])
            }
            catalogs.waitUntilServing()
        }
        server.start(handler: self)
        jetStream?.start()
        replica?.start()
        if settings.trainingEnabled { trainer?.start() }
    }

    /// Graceful stop: refuse new work, finish the trainer's step (snapshot saved), let queued
    /// ingests commit and their replies go out, then close the store.
    public func stop() {
        lock.withLock { shuttingDown = true }
        // Its last batch is committed and acknowledged before the store closes.
        jetStream?.stop()
        replica?.stop()
        trainer?.stop()
        notifier?.retire("trainer")
        catalogs.stop()
        ingestQueue.sync(flags: .barrier) {}
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
                            collapse: s.training.collapse, rolledBack: s.training.rolledBack, idle: trainer?.currentStatus.idle ?? true,
                            gradientShares: s.training.gradientShare)
        metrics.setModelVersion(s.model.version, step: s.model.step, publishedAt: s.model.publishedAt)
        metrics.setDrift(score: s.drift?.score, arrivals: s.drift?.arrivals ?? 0)
        metrics.setRole(role, versionsBehind: s.replica.flatMap { r in r.trainerVersion.map { $0 - s.model.version } })
        if let j = s.jetstream {
            metrics.setJetStream(connected: j.connected, pending: j.pending, stored: j.stored, duplicates: j.duplicates, rejected: j.rejected)
        }
        if let memory = s.memory {
            metrics.setMemory(["resident": memory.residentBytes, "resident_file": memory.residentFileBytes,
                               "heap_in_use": memory.heapInUseBytes, "heap_held": memory.heapHeldBytes,
                               "networks": memory.networksBytes, "catalog": memory.catalogBytes,
                               "catalog_building": memory.catalogBuildingBytes, "replay": memory.replayBytes])
        }
    }

    /// One line for systemd's STATUS= (and logs): items, training step, model version.
    public var statusLine: String {
        let s = status()
        return "\(s.store.items) items, step \(s.training.step), model version \(s.model.version)"
    }

    /// The version `model` and `status` report: the one embed answers under.
    private var servedModelResult: ModelResult {
        let served = catalogs.servedVersion
        return ModelResult(version: served?.version ?? 0, path: served?.path, step: served?.step ?? 0, publishedAt: served?.publishedAt)
    }

    // MARK: Requests

    public func handle(_ request: Request, from client: ClientRef, respond answer: @escaping @Sendable (Reply) -> Void) {
        let id = request.id
        let started = Date()
        let metrics = self.metrics, logger = self.logger
        let respond: @Sendable (Reply) -> Void = { reply in
            answer(reply)
            metrics?.answered(request.command, with: reply, startedAt: started)
            if case .ingest = request.command, case .failure(let error) = reply.outcome, [.storeFull, .diskFull].contains(error.code) {
                logger.warning("ingest refused", metadata: ["code": "\(error.code.rawValue)"])
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
            catalogs.query { [catalogs] in respond(catalogs.embed(images, id: id)) }
        case .knn(let query):
            catalogs.query { [catalogs] in
                if let error = catalogs.keepUp() { return respond(.failure(id: id, error)) }
                respond(catalogs.knn(query, id: id))
            }
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
            respond(.success(id: id, LastAnnouncementResult(announcement: announcements.last)))
        case .modelFiles(let version):
            lookupQueue.async { [self] in respond(modelFiles(version, id: id)) }
        case .modelFile(let version, let name, let offset):
            lookupQueue.async { [self] in respond(modelFile(version, name: name, offset: offset, id: id)) }
        case .export(let after, let limit):
            catalogs.query { [catalogs] in
                if let error = catalogs.keepUp() { return respond(.failure(id: id, error)) }
                respond(catalogs.exportPage(after: after, limit: limit, id: id))
            }
        case .duplicates(let query):
            catalogs.duplicates(query, id: id, respond: respond)
        case .history(let after, let limit):
            let (found, more) = announcements.history(after: after, limit: limit)
            respond(.success(id: id, HistoryResult(announcements: found, nextAfter: more ? found.last?.version : nil)))
        case .snapshot(let dir):
            snapshotQueue.async { [self] in
                switch snapshot(to: dir) {
                case .success(let result): respond(.success(id: id, result))
                case .failure(let error): respond(.failure(id: id, error))
                }
            }
        }
    }

    private func ingest(_ images: [ImagePayload], id: RequestID?, respond: @escaping @Sendable (Reply) -> Void) {
        switch ImagePayloadDecoding.items(images, canonical: store.configuration.canonical) {
        case .failure(let error):
            respond(.failure(id: id, error))
        case .success(let items):
            // Answered from the store's writer thread once durable: no task, no thread waiting.
            let (trainer, catalogs) = (trainer, catalogs)
            store.ingest(items) { result in
                switch result {
                case .success(let ids):
                    respond(.success(id: id, IngestResult(ids: ids)))
                    trainer?.notifyIngest()
                    catalogs.itemsStored()
                case .failure(let error):
                    respond(.failure(id: id, Self.protocolError(error)))
                }
            }
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
        let t = trainer?.currentStatus ?? ContinuousTrainer.Status()
        let method = settings.training.method.rawValue + (settings.training.adc == nil ? "" : "+adc")
        return StatusResult(
            role: role,
            uptimeSeconds: Date().timeIntervalSince(started),
            store: .init(items: s.items, bytes: s.recordBytes, ingested: s.ingested, replayPolicy: s.replayPolicy.rawValue,
                         replayMembers: s.replayMembers, replayEmbedded: s.replayEmbedded, mapUsedBytes: s.mapUsedBytes, mapSize: s.mapSize),
            training: .init(method: method, step: t.step, imagesPerSecond: t.imagesPerSecond, loss: t.loss,
                            collapse: t.collapse, rolledBack: t.rolledBack, gradientShare: t.gradientShares),
            model: servedModelResult,
            catalog: catalogs.status(newestItem: s.nextID - 1),
            memory: memory(),
            drift: catalogs.drift.status,
            jetstream: jetStream.map { ingest in
                let j = ingest.status
                return StatusResult.JetStream(stream: settings.jetStream.stream, consumer: settings.jetStream.consumer,
                                              connected: j.connected, pending: j.pending, stored: j.stored,
                                              duplicates: j.duplicates, rejected: j.rejected, lastError: j.lastError)
            },
            replica: replica.map { follower in
                let r = follower.status
                return StatusResult.Replica(follow: settings.replica.follow, trainerVersion: r.trainerVersion,
                                            installedVersion: r.installedVersion, lastError: r.lastError)
            })
    }

    /// status's `role`: what this daemon does.
    private var role: String { replica != nil ? "replica" : settings.trainingEnabled ? "trainer" : "serving" }

    /// Where the memory goes: the process as the kernel and allocator count it, and the large
    /// structures as their owners do.
    private func memory() -> StatusResult.Memory {
        let process = ProcessMemory.current(), catalog = catalogs.memory
        return StatusResult.Memory(residentBytes: process.residentBytes, residentFileBytes: process.residentFileBytes,
                                   heapInUseBytes: process.heapInUseBytes, heapHeldBytes: process.heapHeldBytes,
                                   networksBytes: NeuralMemory.bytes, catalogBytes: catalog.served,
                                   catalogBuildingBytes: catalog.building, replayBytes: store.replayAllocatedBytes)
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
