// Every method takes real steps through the whole machinery: heads, parts, ADC, backward,
// optimisers, EMA, prototypes. (Whether the steps learn anything useful is shown on real images
// by the learning test.)
import Foundation
import Testing
import GLF
import Neural

@Suite struct TrainerTests {
    static func config(_ method: MethodName, adc: Bool) -> TrainingConfig {
        var config = TrainingConfig()
        config.method = method
        config.encoder = EncoderConfig(inputChannels: 3, imageSize: 8, width: 4, blocksPerStage: [1, 1])
        config.heads = MethodConstants(hidden: 16, projection: 8, predictorHidden: 16, prototypes: 6, prototypesFrozenSteps: 2)
        config.batch = 8
        config.workers = 2
        config.optimiser.warmupSteps = 0
        config.optimiser.learningRate = 0.06
        config.averageDecay = nil
        if !adc { config.adc = nil }
        return config
    }

    static func inputs(batch: Int, seed: UInt64) -> (views: Tensor, prior: Tensor) {
        var rng = SeededGenerator(seed: seed)
        let views = Tensor(zeros: [2 * batch, 8, 8, 3])
        views.fillNormal(std: 1, using: &rng)
        let prior = PixelPrior.representation(of: Tensor(viewing: views.data, shape: [batch, 8, 8, 3]))
        return (views, prior)
    }

    @Test(arguments: MethodName.allCases, [false, true])
    func stepsUpdateTheModelAndReportEveryTerm(method: MethodName, adc: Bool) {
        let trainer = Trainer(Self.config(method, adc: adc))
        let before = Array(UnsafeBufferPointer(start: trainer.online.arena.values, count: trainer.online.arena.count))
        var report: StepReport?
        for step in 0..<3 {
            let (views, prior) = Self.inputs(batch: 8, seed: UInt64(step))
            report = trainer.step(views: views, prior: prior)
        }
        let after = Array(UnsafeBufferPointer(start: trainer.online.arena.values, count: trainer.online.arena.count))
        #expect(report!.updated && report!.loss.isFinite)
        #expect(trainer.stepCount == 3)
        #expect(before != after)
        #expect(report!.terms.contains { $0.kind == .aligning })
        #expect(report!.terms.contains { $0.name == "adc.dcm" } == adc)
        #expect(report!.terms.contains { $0.name == "adc.lpm" } == adc)
        #expect(report!.collapseMonitor > 0 && report!.collapseMonitor < 1)
        #expect(abs(report!.loss - report!.terms.reduce(0) { $0 + $1.weighted }) < 1e-4)
    }

    @Test func byolTargetFollowsTheOnlineNetworkByEMA() {
        let trainer = Trainer(Self.config(.byol, adc: false))
        let target = trainer.target!.arena, online = trainer.online.arena
        let (views, prior) = Self.inputs(batch: 8, seed: 1)
        let targetBefore = Array(UnsafeBufferPointer(start: target.values, count: target.count))
        _ = trainer.step(views: views, prior: prior)
        for i in stride(from: 0, to: target.count, by: 97) where target.parameters.first(where: { $0.offset <= i && i < $0.offset + $0.count })?.role != .statistic {
            // ξ ← 0.99 ξ + 0.01 θ, starting from ξ = θ₀.
            let expected = 0.99 * targetBefore[i] + 0.01 * online.values[i]
            #expect(abs(target.values[i] - expected) < 1e-6)
        }
    }

    @Test func swavPrototypesStayUnitAndFrozenAtFirst() {
        let trainer = Trainer(Self.config(.swav, adc: false))
        let prototypes = trainer.head("prototypes")!.arena
        let initial = Array(UnsafeBufferPointer(start: prototypes.values, count: prototypes.count))
        for step in 0..<4 {
            let (views, prior) = Self.inputs(batch: 8, seed: UInt64(step))
            _ = trainer.step(views: views, prior: prior)
            let now = Array(UnsafeBufferPointer(start: prototypes.values, count: prototypes.count))
            #expect((now == initial) == (step < 2), "frozen for the first 2 steps only (step \(step))")
            for r in 0..<6 {
                let norm = (0..<8).reduce(Float(0)) { $0 + now[r * 8 + $1] * now[r * 8 + $1] }.squareRoot()
                #expect(abs(norm - 1) < 1e-5)
            }
        }
    }

    @Test func theModelIsTheWeightsMovingAverageWhenTheRunKeepsOne() throws {
        var config = Self.config(.simclr, adc: true)
        config.averageDecay = 0.99
        let trainer = Trainer(config)
        let average = trainer.averaged!.arena, online = trainer.online.arena
        var expected = Array(UnsafeBufferPointer(start: online.values, count: online.count))   // ξ₀ = θ₀
        for step in 0..<3 {
            let (views, prior) = Self.inputs(batch: 8, seed: UInt64(step))
            _ = trainer.step(views: views, prior: prior)
            // Warm-started as TensorFlow's: τ = min(0.99, (1 + n)/(10 + n)), statistics included.
            let tau = min(Float(0.99), Float(1 + step) / Float(10 + step))
            for i in 0..<online.count { expected[i] = tau * expected[i] + (1 - tau) * online.values[i] }
        }
        let averaged = Array(UnsafeBufferPointer(start: average.values, count: average.count))
        #expect(zip(averaged, expected).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
        #expect(averaged != Array(UnsafeBufferPointer(start: online.values, count: online.count)))

        // What glf eval, glf embed and glfd load is the average; the online weights ride along.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("glf-average-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        try trainer.save(to: directory)
        let model = try ModelDirectory.load(from: directory).model
        #expect(Array(UnsafeBufferPointer(start: model.arena.values, count: model.arena.count)) == averaged)
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("online.safetensors").path))
    }

    @Test(arguments: [(MethodName.byol, false), (.swav, false), (.simclr, true)])
    func aResumedRunContinuesBitForBit(method: MethodName, averaging: Bool) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("glf-resume-\(method.rawValue)-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        var config = Self.config(method, adc: true)
        config.heads.prototypesQueue = 16   // SwAV: the queue fills before the save and is used after it
        config.averageDecay = averaging ? 0.9 : nil
        let original = Trainer(config)
        for step in 0..<2 {
            let (views, prior) = Self.inputs(batch: 8, seed: UInt64(step))
            _ = original.step(views: views, prior: prior)
        }
        try original.save(to: directory)
        let resumed = try Trainer.resume(from: directory)
        #expect(resumed.stepCount == 2)
        for step in 2..<4 {
            let (views, prior) = Self.inputs(batch: 8, seed: UInt64(step))
            _ = original.step(views: views, prior: prior)
            _ = resumed.step(views: views, prior: prior)
        }
        for (a, b) in [(original.online, resumed.online), (original.head("predictor"), resumed.head("predictor")),
                       (original.head("prototypes"), resumed.head("prototypes")), (original.target, resumed.target),
                       (original.averaged, resumed.averaged)] {
            guard let a, let b else { continue }
            #expect(Array(UnsafeBufferPointer(start: a.arena.values, count: a.arena.count))
                    == Array(UnsafeBufferPointer(start: b.arena.values, count: b.arena.count)))
        }
    }

    @Test func resumingFromADirectoryThatIsNoCheckpointIsATypedError() {
        #expect(throws: WeightFileError.self) { try Trainer.resume(from: URL(fileURLWithPath: "/nonexistent")) }
    }

    @Test func swavUsesItsQueueOnceFull() {
        var withQueue = Self.config(.swav, adc: false)
        withQueue.heads.prototypesQueue = 16    // two batches of 8
        let queued = Trainer(withQueue), plain = Trainer(Self.config(.swav, adc: false))
        var losses: [(Float, Float)] = []
        for step in 0..<4 {
            let (views, prior) = Self.inputs(batch: 8, seed: UInt64(step))
            let a = queued.step(views: views, prior: prior), b = plain.step(views: views, prior: prior)
            #expect(a.updated && a.loss.isFinite)
            losses.append((a.loss, b.loss))
        }
        // Identical until the queue is full (after two steps); then the codes see more samples.
        #expect(losses[0].0 == losses[0].1 && losses[1].0 == losses[1].1)
        #expect(losses[2].0 != losses[2].1)
    }

    @Test func aNonFiniteLossChangesNothing() {
        let trainer = Trainer(Self.config(.simclr, adc: false))
        let (views, prior) = Self.inputs(batch: 8, seed: 3)
        views[0] = .nan
        let before = Array(UnsafeBufferPointer(start: trainer.online.arena.values, count: trainer.online.arena.count))
        let report = trainer.step(views: views, prior: prior)
        #expect(!report.updated && trainer.stepCount == 1)
        // Batch-norm statistics may have seen the NaN; the trained parameters must not have.
        for p in trainer.online.arena.parameters where p.role != .statistic {
            #expect(Array(UnsafeBufferPointer(start: p.values, count: p.count)) == Array(before[p.offset..<(p.offset + p.count)]))
        }
    }
}
