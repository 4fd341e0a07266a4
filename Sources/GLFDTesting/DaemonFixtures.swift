// A daemon's fixtures for the tests: real CIFAR-10 JPEGs, a small model that trains in seconds,
// settings on loopback ports, fresh state directories, and a wait for a condition.
import Daemon
import Datasets
import Foundation
import GLF
import Imaging
import Neural
import Store

/// A fresh, unique directory path under the temporary directory (not created).
public func temporaryDaemonDirectory(_ name: String = #function) -> URL {
    URL(fileURLWithPath: NSTemporaryDirectory() + "glfd-daemon-\(name.filter(\.isLetter))-\(UUID().uuidString)")
}

/// CIFAR-10's class folders, in label order.
private let cifarClasses = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

/// Unpacks `members` (paths like "test/cat/0001.jpg") of ../shared's CIFAR-10 test archive into a
/// temporary folder, hands the folder to `body`, and removes it.
private func withCIFARTestFiles<Result>(_ members: [String], _ body: (String) throws -> Result) throws -> Result {
    let archive = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/data/cifar10/test.tar.gz").standardized.path
    let unpacked = NSTemporaryDirectory() + "glfd-cifar-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: unpacked) }
    let tar = Process()
    tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
    tar.arguments = ["-xzf", archive, "-C", unpacked] + members
    try tar.run()
    tar.waitUntilExit()
    return try body(unpacked)
}

/// The first `count` JPEGs of CIFAR-10's test split, cycling through the ten classes, as files' bytes.
public func cifarFiles(_ count: Int) throws -> [[UInt8]] {
    let members = (0..<count).map { String(format: "test/\(cifarClasses[$0 % 10])/%04d.jpg", $0 / 10 + 1) }
    return try withCIFARTestFiles(members) { folder in
        try members.map { try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0))) }
    }
}

/// CIFAR-10's test split, the first `perClass` images of each class, decoded at 32 × 32 RGB: a
/// labelled collection for the stream benchmark's tests (split it into a stream and a test set).
public func cifarCollection(perClass: Int) throws -> LabelledImages {
    let members = cifarClasses.flatMap { c in (1...perClass).map { String(format: "test/\(c)/%04d.jpg", $0) } }
    return try withCIFARTestFiles(members) { folder in try LabelledImages.imageFolder(folder + "/test", side: 32) }
}

/// A store of `count` CIFAR-10 test images (`cifarFiles`), ingested through the real decode path.
public func cifarStore(_ directory: URL, count: Int) throws -> ImageStore {
    let store = try ImageStore(StoreConfiguration(directory: directory.path))
    let decoder = IngestDecoder(canonical: store.configuration.canonical)
    _ = try store.ingestAndWait(try cifarFiles(count).map { try decoder.item(encoded: $0) })
    return store
}

/// BYOL on a width-4 encoder at batch 16, one core: a step takes milliseconds.
public func smallTrainingConfig() -> TrainingConfig {
    var config = TrainingConfig()
    config.method = .byol
    config.encoder = EncoderConfig(inputChannels: 3, imageSize: 32, width: 4, blocksPerStage: [1, 1])
    config.heads = MethodConstants(hidden: 32, projection: 16, predictorHidden: 32)
    config.batch = 16
    config.adc?.perplexity = 5      // below batch − 1, or ADC's targets are all uniform
    config.workers = 1
    config.optimiser.warmupSteps = 0
    config.optimiser.learningRate = 0.06
    config.averageDecay = nil
    return config
}

/// SimCLR without ADC on a width-8 encoder at batch 32, one core: it learns from a few hundred
/// images in seconds, where `smallTrainingConfig`'s BYOL collapses and is rolled back for ever.
/// For the tests that read what the embeddings say (drift, MinRed's choices).
public func smallLearningConfig() -> TrainingConfig {
    var config = smallTrainingConfig()
    config.method = .simclr
    config.adc = nil
    config.batch = 32
    config.encoder = EncoderConfig(inputChannels: 3, imageSize: 32, width: 8, blocksPerStage: [1, 1])
    return config
}

extension ContinuousTrainer.Settings {
    /// The tests share 2 cores with the whole suite: a trainer at nice 10 would wait for all of it.
    /// The small model may collapse for a while; its rollbacks pause only briefly, so that the
    /// tests that wait for versions are not held up by the pauses a daemon takes.
    public static var forTests: Self {
        var settings = Self()
        settings.nice = 0
        settings.rollbackPauseLimit = 0.1
        settings.publishWhenIdleSeconds = 0.5
        return settings
    }
}

/// A daemon on `state` with the small model, on loopback ports the system picks: training starts
/// at 32 items, 2 updates per image, a version every 4 steps.
public func testDaemonSettings(_ state: URL) -> DaemonSettings {
    var settings = DaemonSettings(stateDirectory: state)
    settings.server.requestEndpoint = "tcp://127.0.0.1:*"
    settings.server.announceEndpoint = "tcp://127.0.0.1:*"
    settings.training = smallTrainingConfig()
    settings.trainer = .forTests
    settings.trainer.minItems = 32
    settings.trainer.updatesPerImage = 2
    settings.trainer.publishEverySteps = 4
    return settings
}

/// A daemon on `state` with `testDaemonSettings` and training off, started: it serves the untrained
/// version 1, so what it answers depends only on what the test stores. The caller stops it.
public func startedServingDaemon(_ state: URL) throws -> GLFDaemon {
    var settings = testDaemonSettings(state)
    settings.trainingEnabled = false
    let daemon = try GLFDaemon(settings: settings)
    daemon.start()
    return daemon
}

/// Polls `condition` every 20 ms for up to `seconds`; whether it held.
public func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}
