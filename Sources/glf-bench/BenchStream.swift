// glf-bench stream: a labelled image folder streamed into glfd in one of three orders, scored at
// checkpoints from what the daemon serves (StreamBench/StreamRunner.swift says how).
//
// The daemon runs in this process on a fresh state, on glfd's defaults but for the options given,
// publishing a version each time the trainer has spent the budget of what was sent (it publishes
// when it goes idle; the regular cadence is off, so each checkpoint scores the version of exactly
// its share of the stream). The runner speaks only the protocol, so a glfd in another process
// would be measured the same way; in process, the bench also reads the replay set's members at the
// end to count their classes.
//
// The update budget is per distinct image: a camera stream sends each image as several frames,
// and the daemon's updates per image are divided by the frames, so every order trains on the same
// number of images in all (--updates-per-image × images).
import ArgumentParser
import Daemon
import Datasets
import Foundation
import GLF
import Neural
import Store
import StreamBench

struct BenchStream: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "A labelled folder streamed into glfd (iid, class-incremental or camera-like), kNN at checkpoints from the served embeddings.",
        discussion: """
            Writes a JSON with every checkpoint (--out); tools/bench/stream_curves.py draws it. \
            Example: glf-bench stream --train /tmp/cifar/train --test /tmp/cifar/test --per-class 1000 \
            --order camera --replay minred --out runs/stream/camera-minred.json
            """)

    enum Order: String, ExpressibleByArgument, CaseIterable { case iid, classes, camera }
    enum Prior: String, ExpressibleByArgument, CaseIterable { case pixels, previous }

    @Option(help: "Labelled images streamed in: a folder of <class>/<image> (CIFAR-10 train unpacked, say), or IMAGES,LABELS IDX files (Fashion-MNIST).")
    var train: String
    @Option(help: "Labelled images scored at each checkpoint (a folder, or IMAGES,LABELS), against the streamed images as the kNN bank.")
    var test: String
    @Option(help: "Images of each class streamed (the first ones in name order); all if not given.")
    var perClass: Int?
    @Option(help: "Test images of each class.")
    var testPerClass: Int?
    @Option(help: "iid, classes (class-incremental tasks) or camera (tasks of runs of near-duplicate frames).")
    var order = Order.iid
    @Option(help: "Tasks of classes, in sequence (classes, camera).")
    var tasks = 5
    @Option(help: "Frames of one class in a row (camera).")
    var runLength = 100
    @Option(help: "Frames each image is sent as, each shifted and brightened a little (camera).")
    var framesPerImage = 5
    @Option(help: "Checkpoints, evenly spaced over the stream.")
    var checkpoints = 10
    @Option(help: "Training images per distinct image streamed (the daemon's training.updates_per_image, divided by --frames-per-image for camera).")
    var updatesPerImage = 8.0
    @Option(help: "Images per second sent; if not given, each request waits until its update budget is spent.")
    var rate: Double?
    @Option(help: "fifo, reservoir, minred or reservoir-minred.")
    var replay = ReplayPolicyKind.fifo
    @Option(help: "Replay set capacity (items).")
    var replayCapacity = 5_000
    @Option(help: "LPM's prior: pixels, or the previous version's embeddings.")
    var prior = Prior.pixels
    @Flag(help: "Train without ADC.")
    var noADC = false
    @Option(help: "Encoder width of the daemon's model.")
    var width: Int?
    @Option(help: "Trainer threads.")
    var threads: Int?
    @Option(help: "Seed of the stream's order and of the daemon's training.")
    var seed: UInt64 = 0
    @Option(help: "Where the temporary daemon state goes (removed at the end).")
    var dir = "."
    @Option(help: "The JSON written: settings, every checkpoint, final accuracy, area, forgetting.")
    var out: String

    func validate() throws {
        guard tasks >= 1, runLength >= 1, framesPerImage >= 1, checkpoints >= 1, updatesPerImage > 0, replayCapacity >= 2 else {
            throw ValidationError("--tasks, --run-length, --frames-per-image and --checkpoints must be at least 1, --updates-per-image above 0, --replay-capacity at least 2")
        }
        if let rate, rate <= 0 { throw ValidationError("--rate must be above 0") }
    }

    func run() throws {
        warnAboutOpenBLASCore()
        let collection = try Self.load(train, perClass: perClass)
        let testSet = try Self.load(test, perClass: testPerClass)
        let streamOrder: StreamOrder = switch order {
        case .iid: .iid
        case .classes: .classes(tasks: tasks)
        case .camera: .camera(tasks: tasks, runLength: runLength, framesPerImage: framesPerImage)
        }
        let stream = try ImageStream(labels: collection.labels, classCount: collection.classNames.count, order: streamOrder, seed: seed)

        let state = URL(fileURLWithPath: dir).appendingPathComponent(".bench-stream-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: state) }
        let settings = try daemonSettings(state: state)
        print("glf-bench stream: \(collection.count) images of \(train) as \(stream.frames.count) frames, order \(stream.order), seed \(seed)")
        print("  tasks (classes): \(stream.taskClasses.map { $0.map { collection.classNames[$0] }.joined(separator: ",") }.joined(separator: " | "))")
        print("  glfd in process: \(settings.training.method.rawValue)\(settings.training.adc.map { " + ADC (\($0.summary))" } ?? ""), "
              + "width \(settings.training.encoder.width), batch \(settings.training.batch), \(settings.training.workers) threads, "
              + "replay \(settings.store.replay.policy.rawValue) of \(settings.store.replay.capacity), prior \(prior.rawValue), "
              + "\(settings.trainer.updatesPerImage) updates per frame (\(updatesPerImage) per image)")
        print("  scored: kNN (k 20, T 0.07) of \(testSet.count) test images against the \(collection.count) streamed images, at \(checkpoints) checkpoints")

        let daemon = try GLFDaemon(settings: settings)
        daemon.start()
        defer { daemon.stop() }
        var plan = StreamPlan(pacing: rate.map { .rate(imagesPerSecond: $0) }
            ?? .training(updatesPerImage: settings.trainer.updatesPerImage, batch: settings.training.batch, minItems: settings.trainer.minItems))
        plan.checkpoints = checkpoints
        let endpoints = daemon.server.boundEndpoints
        let runner = try StreamRunner(requestEndpoint: endpoints.requests, announceEndpoint: endpoints.announcements,
                                      stream: stream, collection: collection, test: testSet, plan: plan)
        print("    frames  seconds     step  version  members  embedded  distinct     kNN  by task                          replay members by task")
        let result = try runner.run(replaySet: { daemon.store.replayMemberIDs }) { c in
            print(String(format: "  %8d %8.0f %8d %8d %8d %9d %9d %6.2f%%  %@   %@", c.frames, c.seconds, c.step, c.version, c.replayMembers,
                         c.replayEmbedded, c.replayDistinctImages ?? 0, c.knn * 100,
                         c.knnByTask.map { String(format: "%.2f", $0 * 100) }.joined(separator: " "),
                         (c.replayByTask ?? []).map(String.init).joined(separator: " ")))
        }
        let replayClasses = Self.classesOf(daemon.store.replayMemberIDs, ids: result.ids, frames: stream.frames, labels: collection.labels)
        print(String(format: "  final %.2f%%, area %.2f%%, forgetting (task 1: best − last) %.2f points; replay set at the end: %d members of %d classes",
                     result.final * 100, result.area * 100, result.forgetting * 100, daemon.store.replayMemberIDs.count, replayClasses))
        try write(result, settings: settings, replayClasses: replayClasses, collection: collection)
        print("  wrote \(out)")
    }

    /// glfd's defaults on `state`, but for the options, loopback ports, and versions published
    /// only when the trainer goes idle (each checkpoint's wait), not on a cadence of its own.
    private func daemonSettings(state: URL) throws -> DaemonSettings {
        var settings = DaemonSettings(stateDirectory: state)
        settings.server.requestEndpoint = "tcp://127.0.0.1:*"
        settings.server.announceEndpoint = "tcp://127.0.0.1:*"
        if let width { settings.training.encoder = EncoderConfig(inputChannels: 3, imageSize: 32, width: width) }
        if let threads { settings.training.workers = threads }
        if noADC { settings.training.adc = nil }
        settings.training.seed = seed
        settings.store.replay = ReplayConfiguration(policy: replay, capacity: replayCapacity, seed: seed)
        settings.trainer.updatesPerImage = updatesPerImage / Double(order == .camera ? framesPerImage : 1)
        settings.trainer.priorFromPreviousVersion = prior == .previous
        settings.trainer.minItems = min(settings.trainer.minItems, replayCapacity)
        settings.trainer.publishEverySteps = Int.max / 2
        settings.trainer.publishEverySeconds = .greatestFiniteMagnitude
        settings.trainer.publishWhenIdleSeconds = 2
        try settings.training.adc?.validate(batch: settings.training.batch)
        return settings
    }

    /// A folder at 32 × 32 RGB, or IDX files at their own size (gray), the first `perClass` images
    /// of each class.
    static func load(_ spec: String, perClass: Int?) throws -> LabelledImages {
        let parts = spec.split(separator: ",").map(String.init)
        guard parts.count == 2 else { return try LabelledImages.imageFolder(spec, side: 32, limitPerClass: perClass) }
        let all = try LabelledImages.idx(images: parts[0], labels: parts[1])
        guard let perClass else { return all }
        var taken: [Int: Int] = [:]
        return all.subset(all.labels.indices.filter { index in
            taken[all.labels[index], default: 0] += 1
            return taken[all.labels[index]]! <= perClass
        })
    }

    /// Distinct classes among the replay set's members.
    static func classesOf(_ members: [UInt64], ids: [UInt64], frames: [StreamFrame], labels: [Int]) -> Int {
        let frameOf = Dictionary(uniqueKeysWithValues: zip(ids, frames))
        return Set(members.compactMap { frameOf[$0].map { labels[$0.image] } }).count
    }

    private func write(_ result: StreamRunResult, settings: DaemonSettings, replayClasses: Int, collection: LabelledImages) throws {
        struct Report: Encodable {
            var settings: [String: String]
            var final: Double, area: Double, forgetting: Double
            var replayClassesAtEnd: Int
            var checkpoints: [StreamCheckpoint]
            var taskClasses: [[String]]
            var taskStarts: [Int]
            var announcedVersions: [Int]
            var drift: [DriftPoint]
        }
        let report = Report(
            settings: ["order": result.order, "train": train, "test": test, "images": "\(collection.count)",
                       "frames": "\(result.frames)", "replay": replay.rawValue, "replay_capacity": "\(replayCapacity)",
                       "prior": prior.rawValue, "adc": settings.training.adc?.summary ?? "off",
                       "updates_per_image": "\(updatesPerImage)", "pacing": rate.map { "\($0) images/s" } ?? "training",
                       "width": "\(settings.training.encoder.width)", "batch": "\(settings.training.batch)",
                       "threads": "\(settings.training.workers)", "seed": "\(seed)"],
            final: result.final, area: result.area, forgetting: result.forgetting, replayClassesAtEnd: replayClasses,
            checkpoints: result.checkpoints,
            taskClasses: result.taskClasses.map { $0.map { collection.classNames[$0] } }, taskStarts: result.taskStarts, announcedVersions: result.announcedVersions,
            drift: result.drift)
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        try encoder.encode(report).write(to: URL(fileURLWithPath: out))
    }
}
extension ReplayPolicyKind: ExpressibleByArgument {}
