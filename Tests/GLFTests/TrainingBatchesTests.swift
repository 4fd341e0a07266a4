import Testing
import GLF
import Neural

@Suite struct TrainingBatchesTests {
    static let shape = SourceImageShape(height: 8, width: 8, channels: 3)

    static func make(prior: InputPrior = .pixels, adc: Bool = true) throws -> TrainingBatches {
        var config = TrainingConfig()
        config.method = .byol
        config.batch = 6
        config.encoder = EncoderConfig(inputChannels: 3, imageSize: 8, width: 4, blocksPerStage: [1, 1])
        for keyPath in [\AugmentationRecipe.view1, \AugmentationRecipe.view2] { config.augmentation[keyPath: keyPath].outputSize = 8 }
        if !adc { config.adc = nil }
        var rng = SeededGenerator(seed: 1)
        let pixels = (0..<(20 * shape.bytesPerImage)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        return try TrainingBatches(pixels: pixels, shape: shape, config: config, prior: prior)
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
