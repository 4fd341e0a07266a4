// A running glfd fed a labelled collection as a stream (issue 15), through its protocol only, and
// scored at checkpoints from what it serves.
//
//   send        the stream's frames as raw 8-bit images (jitter applied), `imagesPerRequest` per
//               ingest request, the frame's task as the source tag; each acknowledged id is kept,
//               so a caller can map the daemon's items back to labels
//   pacing      `training`: after each request, wait until the trainer has taken the steps the
//               daemon's update budget allows for what was ingested (steps = ingested × updates
//               per image / batch, the daemon's own rule), so every image gets the same updates
//               whatever the machine's speed; `rate`: send at a set number of images per second
//               and let training keep up as it can (a real feed)
//   checkpoint  after each `1/checkpoints` of the stream: wait for the budget, then for a version
//               published at the trainer's current step (glfd publishes when it goes idle; under
//               `rate` pacing the version served at that moment, sending paused meanwhile), then
//               embed the evaluation bank (the collection's images, untouched) and the test split
//               by `embed` requests and score kNN (k 20, T 0.07, as `glf eval knn`) on every class
//               and on each task's classes. Every vector of a checkpoint must come from one
//               version, one the daemon announced; otherwise the checkpoint is measured again
//               (three tries)
//
// Nothing here reads the daemon's files or memory: a glfd in another process, or on another
// machine, is measured the same way.
import Datasets
import Foundation
import GLF
import GLFDClient
import Neural
import Protocol
import ZeroMQ

public struct StreamPlan: Sendable {
    public enum Pacing: Sendable, Equatable {
        /// Wait after each request until the daemon's update budget for it is spent. These are the
        /// daemon's `training.updates_per_image`, `training.batch` and `training.min_items`.
        case training(updatesPerImage: Double, batch: Int, minItems: Int)
        case rate(imagesPerSecond: Double)
    }

    public var pacing: Pacing
    public var checkpoints = 10
    public var imagesPerRequest = 64
    /// Embed requests in flight while a checkpoint embeds its bank.
    public var inflight = 8
    /// Longest wait for the budget to be spent or a version to appear, seconds.
    public var patience: Double = 1800

    public init(pacing: Pacing) { self.pacing = pacing }
}

public struct StreamCheckpoint: Codable, Sendable, Equatable {
    /// Frames sent so far, and their share of the stream.
    public var frames: Int
    public var fraction: Double
    /// The version scored, and the trainer step it was published at.
    public var version: Int
    public var step: Int
    /// Seconds since the stream began.
    public var seconds: Double
    /// kNN top-1 on the whole test split, and on the test images of each task's classes.
    public var knn: Double
    public var knnByTask: [Double]
    public var replayMembers: Int
    /// Of them, the members MinRed's view has an embedding of (0 under fifo and reservoir, which need none): when
    /// far below `replayMembers`, MinRed chooses among few and keeps the unseen arrivals.
    public var replayEmbedded: Int
    /// The replay members by the task of the frame they came from, and the distinct images among
    /// them (a camera sends each image several times); nil unless the runner was shown the
    /// daemon's replay set (`run(replaySet:)`, a glfd in process: the protocol does not list it).
    public var replayByTask: [Int]?
    public var replayDistinctImages: Int?
}

/// Status's drift after a request: how far the newest arrivals lie from the replay set.
public struct DriftPoint: Codable, Sendable, Equatable {
    public var frames: Int
    public var version: Int
    public var score: Double?
    public var arrivals: Int
    /// The newest item id the score has measured.
    public var checkedThrough: UInt64
}

public struct StreamRunResult: Codable, Sendable {
    public var order: String
    public var frames: Int
    public var taskClasses: [[Int]]
    public var taskStarts: [Int]
    public var checkpoints: [StreamCheckpoint]
    /// The daemon's id of each frame, in stream order.
    public var ids: [UInt64]
    /// Every version the daemon announced while the stream ran.
    public var announcedVersions: [Int]
    /// Status's drift after each request (none from a daemon without it).
    public var drift: [DriftPoint]

    public var final: Double { checkpoints.last?.knn ?? .nan }
    /// The mean accuracy over the checkpoints: the area under accuracy against the stream's
    /// fraction (the checkpoints are evenly spaced).
    public var area: Double { checkpoints.isEmpty ? .nan : checkpoints.map(\.knn).reduce(0, +) / Double(checkpoints.count) }
    /// The first task's drop from its best checkpoint to the last.
    public var forgetting: Double {
        let first = checkpoints.compactMap(\.knnByTask.first)
        guard let last = first.last, let best = first.max() else { return .nan }
        return best - last
    }
}

public struct StreamBenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public final class StreamRunner {
    public let stream: ImageStream
    public let collection: LabelledImages
    public let test: LabelledImages
    public let plan: StreamPlan
    private let client: GLFDClient
    private let announcements: ZMQSocket
    private var announced: Set<Int> = []

    /// `collection` is what `stream` indexes; `test` is scored against it as the kNN bank. Both
    /// must have the daemon's canonical side (the frames go in raw).
    public init(requestEndpoint: String, announceEndpoint: String, stream: ImageStream, collection: LabelledImages,
                test: LabelledImages, plan: StreamPlan) throws {
        guard collection.classNames == test.classNames, collection.channels == test.channels,
              collection.height == test.height, collection.width == test.width else {
            throw StreamBenchError("the collection and the test split differ in classes or image shape")
        }
        self.stream = stream
        self.collection = collection
        self.test = test
        self.plan = plan
        client = try GLFDClient(endpoint: requestEndpoint, timeoutMilliseconds: 600_000)
        announcements = try ZMQSocket(context: try ZMQContext(), type: .sub)
        try announcements.subscribe(Array(GLFDProtocol.announcementTopic.utf8))
        try announcements.connect(announceEndpoint)
    }

    /// Sends the whole stream; `progress` hears each checkpoint as it is scored. `replaySet`, if
    /// given, reads the daemon's replay members at each checkpoint.
    public func run(replaySet: (() -> [UInt64])? = nil,
                    progress: (StreamCheckpoint) -> Void = { _ in }) throws -> StreamRunResult {
        let started = ContinuousClock.now
        let frames = stream.frames
        let marks = (1...plan.checkpoints).map { frames.count * $0 / plan.checkpoints }
        var ids: [UInt64] = []
        var checkpoints: [StreamCheckpoint] = []
        var drift: [DriftPoint] = []
        var sent = 0
        if let last = try client.result(.lastAnnouncement, as: LastAnnouncementResult.self).announcement {
            announced.insert(last.version)
        }
        for mark in marks {
            while sent < mark {
                let end = min(sent + plan.imagesPerRequest, mark)
                ids += try ingest(frames[sent..<end])
                sent = end
                let status = try pace(sent: sent, since: started)
                if let d = status.drift {
                    drift.append(DriftPoint(frames: sent, version: d.version, score: d.score, arrivals: d.arrivals,
                                            checkedThrough: d.checkedThrough))
                }
            }
            var checkpoint = try score(frames: sent, since: started)
            if let members = replaySet?() {
                let frameOf = Dictionary(uniqueKeysWithValues: zip(ids, frames))
                let memberFrames = members.compactMap { frameOf[$0] }
                checkpoint.replayByTask = stream.taskClasses.indices.map { task in memberFrames.filter { $0.task == task }.count }
                checkpoint.replayDistinctImages = Set(memberFrames.map(\.image)).count
            }
            checkpoints.append(checkpoint)
            progress(checkpoint)
        }
        drainAnnouncements()
        return StreamRunResult(order: stream.order.description, frames: frames.count, taskClasses: stream.taskClasses,
                               taskStarts: stream.taskStarts, checkpoints: checkpoints, ids: ids,
                               announcedVersions: announced.sorted(), drift: drift)
    }

    // MARK: Sending

    private func ingest(_ frames: ArraySlice<StreamFrame>) throws -> [UInt64] {
        let size = collection.bytesPerImage
        let payloads = frames.map { frame in
            let image = collection.pixels[frame.image * size ..< (frame.image + 1) * size]
            let pixels = frame.jitter.apply(image, height: collection.height, width: collection.width, channels: collection.channels)
            return ImagePayload(pixels, ImageDescriptor(format: .raw, width: collection.width, height: collection.height,
                                                        channels: collection.channels, source: "task\(frame.task)"))
        }
        let result = try client.result(.ingest(payloads), as: IngestResult.self)
        guard result.ids.count == frames.count else {
            throw StreamBenchError("ingest acknowledged \(result.ids.count) of \(frames.count) images")
        }
        return result.ids
    }

    /// Waits as the plan says after `sent` frames; the status at the end of the wait.
    private func pace(sent: Int, since started: ContinuousClock.Instant) throws -> StatusResult {
        switch plan.pacing {
        case .rate(let imagesPerSecond):
            let due = Double(sent) / imagesPerSecond - started.duration(to: .now) / .seconds(1)
            if due > 0 { Thread.sleep(forTimeInterval: due) }
            return try client.result(.status, as: StatusResult.self)
        case .training:
            return try waitForBudget()
        }
    }

    /// The trainer's steps allowed so far by the daemon's rule, or nil while it has too few members to train.
    private func allowedSteps(_ status: StatusResult) -> Int? {
        guard case .training(let updatesPerImage, let batch, let minItems) = plan.pacing else { return nil }
        guard status.store.replayMembers >= max(minItems, 2) else { return nil }
        return Int(Double(status.store.ingested) * updatesPerImage / Double(batch))
    }

    @discardableResult
    private func waitForBudget() throws -> StatusResult {
        let deadline = ContinuousClock.now + .seconds(plan.patience)
        while true {
            let status = try client.result(.status, as: StatusResult.self)
            guard let allowed = allowedSteps(status), status.training.step < allowed else { return status }
            guard ContinuousClock.now < deadline else {
                throw StreamBenchError("training stayed at step \(status.training.step) of \(allowed) allowed for \(plan.patience) s")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    // MARK: Scoring

    /// Waits for the budget and a version of the trainer's current step, then scores it; again if
    /// the version changed while its vectors were fetched.
    private func score(frames: Int, since started: ContinuousClock.Instant) throws -> StreamCheckpoint {
        for _ in 0..<3 {
            if case .training = plan.pacing { try waitForBudget() }
            let status = try waitForVersionOfCurrentStep()
            let bank = try embed(collection)
            let queries = try embed(test)
            // A SUB may miss what was published before its subscription reached the daemon: the
            // daemon's record of its last announcement fills that gap.
            drainAnnouncements()
            if !announced.contains(status.model.version),
               let last = try client.result(.lastAnnouncement, as: LastAnnouncementResult.self).announcement {
                announced.insert(last.version)
            }
            guard bank.version == status.model.version, queries.version == status.model.version,
                  announced.contains(bank.version) else { continue }
            let knn = KNNClassifier()
            let predictions = knn.predict(memory: Tensor(shape: [collection.count, bank.dimension], values: bank.vectors),
                                          memoryLabels: collection.labels,
                                          queries: Tensor(shape: [test.count, queries.dimension], values: queries.vectors),
                                          classes: collection.classNames.count)
            func accuracy(_ indices: [Int]) -> Double {
                indices.isEmpty ? .nan : Double(indices.filter { predictions[$0] == test.labels[$0] }.count) / Double(indices.count)
            }
            let byTask = stream.taskClasses.map { classes in accuracy(test.labels.indices.filter { classes.contains(test.labels[$0]) }) }
            return StreamCheckpoint(frames: frames, fraction: Double(frames) / Double(stream.frames.count),
                                    version: status.model.version, step: status.model.step,
                                    seconds: started.duration(to: .now) / .seconds(1),
                                    knn: accuracy(Array(test.labels.indices)), knnByTask: byTask,
                                    replayMembers: status.store.replayMembers, replayEmbedded: status.store.replayEmbedded)
        }
        throw StreamBenchError("three times in a row the vectors of a checkpoint came from more than one version, or one never announced")
    }

    /// The status once the served version was published at the trainer's current step (under
    /// `rate` pacing, once any version is served).
    private func waitForVersionOfCurrentStep() throws -> StatusResult {
        let deadline = ContinuousClock.now + .seconds(plan.patience)
        while true {
            let status = try client.result(.status, as: StatusResult.self)
            // Under `rate` pacing training does not wait for the stream: the version served now is
            // what a client of the feed gets. A rollback may leave the trainer behind its last version.
            if case .rate = plan.pacing, status.model.version > 0 { return status }
            if status.model.version > 0 && status.model.step >= status.training.step { return status }
            guard ContinuousClock.now < deadline else {
                throw StreamBenchError("no version of step \(status.training.step) in \(plan.patience) s (latest: version \(status.model.version), step \(status.model.step))")
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    /// The images' embeddings under one version, or the version -1 if the replies disagree.
    private func embed(_ images: LabelledImages) throws -> (version: Int, dimension: Int, vectors: [Float]) {
        let size = images.bytesPerImage
        let requests = stride(from: 0, to: images.count, by: plan.imagesPerRequest).map { start in
            Command.embed((start..<min(start + plan.imagesPerRequest, images.count)).map { index in
                ImagePayload(Array(images.pixels[index * size ..< (index + 1) * size]),
                             ImageDescriptor(format: .raw, width: images.width, height: images.height, channels: images.channels))
            })
        }
        var versions: Set<Int> = [], dimension = 0, vectors: [Float] = []
        for reply in try client.pipeline(requests, inflight: plan.inflight).replies {
            let result = try reply.result(as: EmbedResult.self)
            versions.insert(result.version)
            dimension = result.dim
            for frame in reply.payloads {
                guard let vector = VectorFrame.decode(frame, dimension: result.dim) else {
                    throw StreamBenchError("an embed reply's vector frame has \(frame.count) bytes, not \(result.dim) × 4")
                }
                vectors += vector
            }
        }
        guard vectors.count == images.count * dimension else {
            throw StreamBenchError("embed answered \(vectors.count / max(dimension, 1)) vectors for \(images.count) images")
        }
        return (versions.count == 1 ? versions.first! : -1, dimension, vectors)
    }

    private func drainAnnouncements() {
        while let message = try? announcements.receive(dontWait: true),
              let announcement = try? Announcement.decode(message) {
            announced.insert(announcement.version)
        }
    }
}
