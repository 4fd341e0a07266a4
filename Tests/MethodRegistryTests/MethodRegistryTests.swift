// Adding a method is two files and one registry line. The method here was written only for this
// test (AlignmentUniformityLoss.swift, AlignmentUniformity.swift); one `register` line makes it a
// choice of glfd's configuration and of `glf train`, and it trains through both. The shipped
// methods are the choices the configuration lists and the command line offers.
import Configuration
import Daemon
import Foundation
import GLF
import GLFDClient
import GLFDTesting
import Neural
import Protocol
import Testing
@testable import glf

@Suite(.serialized) struct MethodRegistryTests {
    init() { MethodRegistry.register(AlignmentUniformity.self) }

    @Test func theLossesGradientMatchesFiniteDifferences() {
        let x = randomUnitRows([8, 5], seed: 3)
        let gradient = Tensor(zeros: x.shape)
        _ = AlignmentUniformityLoss().loss(x, aligningScale: 0.7, constrainingScale: 1.3, gradient: gradient)
        let scratch = Tensor(zeros: x.shape)
        let report = GradientCheck().run([("x", x, gradient)]) {
            let (a, u) = AlignmentUniformityLoss().loss(x, aligningScale: 0, constrainingScale: 0, gradient: scratch)
            return 0.7 * a + 1.3 * u
        }
        #expect(report.worstError < 1e-2, "\(report)")
    }

    @Test func alignmentIsZeroForIdenticalViewsAndUniformityIsHighestWhenCollapsed() {
        let view = randomUnitRows([4, 6], seed: 5)
        let both = Tensor(shape: [8, 6], values: view.array + view.array)
        let spread = AlignmentUniformityLoss().loss(both, aligningScale: 1, constrainingScale: 1, gradient: Tensor(zeros: [8, 6]))
        #expect(spread.aligning == 0)
        let collapsed = Tensor(shape: [8, 6], values: Array(repeating: view.array.prefix(6), count: 8).flatMap { $0 })
        let point = AlignmentUniformityLoss().loss(collapsed, aligningScale: 1, constrainingScale: 1, gradient: Tensor(zeros: [8, 6]))
        #expect(abs(point.constraining) < 1e-6 && spread.constraining < point.constraining)
    }

    @Test func theShippedMethodsAreTheChoicesOfTheConfigurationAndTheCommandLine() throws {
        let shipped = MethodRegistry.shipped.map { $0.name.rawValue }
        let key = try #require(GLFDConfiguration.keys.first { $0.name == "training.method" })
        #expect(key.type == .choice(shipped))
        #expect(Set(MethodName.allValueStrings).isSuperset(of: shipped))
        #expect(MethodName.allCases.map(\.rawValue).contains("alignment-uniformity"))
        #expect(MethodName(rawValue: "no-such-method") == nil)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(MethodName.self, from: Data("\"no-such-method\"".utf8)) }
    }

    @Test func aRunsConstantsReplaceTheRecipesAndTheRestKeepIt() throws {
        let constants = MethodConstants(hidden: 64, temperature: 0.5)
        let simclr = try #require(MethodRegistry.method(.simclr, constants: constants) as? SimCLR)
        #expect(simclr.temperature == 0.5 && simclr.hiddenDimension == 64 && simclr.projectionDimension == SimCLR().projectionDimension)
        let swav = try #require(MethodRegistry.method(.swav, constants: constants) as? SwAV)
        #expect(swav.aligning.temperature == 0.5 && swav.prototypesConfig.count == SwAV().prototypesConfig.count)
        let command = try Train.parse(["--data", "d", "--out", "o", "--steps", "2", "--warmup", "0", "--temperature", "0.1"])
        #expect(try command.makeConfig(channels: 3).heads.temperature == 0.1)
        #expect(throws: (any Error).self) { try Train.parse(["--data", "d", "--out", "o", "--steps", "2", "--warmup", "0", "--temperature", "0"]) }
    }

    @Test func aRegisteredMethodTrainsThroughGlfdsConfiguration() throws {
        let state = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: state) }
        let configuration = try GLFDConfiguration.load(file: nil, environment: [:], overrides: [
            "paths.state_directory=\(state.path)", "server.request_endpoint=tcp://127.0.0.1:*",
            "server.announce_endpoint=tcp://127.0.0.1:*", "metrics.endpoint=", "training.method=alignment-uniformity",
            "training.width=4", "training.batch=16", "training.threads=1", "training.nice=0", "training.warmup_steps=0",
            "training.adc_perplexity=5", "training.min_items=32", "training.updates_per_image=2", "models.publish_every_steps=4",
        ])
        let daemon = try GLFDaemon(settings: try DaemonSettings(configuration))
        #expect(daemon.settings.training.method.rawValue == "alignment-uniformity")
        daemon.start()
        defer { daemon.stop() }
        let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests)
        for start in stride(from: 0, to: 64, by: 16) {
            _ = try client.result(.ingest(try cifarFiles(64)[start..<start + 16].map { ImagePayload($0) }), as: IngestResult.self)
        }
        var status = try client.result(.status, as: StatusResult.self)
        for _ in 0..<1200 where status.training.step < 8 {
            usleep(50_000)
            status = try client.result(.status, as: StatusResult.self)
        }
        #expect(status.training.step >= 8, "the daemon trained \(status.training.step) steps")
        #expect(status.training.loss["alignment"].map(\.isFinite) == true && status.training.loss["uniformity"] != nil)
    }

    @Test func aRegisteredMethodTrainsThroughGlfTrain() throws {
        let folder = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = folder.appendingPathComponent("data/all")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        for (index, file) in try cifarFiles(24).enumerated() {
            try Data(file).write(to: images.appendingPathComponent("\(index).jpg"))
        }
        let run = folder.appendingPathComponent("run")
        let train = try Train.parse(["--data", folder.appendingPathComponent("data").path, "--method", "alignment-uniformity",
                                     "--steps", "3", "--warmup", "0", "--batch", "8", "--width", "4", "--threads", "1",
                                     "--no-adc", "--out", run.path])
        try train.run()
        let saved = try Trainer.savedState(in: run)
        #expect(saved.config.method.rawValue == "alignment-uniformity" && saved.step == 3)
    }
}
