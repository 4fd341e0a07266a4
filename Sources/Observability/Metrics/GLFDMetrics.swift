// Every metric glfd exports, in one place: names, kinds, labels, HELP text, buckets, and one small
// method per event so that the daemon's wiring is one line where the event happens.
//
// Names follow Prometheus' conventions: the `glfd_` prefix, base units in the name (`_seconds`,
// `_bytes`), `_total` on counters. Rates are the scraper's job: `rate(glfd_ingest_items_total[1m])`
// is images per second, `rate(glfd_training_steps_total[5m])` the step rate. Label values come from
// fixed sets (commands, protocol error codes, queue names, loss terms), never from clients' input.
//
//   ingest      glfd_ingest_items_total, glfd_ingest_bytes_total, glfd_ingest_requests_total,
//               glfd_ingest_refusals_total{code}, glfd_ingest_in_flight
//   requests    glfd_requests_total{command,outcome}, glfd_queue_depth{queue},
//               glfd_query_duration_seconds{command,index}           (histogram, 0.5 ms … 5 s)
//   training    glfd_training_step, glfd_training_steps_total, glfd_training_images_per_second,
//               glfd_training_loss{term}, glfd_training_collapse_monitor,
//               glfd_training_gradient_share{term}, glfd_training_rollbacks_total, glfd_training_idle
//   model       glfd_model_version, glfd_model_step, glfd_model_published_timestamp_seconds,
//               glfd_catalog_build_duration_seconds (histogram, 0.1 s … 30 min), glfd_catalog_items,
//               glfd_catalog_serving_lag_seconds (histogram, same buckets)
//   store       glfd_store_items, glfd_store_bytes, glfd_store_replay_members,
//               glfd_store_map_size_bytes, glfd_store_map_used_bytes
//   drift       glfd_drift_score, glfd_drift_arrivals                 (status's `drift`)
//   role        glfd_role{role} (1 for the daemon's: trainer, replica or serving), glfd_replica_versions_behind
//   jetstream   glfd_jetstream_connected, glfd_jetstream_pending, glfd_jetstream_messages_total{outcome}
//               (stored, duplicate, rejected: status's `jetstream`, when JetStream ingest is on)
//   process     glfd_start_time_seconds, glfd_memory_bytes{part}   (resident, resident_file, heap_in_use,
//               heap_held, networks, catalog, catalog_building, replay: status's `memory`)
import CoreMetrics
import Foundation

public final class GLFDMetrics: @unchecked Sendable {
    public let registry: PrometheusRegistry

    public enum Name {
        public static let ingestItems = "glfd_ingest_items_total"
        public static let ingestBytes = "glfd_ingest_bytes_total"
        public static let ingestRequests = "glfd_ingest_requests_total"
        public static let ingestRefusals = "glfd_ingest_refusals_total"
        public static let ingestInFlight = "glfd_ingest_in_flight"
        public static let requests = "glfd_requests_total"
        public static let queueDepth = "glfd_queue_depth"
        public static let queryDuration = "glfd_query_duration_seconds"
        public static let trainingStep = "glfd_training_step"
        public static let trainingSteps = "glfd_training_steps_total"
        public static let trainingImagesPerSecond = "glfd_training_images_per_second"
        public static let trainingLoss = "glfd_training_loss"
        public static let trainingCollapse = "glfd_training_collapse_monitor"
        public static let trainingGradientShare = "glfd_training_gradient_share"
        public static let trainingRollbacks = "glfd_training_rollbacks_total"
        public static let trainingIdle = "glfd_training_idle"
        public static let modelVersion = "glfd_model_version"
        public static let modelStep = "glfd_model_step"
        public static let modelPublished = "glfd_model_published_timestamp_seconds"
        public static let catalogBuildDuration = "glfd_catalog_build_duration_seconds"
        public static let catalogItems = "glfd_catalog_items"
        public static let catalogServingLag = "glfd_catalog_serving_lag_seconds"
        public static let storeItems = "glfd_store_items"
        public static let storeBytes = "glfd_store_bytes"
        public static let storeReplayMembers = "glfd_store_replay_members"
        public static let storeMapSize = "glfd_store_map_size_bytes"
        public static let storeMapUsed = "glfd_store_map_used_bytes"
        public static let startTime = "glfd_start_time_seconds"
        public static let memory = "glfd_memory_bytes"
        public static let driftScore = "glfd_drift_score"
        public static let driftArrivals = "glfd_drift_arrivals"
        public static let role = "glfd_role"
        public static let replicaVersionsBehind = "glfd_replica_versions_behind"
        public static let jetStreamConnected = "glfd_jetstream_connected"
        public static let jetStreamPending = "glfd_jetstream_pending"
        public static let jetStreamMessages = "glfd_jetstream_messages_total"
    }

    /// Query latency: 0.5 ms … 5 s.
    public static let queryBuckets: [Double] = PrometheusRegistry.defaultBuckets
    /// Catalog builds embed every stored image: 0.1 s … 30 min.
    public static let catalogBuckets: [Double] = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800]

    private let ingestItems: Counter
    private let ingestBytes: Counter
    private let ingestRequests: Counter
    private let ingestInFlight: Meter
    private let trainingStep: Meter
    private let trainingSteps: Counter
    private let trainingImagesPerSecond: Meter
    private let trainingCollapse: Meter
    private let trainingRollbacks: Counter
    private let trainingIdle: Meter
    private let modelVersion: Meter
    private let modelStep: Meter
    private let modelPublished: Meter
    private let catalogBuildDuration: Recorder
    private let catalogItems: Meter
    private let catalogServingLag: Recorder
    private let storeItems: Meter
    private let storeBytes: Meter
    private let storeReplayMembers: Meter
    private let storeMapSize: Meter
    private let storeMapUsed: Meter
    private let driftScore: Meter
    private let driftArrivals: Meter

    /// Counters derived from the trainer's absolute numbers (its step, its rollbacks so far).
    private let lock = NSLock()
    private var lastTrainingStep: Int?
    private var lastRollbacks = 0
    private var lastJetStreamCounts: [String: Int] = [:]

    public init(registry: PrometheusRegistry = PrometheusRegistry()) {
        self.registry = registry
        Self.describe(registry)
        ingestItems = Counter(label: Name.ingestItems, factory: registry)
        ingestBytes = Counter(label: Name.ingestBytes, factory: registry)
        ingestRequests = Counter(label: Name.ingestRequests, factory: registry)
        ingestInFlight = Meter(label: Name.ingestInFlight, factory: registry)
        trainingStep = Meter(label: Name.trainingStep, factory: registry)
        trainingSteps = Counter(label: Name.trainingSteps, factory: registry)
        trainingImagesPerSecond = Meter(label: Name.trainingImagesPerSecond, factory: registry)
        trainingCollapse = Meter(label: Name.trainingCollapse, factory: registry)
        trainingRollbacks = Counter(label: Name.trainingRollbacks, factory: registry)
        trainingIdle = Meter(label: Name.trainingIdle, factory: registry)
        modelVersion = Meter(label: Name.modelVersion, factory: registry)
        modelStep = Meter(label: Name.modelStep, factory: registry)
        modelPublished = Meter(label: Name.modelPublished, factory: registry)
        catalogBuildDuration = Recorder(label: Name.catalogBuildDuration, aggregate: true, factory: registry)
        catalogItems = Meter(label: Name.catalogItems, factory: registry)
        catalogServingLag = Recorder(label: Name.catalogServingLag, aggregate: true, factory: registry)
        storeItems = Meter(label: Name.storeItems, factory: registry)
        storeBytes = Meter(label: Name.storeBytes, factory: registry)
        storeReplayMembers = Meter(label: Name.storeReplayMembers, factory: registry)
        storeMapSize = Meter(label: Name.storeMapSize, factory: registry)
        storeMapUsed = Meter(label: Name.storeMapUsed, factory: registry)
        driftScore = Meter(label: Name.driftScore, factory: registry)
        driftArrivals = Meter(label: Name.driftArrivals, factory: registry)
        Meter(label: Name.startTime, factory: registry).set(Date().timeIntervalSince1970)
    }

    private static func describe(_ registry: PrometheusRegistry) {
        let help: [(String, String)] = [
            (Name.ingestItems, "Images acknowledged (durable in the store)"),
            (Name.ingestBytes, "Encoded bytes of the images acknowledged"),
            (Name.ingestRequests, "Ingest requests acknowledged"),
            (Name.ingestRefusals, "Ingest requests refused, by protocol error code"),
            (Name.ingestInFlight, "Ingest requests received and not yet answered"),
            (Name.requests, "Requests answered, by command and outcome (ok or the protocol error code)"),
            (Name.queueDepth, "Work waiting in each of the daemon's queues"),
            (Name.queryDuration, "Time to answer embed and knn requests, by command and index (exact, approximate; none for embed)"),
            (Name.trainingStep, "The trainer's step count (the current model's age in steps)"),
            (Name.trainingSteps, "Training steps taken since the daemon started"),
            (Name.trainingImagesPerSecond, "Training throughput over the last window, images per second"),
            (Name.trainingLoss, "The latest healthy step's loss, by term (total: the loss the step minimised)"),
            (Name.trainingCollapse, "The collapse monitor of the latest healthy step (low means collapsing)"),
            (Name.trainingGradientShare, "ADC's terms: the norm of the term's gradient over the method's, at the projections, in the latest healthy step"),
            (Name.trainingRollbacks, "Times the collapse guard rolled the trainer back to its last healthy snapshot"),
            (Name.trainingIdle, "1 while the trainer waits for ingest, 0 while it trains"),
            (Name.modelVersion, "The latest published model version (0 before the first)"),
            (Name.modelStep, "The training step of the latest published model version"),
            (Name.modelPublished, "When the latest model version was published, seconds since the Unix epoch"),
            (Name.catalogBuildDuration, "Time to embed and index the store for a new model version"),
            (Name.catalogItems, "Items in the catalog that queries search"),
            (Name.catalogServingLag, "Time from a model version's publication until knn answers from its catalog"),
            (Name.storeItems, "Items in the replay store"),
            (Name.storeBytes, "Bytes of the store's records"),
            (Name.storeReplayMembers, "Items the replay policy currently draws training batches from"),
            (Name.storeMapSize, "Size of the store's LMDB map, bytes"),
            (Name.storeMapUsed, "Bytes of the store's LMDB map in use"),
            (Name.startTime, "When the daemon started, seconds since the Unix epoch"),
            (Name.driftScore, "How far the newest items lie from the replay set under the served model: their mean distance to the nearest member over the members' own spacing (near 1: alike; well above: new)"),
            (Name.driftArrivals, "Sampled arrivals the drift score is measured over (0 after a new version, until items arrive)"),
            (Name.role, "1 for what this daemon is: trainer (trains and publishes), replica (serves a trainer's versions) or serving (training off)"),
            (Name.replicaVersionsBehind, "A replica: its trainer's latest version minus the version it serves (NaN on a trainer, or before the trainer answered)"),
            (Name.jetStreamConnected, "1 while the JetStream consumer is connected and consuming, 0 while it is paused after a failure"),
            (Name.jetStreamPending, "Messages in the JetStream stream not yet delivered to this daemon's consumer: its lag (NaN before the first check)"),
            (Name.jetStreamMessages, "JetStream messages by outcome: stored, duplicate (stored before, acknowledged again), rejected (not an image, terminated)"),
            (Name.memory, "Memory by part: the process's resident set (of it file-backed), the heap in use and held, and what networks, the catalogs and the replay view hold"),
        ]
        for (name, text) in help {
            let buckets = name == Name.queryDuration ? queryBuckets
                : [Name.catalogBuildDuration, Name.catalogServingLag].contains(name) ? catalogBuckets : nil
            registry.describe(name, help: text, buckets: buckets)
        }
    }

    /// The exposition of every metric (Prometheus text format 0.0.4).
    public func exposition() -> String { registry.exposition() }

    // MARK: Ingest and requests

    /// An ingest request was acknowledged: its images are durable.
    public func ingested(items: Int, bytes: Int = 0) {
        ingestRequests.increment()
        ingestItems.increment(by: items)
        if bytes > 0 { ingestBytes.increment(by: bytes) }
    }

    /// An ingest request was refused with a protocol error code (store_full, disk_full, busy, …).
    public func ingestRefused(code: String) {
        Counter(label: Name.ingestRefusals, dimensions: [("code", code)], factory: registry).increment()
    }

    public func ingestStarted() { ingestInFlight.increment() }
    public func ingestFinished() { ingestInFlight.decrement() }
    public func setIngestsInFlight(_ count: Int) { ingestInFlight.set(count) }

    /// A request was answered: `error` is the protocol error code, nil when it succeeded.
    public func request(command: String, error: String? = nil) {
        Counter(label: Name.requests, dimensions: [("command", command), ("outcome", error ?? "ok")], factory: registry).increment()
    }

    /// Work waiting in one of the daemon's queues (ingest, query, catalog, store_commit, replies).
    public func setQueueDepth(_ queue: String, _ depth: Int) {
        Meter(label: Name.queueDepth, dimensions: [("queue", queue)], factory: registry).set(depth)
    }

    /// Time to answer an embed or knn request; `exact` says which index a knn used (nil for embed).
    public func queryLatency(command: String, exact: Bool? = nil, seconds: Double) {
        let index = exact.map { $0 ? "exact" : "approximate" } ?? "none"
        Recorder(label: Name.queryDuration, dimensions: [("command", command), ("index", index)], aggregate: true,
                 factory: registry).record(seconds)
    }

    // MARK: Training and models

    /// The trainer's status as it reports it (absolute numbers): called after steps, or on a timer.
    /// `glfd_training_steps_total` grows by the steps taken since the previous call; a step count
    /// that went down (a rollback) starts counting again from there.
    public func setTraining(step: Int, imagesPerSecond: Double, loss: [String: Double], collapse: Double,
                            rolledBack: Int, idle: Bool? = nil, gradientShares: [String: Double] = [:]) {
        let (newSteps, newRollbacks): (Int, Int) = lock.withLock {
            let steps = lastTrainingStep.map { max(0, step - $0) } ?? 0
            let rollbacks = max(0, rolledBack - lastRollbacks)
            lastTrainingStep = step
            lastRollbacks = max(lastRollbacks, rolledBack)
            return (steps, rollbacks)
        }
        trainingStep.set(step)
        if newSteps > 0 { trainingSteps.increment(by: newSteps) }
        if newRollbacks > 0 { trainingRollbacks.increment(by: newRollbacks) }
        trainingImagesPerSecond.set(imagesPerSecond)
        trainingCollapse.set(collapse)
        for (term, value) in loss {
            Meter(label: Name.trainingLoss, dimensions: [("term", term)], factory: registry).set(value)
        }
        for (term, share) in gradientShares {
            Meter(label: Name.trainingGradientShare, dimensions: [("term", term)], factory: registry).set(share)
        }
        if let idle { trainingIdle.set(idle ? 1 : 0) }
    }

    /// A model version was published (or found at start).
    public func setModelVersion(_ version: Int, step: Int? = nil, publishedAt: Double? = nil) {
        modelVersion.set(version)
        if let step { modelStep.set(step) }
        modelPublished.set(publishedAt ?? Date().timeIntervalSince1970)
    }

    /// Knn answers from a new version's catalog, `seconds` after the version was published.
    public func catalogServed(lagSeconds seconds: Double) { catalogServingLag.record(seconds) }

    /// A catalog (embeddings and index of one model version) was built.
    public func catalogBuilt(seconds: Double, items: Int? = nil) {
        catalogBuildDuration.record(seconds)
        if let items { catalogItems.set(items) }
    }

    // MARK: Memory

    /// Bytes by part (status's `memory`; part names from a fixed set).
    public func setMemory(_ parts: [String: Int]) {
        for (part, bytes) in parts {
            Meter(label: Name.memory, dimensions: [("part", part)], factory: registry).set(bytes)
        }
    }

    // MARK: Drift

    /// Status's `drift`: the score (NaN while no arrival is measured) and the arrivals behind it.
    public func setDrift(score: Double?, arrivals: Int) {
        driftScore.set(score ?? .nan)
        driftArrivals.set(arrivals)
    }

    /// What the daemon is, and (a replica) how many versions it serves behind its trainer.
    public func setRole(_ role: String, versionsBehind: Int?) {
        Meter(label: Name.role, dimensions: [("role", role)], factory: registry).set(1)
        Meter(label: Name.replicaVersionsBehind, factory: registry).set(versionsBehind.map(Double.init) ?? .nan)
    }

    /// JetStream ingest: the consumer's connection and lag, and its absolute counts since the
    /// daemon started (turned into counter increments here).
    public func setJetStream(connected: Bool, pending: UInt64?, stored: Int, duplicates: Int, rejected: Int) {
        Meter(label: Name.jetStreamConnected, factory: registry).set(connected ? 1 : 0)
        Meter(label: Name.jetStreamPending, factory: registry).set(pending.map(Double.init) ?? .nan)
        let increments: [(String, Int)] = lock.withLock {
            [("stored", stored), ("duplicate", duplicates), ("rejected", rejected)].map { outcome, count in
                let increment = max(0, count - lastJetStreamCounts[outcome, default: 0])
                lastJetStreamCounts[outcome] = count
                return (outcome, increment)
            }
        }
        for (outcome, increment) in increments where increment > 0 {
            Counter(label: Name.jetStreamMessages, dimensions: [("outcome", outcome)], factory: registry).increment(by: increment)
        }
    }

    // MARK: Store

    /// The store's statistics: items, record bytes, and the LMDB map's size and use.
    public func setStore(items: some BinaryInteger, bytes: some BinaryInteger, mapSize: some BinaryInteger,
                         mapUsed: some BinaryInteger, replayMembers: Int? = nil) {
        storeItems.set(Double(items))
        storeBytes.set(Double(bytes))
        storeMapSize.set(Double(mapSize))
        storeMapUsed.set(Double(mapUsed))
        if let replayMembers { storeReplayMembers.set(replayMembers) }
    }
}
