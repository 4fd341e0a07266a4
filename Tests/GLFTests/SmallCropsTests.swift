// Small crops (multi-crop): the inputs give each pair its own draws at the small size, and in the
// trainer the crops' pass adds its gradient to the large views' (the term's loss, TargetInfoNCE,
// is checked against finite differences in CompatibilityTests; passes that add up, in
// ReplicatedModelTests).
import Foundation
import GLFDTesting
import Neural
import Testing
@testable import GLF

@Suite struct SmallCropsTests {
    private static func config(_ smallCrops: SmallCrops?) -> TrainingConfig {
        var config = TrainerTests.config(.simclr, adc: true)
        config.encoder.imageSize = 16
        for keyPath in [\AugmentationRecipe.view1, \AugmentationRecipe.view2] { config.augmentation[keyPath: keyPath].outputSize = 16 }
        config.smallCrops = smallCrops
        return config
    }

    private static let shape = SourceImageShape(height: 16, width: 16, channels: 3)
    private static let pixels: [UInt8] = {
        var rng = SeededGenerator(seed: 4)
        return (0..<(20 * shape.bytesPerImage)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }()

    @Test func eachPairHasItsOwnDrawsAtTheSmallSize() throws {
        let config = Self.config(SmallCrops(pairs: 2, size: 8))
        let batches = try TrainingBatches(pixels: Self.pixels, shape: Self.shape, config: config)
        let inputs = try batches.batch(step: 3)
        #expect(inputs.views.shape == [16, 16, 16, 3])
        #expect(inputs.smallCrops.map(\.shape) == [[16, 8, 8, 3], [16, 8, 8, 3]])
        #expect(inputs.smallCrops[0].array != inputs.smallCrops[1].array)
        // Steps are reproducible whatever came before (resume), and the crops change with the step.
        let first = inputs.smallCrops.map(\.array)
        let fresh = try TrainingBatches(pixels: Self.pixels, shape: Self.shape, config: config)
        #expect(try fresh.batch(step: 3).smallCrops.map(\.array) == first)
        #expect(try fresh.batch(step: 4).smallCrops[0].array != first[0])
        // Without small crops, none.
        let plain = try TrainingBatches(pixels: Self.pixels, shape: Self.shape, config: Self.config(nil))
        #expect(try plain.batch(step: 3).smallCrops.isEmpty)
        #expect(try plain.batch(step: 3).views.array == inputs.views.array)
    }

    private static func weights(_ trainer: Trainer) -> [Float] {
        trainer.online.arena.parameters.filter { $0.role != .statistic }
            .flatMap { Array(UnsafeBufferPointer(start: $0.values, count: $0.count)) }
    }

    /// One step from the same inputs: at λ = 0 the crops' pass adds nothing to the weights' update
    /// (only batch-norm statistics see it); at λ > 0 it moves them, reports its term and its
    /// gradient share, and adds λ · its value to the loss.
    @Test func theCropsPassAddsItsGradientToTheStep() throws {
        let batches = try TrainingBatches(pixels: Self.pixels, shape: Self.shape, config: Self.config(SmallCrops(pairs: 1, size: 8)))
        let inputs = try batches.batch(step: 0)
        let plain = Trainer(Self.config(nil))
        let zero = Trainer(Self.config(SmallCrops(pairs: 1, size: 8, weight: 0)))
        let weighted = Trainer(Self.config(SmallCrops(pairs: 1, size: 8, weight: 2)))
        let reports = [plain, zero, weighted].map { $0.step(inputs) }
        #expect(reports.allSatisfy { $0.updated })
        #expect(!reports[0].terms.contains { $0.name == "small_crops" })
        #expect(Self.weights(zero) == Self.weights(plain))
        let term = try #require(reports[2].terms.first { $0.name == "small_crops" })
        // Each crop picks its image out of 8: about log 8 ≈ 2.08 for a network that cannot yet tell
        // them apart.
        #expect(term.value > 0.5 && term.value < 6, "\(term)")
        #expect(abs(reports[2].loss - reports[0].loss - 2 * term.value) < 1e-3)
        #expect((reports[2].gradientShares["small_crops"] ?? 0) > 0.01)
        let moved = zip(Self.weights(weighted), Self.weights(plain)).map { abs($0 - $1) }.max() ?? 0
        #expect(moved > 1e-6)
    }

    /// A saved run may change its small crops on resume (they shape no tensor on disk).
    @Test func smallCropsMayChangeOnResume() {
        let changes = Self.config(SmallCrops()).changes(toResume: Self.config(nil))
        #expect(changes.map(\.field) == [.smallCrops])
        #expect(changes.allSatisfy { $0.canChangeOnResume })
    }
}
