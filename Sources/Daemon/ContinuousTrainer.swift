// The trainer loop: GLF steps on batches drawn from the replay store, for as long as the daemon runs.
//
//   - It trains only when there is something to learn from: at least `minItems` replay members,
//     and no more than `updatesPerImage` images' worth of steps per ingested image (SCALE and
//     MinRed replay 4–20 updates per incoming batch); otherwise it waits for ingest.
//   - Collapse guard: a step whose loss is not finite, or after which the collapse monitor falls
//     below `collapseFloor`, is rolled back — the trainer returns to its last healthy snapshot
//     (`snapshotEverySteps`) — and nothing is published from a broken state. A model that collapses
//     again from every snapshot (seen: 6,874 rollbacks in 120 s at one step) must not spin a core
//     for ever: after `rollbackPatience` rollbacks in a row the trainer pauses, twice as long after
//     each further streak (1 s, 2 s, … up to `rollbackPauseLimit`), and says so (`onRollbackStreak`:
//     glfd logs a warning naming the settings that usually help).
//   - Every `publishEverySteps` steps or `publishEverySeconds` seconds (whichever first, and only
//     after healthy steps) it publishes a model version, and once more when it goes idle, so what
//     it learned does not wait for the next images. A version is also a resume point: on start it
//     continues from the newest of its snapshot and the latest version, optimiser state included,
//     under the configuration it is given now: what may change on a resumed run (learning rate,
//     ADC, …) is taken from it, and a change of what may not (method, width, batch, …) refuses to
//     start (`TrainingResumeError`) rather than train something other than what was configured.
//   - It runs on its own thread at a lower scheduling priority (nice 10), so on 2 cores the
//     request loop and the queries it serves are not starved.
import Foundation
import GLF
import Neural
import Store

public final class ContinuousTrainer: @unchecked Sendable {
    /// The initial values are glfd's defaults (its key table reads them).
    public struct Settings: Sendable, Codable, Equatable {
        public var updatesPerImage: Double = 32
        public var minItems = 512
        public var publishEverySteps = 500
        public var publishEverySeconds: Double = 600
        /// Once idle this long with steps not yet published, publish them (a trickle of images
        /// that allows a step now and then keeps the regular cadence instead).
        public var publishWhenIdleSeconds: Double = 30
        public var snapshotEverySteps = 50
        /// Relative to a healthy 1/√D: the floor is `collapseFloorFraction / √D`.
        public var collapseFloorFraction: Float = 0.1
        /// Rollbacks in a row after which the trainer pauses before it tries again.
        public var rollbackPatience = 10
        /// The longest pause after a streak of rollbacks, seconds (the first is 1 s, then doubling).
        public var rollbackPauseLimit: Double = 60
        public var nice: Int32 = 10
        /// Seconds of completed steps that status's images/s is measured over.
        public var rateWindowSeconds: Double = 30
        /// LPM's prior: the embeddings of the latest published version (method.md §3, "previous")
        /// instead of the down-sampled pixels. It follows each publication. Off by default: with the
        /// reservoir replay set it gained nothing on the stream benchmark (CIFAR-10 and
        /// Fashion-MNIST) for 9% more time per step and a second encoder in memory; it helped
        /// replay sets that lose earlier tasks (fifo, minred) on CIFAR-10 only. README, "Learning
        /// from streams".
        public var priorFromPreviousVersion = false
        public init() {}
    }

    public struct Status: Sendable, Equatable {
        public var step = 0
        public var imagesPerSecond = 0.0
        public var loss: [String: Double] = [:]
        public var collapse = 0.0
        /// ADC's terms: ‖∇ term‖ / ‖∇ method‖ at the projections, in the latest healthy step.
        public var gradientShares: [String: Double] = [:]
        public var rolledBack = 0
        public var idle = true
    }

    public let store: ImageStore
    public let versions: ModelVersions
    public let settings: Settings
    /// Where the snapshot the collapse guard returns to (and a restart resumes from) lives.
    public let snapshotDirectory: URL
    private let onPublish: @Sendable (PublishedVersion) -> Void
    /// Told each time the loop goes round (a step, or a wait of at most a second): the watchdog.
    public var heartbeat: (@Sendable () -> Void)?
    /// Told when a streak of `rollbackPatience` rollbacks in a row makes the trainer pause: the step
    /// it keeps returning to, the rollbacks in a row so far, and the pause in seconds.
    public var onRollbackStreak: (@Sendable (_ step: Int, _ inARow: Int, _ pause: Double) -> Void)?

    private let lock = NSLock()
    private var status = Status()
    private var stopping = false
    private let wake = NSCondition()
    private var finished = DispatchSemaphore(value: 0)
    private var running = false

    private var trainer: Trainer
    private var inputs: TrainingInputs
    private let shape: SourceImageShape
    private let collapseFloor: Float
    /// Rollbacks so far: mixed into the draws so the steps after a rollback see other batches.
    private var rollbacks = 0
    /// Rollbacks since the last healthy step.
    private var rollbacksInARow = 0
    /// How the configuration differs from the saved run it resumed, each change applied (for the log).
    public let resumedChanges: [ConfigurationChange]
    /// The step of the saved run it resumed; nil for a fresh start.
    public let resumedStep: Int?
    /// The loop's settings that differ from the previous start's (kept beside the snapshot), each
    /// applied: the update budget, the publication cadence, … (for the log).
    public private(set) var settingsChanged: [(key: String, before: String, now: String)] = []
    static let settingsFileName = "trainer-settings.json"

    public init(store: ImageStore, versions: ModelVersions, config: TrainingConfig, settings: Settings,
                snapshotDirectory: URL, onPublish: @escaping @Sendable (PublishedVersion) -> Void) throws {
        self.store = store
        self.versions = versions
        self.settings = settings
        self.snapshotDirectory = snapshotDirectory
        self.onPublish = onPublish
        // The trainer parallelises itself (one replica per view); a threaded OpenBLAS under it
        // spins its workers against the replicas and runs their work at the default priority.
        BLAS.setThreads(1)
        let canonical = store.configuration.canonical
        shape = SourceImageShape(height: canonical.side, width: canonical.side, channels: canonical.channels)
        let resumed = try Self.resumeOrStart(config: config, versions: versions, snapshot: snapshotDirectory)
        trainer = resumed.trainer
        resumedStep = resumed.step
        resumedChanges = resumed.changes
        inputs = try Self.makeInputs(shape: shape, config: trainer.config, settings: settings, prior: versions.latest)
        let projection = trainer.method.projector(featureDimension: trainer.config.encoder.featureDimension).outputDimension
        collapseFloor = settings.collapseFloorFraction / Float(projection).squareRoot()
        status.step = trainer.stepCount
        settingsChanged = Self.noteSettings(settings, in: snapshotDirectory)
    }

    /// Compares `settings` with the ones the previous start left beside the snapshot, then leaves
    /// these there. What differs is told by the glfd setting that holds it.
    private static func noteSettings(_ settings: Settings, in directory: URL) -> [(key: String, before: String, now: String)] {
        let file = directory.appendingPathComponent(settingsFileName)
        defer {
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try? JSONEncoder().encode(settings).write(to: file, options: .atomic)
        }
        guard let data = try? Data(contentsOf: file), let before = try? JSONDecoder().decode(Settings.self, from: data) else { return [] }
        let fields: [(String, (Settings) -> String)] = [
            ("training.updates_per_image", { "\($0.updatesPerImage)" }), ("training.min_items", { "\($0.minItems)" }),
            ("training.nice", { "\($0.nice)" }), ("training.lpm_prior", { $0.priorFromPreviousVersion ? "previous" : "pixels" }),
            ("models.publish_every_steps", { "\($0.publishEverySteps)" }),
            ("models.publish_every_seconds", { "\($0.publishEverySeconds)" }),
            ("models.publish_when_idle_seconds", { "\($0.publishWhenIdleSeconds)" }),
        ]
        return fields.compactMap { key, value in value(before) == value(settings) ? nil : (key, value(before), value(settings)) }
    }

    /// The newest of: the snapshot, the latest published version, resumed under `config`; a fresh
    /// model when there is neither. A checkpoint that cannot be read falls back to the older one;
    /// when none can, or the configuration changed what a resumed run cannot, it is an error.
    private static func resumeOrStart(config: TrainingConfig, versions: ModelVersions, snapshot: URL) throws
        -> (trainer: Trainer, step: Int?, changes: [ConfigurationChange]) {
        var candidates: [(state: TrainingState, url: URL)] = []
        var unreadable: [String] = []
        for url in [snapshot] + (versions.latest.map { [URL(fileURLWithPath: $0.path)] } ?? []) {
            guard FileManager.default.fileExists(atPath: url.appendingPathComponent(Trainer.stateFileName).path) else { continue }
            do {
                candidates.append((try Trainer.savedState(in: url), url))
            } catch {
                unreadable.append("\(error)")
            }
        }
        for candidate in candidates.sorted(by: { $0.state.step > $1.state.step }) {
            let changes = config.changes(toResume: candidate.state.config)
            let fixed = changes.filter { !$0.canChangeOnResume }
            guard fixed.isEmpty else {
                throw TrainingResumeError(changes: fixed, checkpoint: candidate.url.path, step: candidate.state.step)
            }
            do {
                return (try Trainer.resume(from: candidate.url, workers: config.workers, as: config), candidate.state.step, changes)
            } catch {
                unreadable.append("\(error)")
            }
        }
        guard unreadable.isEmpty else { throw TrainingResumeError(unreadable: unreadable) }
        return (Trainer(config), nil, [])
    }

    private static func makeInputs(shape: SourceImageShape, config: TrainingConfig, settings: Settings,
                                   prior version: PublishedVersion?) throws -> TrainingInputs {
        guard settings.priorFromPreviousVersion, let version else { return try TrainingInputs(shape: shape, config: config) }
        let embedder = try Embedder.load(modelDirectory: URL(fileURLWithPath: version.path), workers: 1, batch: config.batch)
        return try TrainingInputs(shape: shape, config: config, prior: .frozenEncoder(embedder))
    }

    /// The status now; `imagesPerSecond` is over the last `rateWindowSeconds` up to this moment, so
    /// it falls when training stalls and reaches 0 when it idles.
    public var currentStatus: Status {
        lock.withLock {
            var current = status
            current.imagesPerSecond = recentRate(at: Date())
            return current
        }
    }

    /// Under `lock`: when each step of the last `rateWindowSeconds` ended, and its images.
    private var recentSteps: [(end: Date, images: Int)] = []

    /// Images of the steps after the window's first, over the time from its end to `now`.
    private func recentRate(at now: Date) -> Double {
        let recent = recentSteps.filter { now.timeIntervalSince($0.end) <= settings.rateWindowSeconds }
        guard let first = recent.first, recent.count > 1 else { return 0 }
        let elapsed = now.timeIntervalSince(first.end)
        return elapsed > 0 ? Double(recent.dropFirst().reduce(0) { $0 + $1.images }) / elapsed : 0
    }
    public var config: TrainingConfig { lock.withLock { trainer.config } }

    public func start() {
        running = true
        let thread = Thread { [self] in
            // On Linux the nice value is per thread and who = 0 is the calling thread (setpriority(2),
            // BUGS): only this thread yields, and the helpers its parallel loops use (replicas,
            // augmentation: `Parallel.perform`) run at its nice value too.
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, settings.nice)
            run()
            finished.signal()
        }
        thread.name = "glfd-trainer"
        thread.start()
    }

    /// Ingest happened: a waiting trainer looks again.
    public func notifyIngest() {
        wake.lock()
        wake.signal()
        wake.unlock()
    }

    /// Finishes the current step, saves a snapshot, and returns.
    public func stop() {
        guard running else { return }
        wake.lock()
        stopping = true
        wake.signal()
        wake.unlock()
        finished.wait()
        running = false
    }

    private var shouldStop: Bool { wake.withLock { stopping } }

    /// Queries need a model from the first minute, with or without training: with no version yet,
    /// publishes the initial one. Call before `start()`.
    public func publishInitialVersion() throws {
        precondition(!running, "publishInitialVersion() runs before the trainer thread")
        guard versions.latest == nil else { return }
        onPublish(try publish())
    }

    private func run() {
        var lastPublishedStep = versions.latest?.step ?? trainer.stepCount
        var lastPublishedAt = Date()
        var lastSnapshotStep = trainer.stepCount
        var healthyStepsSincePublish = 0
        func publishNow() {
            guard let published = try? publish() else { return }
            lastPublishedStep = published.step
            lastPublishedAt = Date()
            healthyStepsSincePublish = 0
            if settings.priorFromPreviousVersion,
               let next = try? Self.makeInputs(shape: shape, config: trainer.config, settings: settings, prior: published) {
                inputs = next
            }
            onPublish(published)
        }
        var idleSince: Date?
        while !shouldStop {
            heartbeat?()
            guard let batch = nextBatch() else {
                // Idle (the update budget is spent, or too few images): what was learned since the
                // last version is published once the pause lasts, not when images next arrive.
                let since = idleSince ?? Date()
                idleSince = since
                if healthyStepsSincePublish > 0 && Date().timeIntervalSince(since) >= settings.publishWhenIdleSeconds { publishNow() }
                setIdle(true)
                wake.lock()
                if !stopping { _ = wake.wait(until: Date().addingTimeInterval(1)) }
                wake.unlock()
                continue
            }
            setIdle(false)
            idleSince = nil
            let report: StepReport
            do {
                report = trainer.step(try inputs.inputs(batch, step: trainer.stepCount &+ rollbacks << 32))
            } catch {
                // Augmentation refuses only impossible shapes, which the store's canonical shape rules out.
                fatalError("augmentation failed on canonical images: \(error)")
            }
            let healthy = report.updated && report.loss.isFinite && report.collapseMonitor >= collapseFloor
            if !healthy {
                rollBack()
                healthyStepsSincePublish = 0
                rollbacksInARow += 1
                if rollbacksInARow % max(1, settings.rollbackPatience) == 0 {
                    let streaks = rollbacksInARow / max(1, settings.rollbackPatience)
                    let pause = min(settings.rollbackPauseLimit, pow(2, Double(min(streaks - 1, 30))))
                    onRollbackStreak?(trainer.stepCount, rollbacksInARow, pause)
                    pauseAfterRollbacks(pause)
                }
                continue
            }
            rollbacksInARow = 0
            healthyStepsSincePublish += 1
            let now = Date()
            lock.withLock {
                status.step = trainer.stepCount
                status.loss = Dictionary(report.terms.map { ($0.name, Double($0.value)) }, uniquingKeysWith: { a, _ in a })
                status.loss["total"] = Double(report.loss)
                status.collapse = Double(report.collapseMonitor)
                status.gradientShares = report.gradientShares.mapValues(Double.init)
                recentSteps.removeAll { now.timeIntervalSince($0.end) > settings.rateWindowSeconds }
                recentSteps.append((now, trainer.config.batch))
            }
            if trainer.stepCount - lastSnapshotStep >= settings.snapshotEverySteps {
                try? trainer.save(to: snapshotDirectory)
                lastSnapshotStep = trainer.stepCount
            }
            let due = trainer.stepCount - lastPublishedStep >= settings.publishEverySteps
                || Date().timeIntervalSince(lastPublishedAt) >= settings.publishEverySeconds
            if due && healthyStepsSincePublish > 0 { publishNow() }
        }
        try? trainer.save(to: snapshotDirectory)
    }

    /// Publishes the current state as the next version (on the trainer thread, or before it starts).
    private func publish() throws -> PublishedVersion {
        let status = currentStatus
        var metrics = status.loss.mapKeys { "loss.\($0)" }
        metrics["collapse"] = status.collapse
        for (term, share) in status.gradientShares { metrics["gradient_share.\(term)"] = share }
        metrics["images_per_second"] = status.imagesPerSecond
        return try versions.publish(step: trainer.stepCount, metrics: metrics) { directory in
            try trainer.save(to: directory)
        }
    }

    /// A batch of canonical images from the replay set, or nil when the trainer should wait.
    private func nextBatch() -> [UInt8]? {
        let statistics = store.statistics
        let batchSize = trainer.config.batch
        guard statistics.replayMembers >= max(settings.minItems, 2) else { return nil }
        let allowedSteps = Int(Double(statistics.ingested) * settings.updatesPerImage / Double(batchSize))
        guard trainer.stepCount < allowedSteps else { return nil }
        // Draws depend on (seed, step, rollbacks): resumable, and different after a rollback, so a
        // batch that broke the model is not drawn again.
        let position = UInt64(trainer.stepCount &+ rollbacks << 32)
        var rng = SeededGenerator(seed: trainer.config.seed ^ (position &* 0xD1B5_4A32_D192_ED03))
        var pixels: [UInt8] = []
        pixels.reserveCapacity(batchSize * shape.bytesPerImage)
        var attempts = 0
        while pixels.count < batchSize * shape.bytesPerImage && attempts < 4 {
            attempts += 1
            let missing = batchSize - pixels.count / shape.bytesPerImage
            guard let items = try? store.items(store.sampleReplay(missing, using: &rng)) else { return nil }
            // Items deleted or retired since they were sampled are skipped and drawn again.
            for case let item? in items { pixels += item.image.pixels }
        }
        return pixels.count == batchSize * shape.bytesPerImage ? pixels : nil
    }

    /// Waits `seconds` (or until stopped), telling the watchdog every second that the loop lives.
    private func pauseAfterRollbacks(_ seconds: Double) {
        let until = Date().addingTimeInterval(seconds)
        while !shouldStop && Date() < until {
            heartbeat?()
            wake.lock()
            if !stopping { _ = wake.wait(until: min(until, Date().addingTimeInterval(1))) }
            wake.unlock()
        }
    }

    private func rollBack() {
        let config = trainer.config
        let restored = (try? Trainer.resume(from: snapshotDirectory, workers: config.workers, as: config))
            ?? versions.latest.flatMap { try? Trainer.resume(from: URL(fileURLWithPath: $0.path), workers: config.workers, as: config) }
            ?? Trainer(config)
        trainer = restored
        rollbacks += 1
        lock.withLock {
            status.rolledBack += 1
            status.step = trainer.stepCount
        }
    }

    private func setIdle(_ idle: Bool) { lock.withLock { status.idle = idle } }
}

extension Dictionary {
    func mapKeys<T: Hashable>(_ transform: (Key) -> T) -> [T: Value] {
        Dictionary<T, Value>(uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }
}

/// The trainer cannot go on from what is saved: the configuration changed what a resumed run cannot
/// change, or no saved checkpoint can be read. Names the settings, both values, and the way out.
public struct TrainingResumeError: Error, CustomStringConvertible {
    public var changes: [ConfigurationChange] = []
    public var checkpoint = ""
    public var step = 0
    public var unreadable: [String] = []

    init(changes: [ConfigurationChange], checkpoint: String, step: Int) {
        self.changes = changes
        self.checkpoint = checkpoint
        self.step = step
    }

    init(unreadable: [String]) { self.unreadable = unreadable }

    public var description: String {
        let afresh = "to start training afresh (the stored images stay), stop glfd and move the models directory "
            + "(paths.models) and the training snapshot (<paths.state_directory>/training) aside"
        guard unreadable.isEmpty else {
            return "no saved training checkpoint can be read (\(unreadable.joined(separator: "; "))); \(afresh)"
        }
        let lines = changes.map { change in
            "\(change.field.settingKey) is \(change.wanted) in the configuration, but the run saved at step \(step) in \(checkpoint) "
                + "has \(change.saved), and it cannot change on a resumed run: set \(change.field.settingKey) back to \(change.saved)"
        }
        return lines.joined(separator: "; ") + "; or, \(afresh)"
    }
}

extension ConfigurationChange.Field {
    /// The glfd setting that holds this field (glfd.toml), or a description where none does.
    public var settingKey: String {
        switch self {
        case .method: "training.method"
        case .width: "training.width"
        case .depth: "the encoder's depth (not a setting)"
        case .imageSide: "store.canonical_side"
        case .channels: "store.channels"
        case .heads: "the method's head sizes and temperature (not a setting)"
        case .batch: "training.batch"
        case .optimiser: "training.optimiser"
        case .averaging: "training.average_decay (0 = off)"
        case .augmentation: "the augmentation recipe (not a setting)"
        case .learningRate: "training.learning_rate"
        case .weightDecay: "training.weight_decay"
        case .momentum: "the momentum (not a setting)"
        case .warmupSteps: "training.warmup_steps"
        case .totalSteps: "the schedule's length (not a setting)"
        case .adc: "training.adc*"
        case .averageDecay: "training.average_decay"
        case .seed: "training.seed"
        case .compatibility: "the compatibility term (glf train only, not a setting)"
        case .progressive: "the progressive resolution (not a setting)"
        case .smallCrops: "the small crops (glf train only, not a setting)"
        }
    }
}
