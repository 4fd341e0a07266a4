import Daemon
import Datasets
import Foundation
import GLF
import GLFDTesting
import Store
import StreamBench
import Testing

/// The stream benchmark against a real glfd (in process, real ZeroMQ sockets, a real LMDB store,
/// real CIFAR-10 images, the tests' small model): what it scores is what the daemon served.
@Suite(.serialized) struct StreamRunnerTests {
    /// 8 images of each class streamed, 4 of each kept back as the test split.
    static func collections() throws -> (stream: LabelledImages, test: LabelledImages) {
        let all = try cifarCollection(perClass: 12)
        let streamed = all.labels.indices.filter { $0 % 12 < 8 }, held = all.labels.indices.filter { $0 % 12 >= 8 }
        return (all.subset(streamed), all.subset(held))
    }

    /// The tests' daemon, publishing only when the trainer goes idle: once the budget of what was
    /// sent is spent, which is where the runner's checkpoints wait for a version.
    static func settings(_ state: URL, replay: ReplayPolicyKind = .fifo, capacity: Int = 65_536) -> DaemonSettings {
        var settings = testDaemonSettings(state)
        settings.trainer.publishEverySteps = 1_000_000
        settings.trainer.publishEverySeconds = 1e9
        settings.trainer.publishWhenIdleSeconds = 0.5
        settings.store.replay = ReplayConfiguration(policy: replay, capacity: capacity)
        return settings
    }

    /// Streams `stream` into a fresh daemon with `settings` (the state removed after), and hands
    /// the result and the still running daemon to `inspect`.
    static func run<T>(_ stream: ImageStream, of streamed: LabelledImages, test: LabelledImages, settings: DaemonSettings,
                       checkpoints: Int, inspect: (StreamRunResult, GLFDaemon) throws -> T) throws -> T {
        defer { try? FileManager.default.removeItem(at: settings.stateDirectory) }
        let daemon = try GLFDaemon(settings: settings)
        daemon.start()
        defer { daemon.stop() }
        let endpoints = daemon.server.boundEndpoints
        let runner = try StreamRunner(requestEndpoint: endpoints.requests, announceEndpoint: endpoints.announcements,
                                      stream: stream, collection: streamed, test: test, plan: plan(settings, checkpoints: checkpoints))
        return try inspect(try runner.run(), daemon)
    }

    static func plan(_ settings: DaemonSettings, checkpoints: Int) -> StreamPlan {
        var plan = StreamPlan(pacing: .training(updatesPerImage: settings.trainer.updatesPerImage, batch: settings.training.batch,
                                                minItems: settings.trainer.minItems))
        plan.checkpoints = checkpoints
        plan.imagesPerRequest = 10
        plan.patience = 120
        return plan
    }

    @Test func checkpointsScoreVersionsTheDaemonAnnouncedAtTheBudgetsSteps() throws {
        let (streamed, test) = try Self.collections()
        let stream = try ImageStream(labels: streamed.labels, classCount: 10, order: .classes(tasks: 2), seed: 4)
        let settings = Self.settings(temporaryDaemonDirectory())
        let (result, stored) = try Self.run(stream, of: streamed, test: test, settings: settings, checkpoints: 4) { result, daemon in
            (result, try daemon.store.items(result.ids).allSatisfy { $0 != nil })
        }

        #expect(result.checkpoints.map(\.frames) == [20, 40, 60, 80])
        #expect(result.ids.count == 80 && Set(result.ids).count == 80 && stored)
        for checkpoint in result.checkpoints {
            // A version the daemon announced, published at the steps the budget allows for what was sent.
            #expect(result.announcedVersions.contains(checkpoint.version))
            let allowed = checkpoint.frames >= settings.trainer.minItems
                ? Int(Double(checkpoint.frames) * settings.trainer.updatesPerImage / Double(settings.training.batch)) : 0
            #expect(checkpoint.step == allowed)
            #expect((0...1).contains(checkpoint.knn) && checkpoint.knnByTask.count == 2)
            #expect(checkpoint.knnByTask.allSatisfy { (0...1).contains($0) })
        }
        #expect(zip(result.checkpoints, result.checkpoints.dropFirst()).allSatisfy { $0.version < $1.version })
        // Each task's classes are half of the test split: the overall score is their mean.
        let last = result.checkpoints.last!
        #expect(abs(last.knn - (last.knnByTask[0] + last.knnByTask[1]) / 2) < 1e-9)
    }

    /// A camera stream full of near-duplicates (each image 8 frames in a row, runs of 5 images of
    /// one class) into a replay set of 40: fifo keeps the last 40 frames, a class or two, while
    /// minred evicts the frames most like another member and keeps more classes (5 against 2 when
    /// written). Its choices are only as good as the embeddings: with the BYOL test model, which
    /// collapses on so few images, minred kept 2 classes too.
    @Test func minredKeepsMoreClassesThanFifoOnACameraStream() throws {
        let (streamed, test) = try Self.collections()
        let stream = try ImageStream(labels: streamed.labels, classCount: 10,
                                     order: .camera(tasks: 1, runLength: 40, framesPerImage: 8), seed: 5)
        var classes: [ReplayPolicyKind: Int] = [:]
        for policy in [ReplayPolicyKind.fifo, .minred] {
            var settings = Self.settings(temporaryDaemonDirectory(), replay: policy, capacity: 40)
            settings.training = smallLearningConfig()     // minred chooses by what the embeddings say
            let (result, members) = try Self.run(stream, of: streamed, test: test, settings: settings, checkpoints: 2) {
                ($0, $1.store.replayMemberIDs)
            }
            let label = Dictionary(uniqueKeysWithValues: zip(result.ids, stream.frames.map { streamed.labels[$0.image] }))
            #expect(members.count == 40)
            classes[policy] = Set(members.compactMap { label[$0] }).count
        }
        #expect(classes[.fifo]! <= 2, "\(classes)")
        #expect(classes[.minred]! > classes[.fifo]!, "\(classes)")
    }
}
