// The trainer loop on a real replay store of real CIFAR-10 images: it waits for enough items,
// trains up to its budget of updates per ingested image and then idles (publishing what it learned
// since the last version), publishes versions that a restart resumes from (optimiser state
// included) under the configuration of the restart, refusing changes a resumed run cannot take,
// and the collapse guard rolls broken steps back without publishing.
import Daemon
import Foundation
import GLF
import GLFDTesting
import Neural
import Store
import Testing

final class Published: @unchecked Sendable {
    private let lock = NSLock()
    private var versions: [PublishedVersion] = []
    func add(_ version: PublishedVersion) { lock.withLock { versions.append(version) } }
    var all: [PublishedVersion] { lock.withLock { versions } }

    /// What `onRollbackStreak` was told.
    final class Streaks: @unchecked Sendable {
        private let lock = NSLock()
        private var told: [(step: Int, inARow: Int, pause: Double)] = []
        func add(_ streak: (step: Int, inARow: Int, pause: Double)) { lock.withLock { told.append(streak) } }
        var all: [(step: Int, inARow: Int, pause: Double)] { lock.withLock { told } }
    }
}

@Suite(.serialized) struct ContinuousTrainerTests {
    @Test func trainsToItsBudgetPublishesAndResumes() throws {
        let root = temporaryDaemonDirectory()
        let store = try cifarStore(root.appendingPathComponent("store"), count: 64)
        let versions = try ModelVersions(directory: root.appendingPathComponent("models"), keep: 10)
        var settings = ContinuousTrainer.Settings.forTests
        settings.minItems = 32
        settings.updatesPerImage = 3  // 64 images × 3 / batch 16 = 12 steps, then idle
        settings.publishEverySteps = 5
        settings.snapshotEverySteps = 4
        settings.rateWindowSeconds = 10
        let published = Published()
        let trainer = try ContinuousTrainer(store: store, versions: versions, config: smallTrainingConfig(), settings: settings,
                                            snapshotDirectory: root.appendingPathComponent("training"),
                                            onPublish: { published.add($0) })
        try trainer.publishInitialVersion()
        trainer.start()
        // images/s is over the last 10 s: above 0 while training, back to 0 once idle that long.
        #expect(waitUntil(seconds: 600) { trainer.currentStatus.step >= 3 && trainer.currentStatus.imagesPerSecond > 0 })
        #expect(waitUntil(seconds: 600) { trainer.currentStatus.step == 12 && trainer.currentStatus.idle }, "\(trainer.currentStatus)")
        #expect(waitUntil(seconds: 60) { trainer.currentStatus.imagesPerSecond == 0 && published.all.last?.step == 12 })
        let status = trainer.currentStatus
        trainer.stop()
        #expect(status.loss["total"].map { $0.isFinite } == true, "\(status.loss)")
        #expect(status.collapse > 0)
        #expect(status.rolledBack == 0)
        // ADC's gradient shares reach the status and every version published after a step: LPM's
        // is visible, DCM's is 0 at its default weight (ν = 0) but still reported.
        #expect(status.gradientShares["adc.lpm"].map { $0.isFinite && $0 > 0 } == true, "\(status.gradientShares)")
        #expect(status.gradientShares["adc.dcm"] == 0, "\(status.gradientShares)")
        for term in ["adc.dcm", "adc.lpm"] {
            #expect(published.all.dropFirst().allSatisfy { $0.metrics["gradient_share.\(term)"] != nil }, "\(published.all)")
        }
        // The initial version (step 0), then every 5 steps, and the last steps when it went idle.
        #expect(published.all.map(\.step) == [0, 5, 10, 12], "\(published.all.map(\.step))")
        #expect(versions.latest?.version == 4)
        #expect(FileManager.default.fileExists(atPath: versions.latest!.path + "/model.safetensors"))

        // More images raise the budget; a new trainer resumes at step 12 from its snapshot.
        let decoder = IngestDecoder(canonical: store.configuration.canonical)
        let more = try store.items(Array(1...32)).map { try decoder.item(raw: $0!.image.pixels, width: 32, height: 32, channels: 3) }
        _ = try store.ingestAndWait(more)
        let resumed = try ContinuousTrainer(store: store, versions: versions, config: smallTrainingConfig(), settings: settings,
                                            snapshotDirectory: root.appendingPathComponent("training"),
                                            onPublish: { published.add($0) })
        #expect(resumed.currentStatus.step == 12)
        resumed.start()
        #expect(waitUntil(seconds: 600) { resumed.currentStatus.step == 18 && resumed.currentStatus.idle }, "\(resumed.currentStatus)")
        #expect(waitUntil(seconds: 60) { published.all.last?.step == 18 }, "published once idle: \(published.all.map(\.step))")
        resumed.stop()
        #expect(published.all.map(\.step).suffix(2) == [17, 18], "\(published.all.map(\.step))")
    }

    /// LPM's "previous" prior: the latest version's embeddings instead of pixels, renewed on each
    /// publication (method.md §3).
    @Test func thePriorCanBeThePreviousVersion() throws {
        let root = temporaryDaemonDirectory()
        let store = try cifarStore(root.appendingPathComponent("store"), count: 32)
        let versions = try ModelVersions(directory: root.appendingPathComponent("models"), keep: 10)
        var settings = ContinuousTrainer.Settings.forTests
        settings.minItems = 16
        settings.updatesPerImage = 4  // 8 steps
        settings.publishEverySteps = 3
        settings.priorFromPreviousVersion = true
        let published = Published()
        let trainer = try ContinuousTrainer(store: store, versions: versions, config: smallTrainingConfig(), settings: settings,
                                            snapshotDirectory: root.appendingPathComponent("training"),
                                            onPublish: { published.add($0) })
        try trainer.publishInitialVersion()
        trainer.start()
        #expect(waitUntil(seconds: 600) { trainer.currentStatus.step == 8 && trainer.currentStatus.idle })
        #expect(waitUntil(seconds: 60) { published.all.last?.step == 8 })
        trainer.stop()
        #expect(published.all.map(\.step) == [0, 3, 6, 8])
        #expect(trainer.currentStatus.loss["adc.lpm"].map { $0.isFinite && $0 > 0 } == true, "\(trainer.currentStatus.loss)")
        #expect(trainer.currentStatus.rolledBack == 0)
    }

    /// A trainer on 32 images whose every step counts as collapsed (a floor no real projection
    /// reaches), with `adjust` applied to its settings.
    func alwaysCollapsingTrainer(onPublish: @escaping @Sendable (PublishedVersion) -> Void = { _ in },
                                 _ adjust: (inout ContinuousTrainer.Settings) -> Void) throws -> ContinuousTrainer {
        let root = temporaryDaemonDirectory()
        let store = try cifarStore(root.appendingPathComponent("store"), count: 32)
        let versions = try ModelVersions(directory: root.appendingPathComponent("models"), keep: 10)
        var settings = ContinuousTrainer.Settings.forTests
        settings.minItems = 16
        settings.updatesPerImage = 4
        settings.collapseFloorFraction = 100
        adjust(&settings)
        return try ContinuousTrainer(store: store, versions: versions, config: smallTrainingConfig(), settings: settings,
                                     snapshotDirectory: root.appendingPathComponent("training"), onPublish: onPublish)
    }

    @Test func theCollapseGuardRollsBackAndPublishesNothingBroken() throws {
        let published = Published()
        let trainer = try alwaysCollapsingTrainer(onPublish: { published.add($0) }) { $0.publishEverySteps = 1 }
        try trainer.publishInitialVersion()
        trainer.start()
        #expect(waitUntil(seconds: 600) { trainer.currentStatus.rolledBack >= 3 })
        trainer.stop()
        #expect(trainer.currentStatus.step == 0)
        #expect(published.all.map(\.step) == [0], "only the initial version: \(published.all.map(\.step))")
    }

    /// A model that collapses from every snapshot does not spin: after each streak of
    /// `rollbackPatience` rollbacks the trainer pauses, 1 s then twice as long up to the limit,
    /// says so, and still stops promptly when asked.
    @Test func rollbacksInARowMakeTheTrainerPauseLongerEachTime() throws {
        let trainer = try alwaysCollapsingTrainer { settings in
            settings.rollbackPatience = 3
            settings.rollbackPauseLimit = 2
        }
        let streaks = Published.Streaks()
        trainer.onRollbackStreak = { step, inARow, pause in streaks.add((step, inARow, pause)) }
        try trainer.publishInitialVersion()
        trainer.start()
        #expect(waitUntil(seconds: 600) { streaks.all.count >= 3 })
        // Paused for 2 s now: asked to stop, it returns within the second it waits at most.
        let stopping = Date()
        trainer.stop()
        #expect(Date().timeIntervalSince(stopping) < 30, "stop waited \(Date().timeIntervalSince(stopping)) s")
        let seen = streaks.all
        #expect(seen.prefix(3).map(\.inARow) == [3, 6, 9], "\(seen)")
        #expect(seen.prefix(3).map(\.pause) == [1, 2, 2], "\(seen)")
        #expect(seen.allSatisfy { $0.step == 0 })
        // Pauses of 1 + 2 s between the three streaks: the rollbacks did not run on meanwhile.
        #expect(trainer.currentStatus.rolledBack < 9 + 3 * 3, "\(trainer.currentStatus.rolledBack) rollbacks")
    }

    /// A restart takes what may change on a resumed run from its configuration (learning rate,
    /// ADC) and says so; what may not (batch, method, width) refuses to start, naming the setting,
    /// both values and the way out, rather than train something other than what was configured.
    @Test func aRestartAppliesWhatMayChangeAndRefusesWhatMayNot() throws {
        let root = temporaryDaemonDirectory()
        let store = try cifarStore(root.appendingPathComponent("store"), count: 32)
        let versions = try ModelVersions(directory: root.appendingPathComponent("models"), keep: 10)
        let snapshot = root.appendingPathComponent("training")
        var settings = ContinuousTrainer.Settings.forTests
        settings.minItems = 16
        settings.updatesPerImage = 2  // 4 steps
        let first = try ContinuousTrainer(store: store, versions: versions, config: smallTrainingConfig(), settings: settings,
                                          snapshotDirectory: snapshot, onPublish: { _ in })
        #expect(first.resumedStep == nil)
        try first.publishInitialVersion()
        first.start()
        #expect(waitUntil(seconds: 600) { first.currentStatus.step == 4 && first.currentStatus.idle })
        first.stop()

        var changed = smallTrainingConfig()
        changed.optimiser.learningRate = 0.01
        changed.adc?.lpmWeight = 3
        let resumed = try ContinuousTrainer(store: store, versions: versions, config: changed, settings: settings,
                                            snapshotDirectory: snapshot, onPublish: { _ in })
        #expect(resumed.resumedStep == 4)
        #expect(resumed.currentStatus.step == 4)
        #expect(resumed.config.optimiser.learningRate == 0.01)
        #expect(resumed.config.adc?.lpmWeight == 3)
        #expect(Set(resumed.resumedChanges.map(\.field)) == [.learningRate, .adc], "\(resumed.resumedChanges)")
        // The loop's own settings are not in the checkpoint: they apply anyway, and are told too.
        var faster = settings
        faster.publishEverySteps = 7
        let again = try ContinuousTrainer(store: store, versions: versions, config: changed, settings: faster,
                                          snapshotDirectory: snapshot, onPublish: { _ in })
        #expect(again.settingsChanged.map(\.key) == ["models.publish_every_steps"])
        #expect(again.settingsChanged.first?.before == "\(settings.publishEverySteps)" && again.settingsChanged.first?.now == "7")

        for (change, key) in [({ (c: inout TrainingConfig) in c.batch = 8 }, "training.batch"),
                              ({ (c: inout TrainingConfig) in c.method = .simclr }, "training.method"),
                              ({ (c: inout TrainingConfig) in c.encoder.width = 8 }, "training.width")] {
            var refused = smallTrainingConfig()
            change(&refused)
            do {
                _ = try ContinuousTrainer(store: store, versions: versions, config: refused, settings: settings,
                                          snapshotDirectory: snapshot, onPublish: { _ in })
                Issue.record("\(key): a changed structure must refuse to start")
            } catch let error as TrainingResumeError {
                let message = error.description
                #expect(message.contains(key) && message.contains("step 4") && message.contains("afresh"), "\(message)")
            }
        }
    }
}
