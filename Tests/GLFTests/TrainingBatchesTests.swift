import Testing
import GLF
import Neural

@Suite struct TrainingBatchesTests {
    static let shape = SourceImageShape(height: 8, width: 8, channels: 3)

    static func make(prior: InputPrior = .pixels, adc: Bool = true, previousVersion: Embedder? = nil) throws -> TrainingBatches {
        var config = TrainingConfig()
        config.method = .byol
        config.batch = 6
        config.encoder = EncoderConfig(inputChannels: 3, imageSize: 8, width: 4, blocksPerStage: [1, 1])
        for keyPath in [\AugmentationRecipe.view1, \AugmentationRecipe.view2] { config.augmentation[keyPath: keyPath].outputSize = 8 }
        if !adc { config.adc = nil }
        var rng = SeededGenerator(seed: 1)
        let pixels = (0..<(20 * shape.bytesPerImage)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        if previousVersion != nil { config.compatibility = CompatibilityTerm() }
        return try TrainingBatches(pixels: pixels, shape: shape, config: config, prior: prior, previousVersion: previousVersion)
    }

    @Test func aStepsBatchDependsOnlyOnTheStep() throws {
        let (a, b) = (try Self.make(), try Self.make())
        let first = try a.batch(step: 3)
        let (views3, prior3) = (first.views.array, first.prior!.array)
        _ = try b.batch(step: 0)
        let again = try b.batch(step: 3)
        #expect(again.views.array == views3 && again.prior!.array == prior3)
        #expect(try a.batch(step: 4).views.array != views3)
        #expect(first.views.shape == [12, 8, 8, 3])
        #expect(try Self.make(adc: false).batch(step: 0).prior == nil)
    }

    @Test func aFrozenEncoderPriorGivesUnitFeatureRows() throws {
        let embedder = Embedder(workers: 2, batch: 6, normalization: ImageNormalization(AugmentationRecipe.cifar)) { arena in
            var rng = SeededGenerator(seed: 2)
            return ResNetEncoder(EncoderConfig(inputChannels: 3, imageSize: 8, width: 4, blocksPerStage: [1, 1]), in: arena, rng: &rng)
        }
        let prior = try Self.make(prior: .frozenEncoder(embedder)).batch(step: 0).prior!
        #expect(prior.shape == [6, 8])
        for r in 0..<6 {
            let norm = (0..<8).reduce(Float(0)) { $0 + prior[r * 8 + $1] * prior[r * 8 + $1] }.squareRoot()
            #expect(abs(norm - 1) < 1e-5)
        }
    }
}

extension TrainingBatchesTests {
    /// The compatibility term's input: the previous encoder's features of the very views the
    /// trainer sees (both of them), unit rows; none without the term.
    @Test func thePreviousVersionSeesTheSameViews() throws {
        let previous = Embedder(workers: 2, batch: 6, normalization: ImageNormalization(AugmentationRecipe.cifar)) { arena in
            var rng = SeededGenerator(seed: 4)
            return ResNetEncoder(EncoderConfig(inputChannels: 3, imageSize: 8, width: 4, blocksPerStage: [1, 1]), in: arena, rng: &rng)
        }
        let inputs = try Self.make(previousVersion: previous).batch(step: 2)
        let features = inputs.previous!
        #expect(features.shape == [12, 8])
        let direct = previous.model.forward(inputs.views, mode: .inference)
        for r in 0..<12 {
            let norm = BLAS.norm(count: 8, direct.data + r * 8)
            for j in 0..<8 { #expect(abs(features[r * 8 + j] - direct[r * 8 + j] / norm) < 1e-5) }
        }
        #expect(try Self.make().batch(step: 2).previous == nil)
    }
}

@Suite struct ProgressiveResolutionTests {
    @Test func theSideGrowsByEightsToTheFullSizeAtTheRampsEnd() {
        let ramp = ProgressiveResolution(startSize: 16, rampSteps: 100)
        #expect(ramp.size(atStep: 0, finalSize: 32) == 16)
        #expect(ramp.size(atStep: 49, finalSize: 32) == 16)   // 16 + 16 · 0.49 = 23.8 → 16
        #expect(ramp.size(atStep: 50, finalSize: 32) == 24)
        #expect(ramp.size(atStep: 99, finalSize: 32) == 24)
        #expect(ramp.size(atStep: 100, finalSize: 32) == 32)
        #expect(ramp.size(atStep: 5000, finalSize: 32) == 32)
        let sides = (0..<100).map { ramp.size(atStep: $0, finalSize: 32) }
        #expect(sides == sides.sorted())
        // A start at or above the full size changes nothing.
        #expect(ProgressiveResolution(startSize: 40, rampSteps: 100).size(atStep: 0, finalSize: 32) == 32)
    }

    /// Views of the early steps are smaller, the encoder takes every size, and the draws of a
    /// step do not depend on the sizes seen before (a resumed run sees what an uninterrupted one would).
    @Test func earlyStepsTrainOnSmallerViews() throws {
        let shape = SourceImageShape(height: 16, width: 16, channels: 3)
        var config = TrainerTests.config(.simclr, adc: true)
        config.encoder.imageSize = 16
        for keyPath in [\AugmentationRecipe.view1, \AugmentationRecipe.view2] { config.augmentation[keyPath: keyPath].outputSize = 16 }
        config.progressive = ProgressiveResolution(startSize: 8, rampSteps: 4)
        var rng = SeededGenerator(seed: 3)
        let pixels = (0..<(20 * shape.bytesPerImage)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let batches = try TrainingBatches(pixels: pixels, shape: shape, config: config)
        let trainer = Trainer(config)
        var sides: [Int] = []
        for step in 0..<6 {
            let inputs = try batches.batch(step: step)
            sides.append(inputs.views.shape[1])
            let report = trainer.step(inputs)
            #expect(report.updated && report.loss.isFinite, "step \(step) at \(inputs.views.shape)")
        }
        #expect(sides == [8, 8, 8, 8, 16, 16])
        let fresh = try TrainingBatches(pixels: pixels, shape: shape, config: config)
        #expect(try fresh.batch(step: 5).views.array == (try batches.batch(step: 5)).views.array)
        #expect(try fresh.batch(step: 1).views.array == (try batches.batch(step: 1)).views.array)
    }
}
