// TargetInfoNCE, the loss of the compatibility term and of the small crops: its gradient against
// finite differences, alone and through the tap between two layers where the trainer applies the
// compatibility term; its properties; and that in the trainer that term reaches the encoder and
// nothing after it.
import Foundation
import GLFDTesting
import Neural
import Testing
@testable import GLF

@Suite struct TargetInfoNCETests {
    private let loss = TargetInfoNCE(temperature: 0.5)

    private func value(_ h: Tensor, _ a: Tensor, _ loss: TargetInfoNCE? = nil) -> Float {
        (loss ?? self.loss).loss(features: h, targets: a, gradientScale: 0, gradient: Tensor(zeros: h.shape))
    }

    @Test func gradientMatchesFiniteDifferences() {
        // Raw features (not unit rows: the term normalises them), unit previous features.
        let (h, a) = (randomTensor([6, 5], seed: 1, std: 2), randomUnitRows([6, 5], seed: 2))
        for scale: Float in [1, 0.7] {
            let gradient = Tensor(zeros: h.shape)
            _ = loss.loss(features: h, targets: a, gradientScale: scale, gradient: gradient)
            let report = GradientCheck().run([("h", h, gradient)]) { scale * value(h, a) }
            #expect(report.worstError < 1e-2, "scale \(scale): \(report)")
        }
    }

    /// The check proves something only if it fails on a gradient that forgets the normalisation.
    @Test func aGradientWithoutTheNormalisationFailsTheCheck() {
        let (h, a) = (randomTensor([6, 5], seed: 3, std: 2), randomUnitRows([6, 5], seed: 4))
        let gradient = Tensor(zeros: h.shape)
        _ = loss.loss(features: h, targets: a, gradientScale: 1, gradient: gradient)
        for r in 0..<6 {   // undo the 1/‖h‖ of the normalisation's backward
            BLAS.scale(count: 5, alpha: BLAS.norm(count: 5, h.data + r * 5), x: gradient.data + r * 5)
        }
        #expect(GradientCheck().run([("h", h, gradient)]) { value(h, a) }.worstError > 0.1)
    }

    @Test func gradientAccumulatesWithItsScale() {
        let (h, a) = (randomTensor([4, 3], seed: 5), randomUnitRows([4, 3], seed: 6))
        let unit = Tensor(zeros: h.shape), accumulated = Tensor(zeros: h.shape)
        _ = loss.loss(features: h, targets: a, gradientScale: 1, gradient: unit)
        accumulated.fill(0.25)
        _ = loss.loss(features: h, targets: a, gradientScale: -3, gradient: accumulated)
        for i in 0..<h.count { #expect(abs(accumulated[i] - (0.25 - 3 * unit[i])) < 1e-5) }
    }

    /// Each image is its own class among B: when every previous row is the same, no image can be
    /// told apart, L = log B whatever the features, and nothing moves them.
    @Test func indistinguishablePreviousFeaturesGiveLogBAndNoGradient() {
        let h = randomTensor([7, 4], seed: 7)
        let row = randomUnitRows([1, 4], seed: 8)
        let a = Tensor(shape: [7, 4], values: (0..<7).flatMap { _ in row.array })
        let gradient = Tensor(zeros: h.shape)
        let l = loss.loss(features: h, targets: a, gradientScale: 1, gradient: gradient)
        #expect(abs(l - log(7)) < 1e-5)
        #expect(gradient.array.allSatisfy { abs($0) < 1e-6 })
    }

    /// Features that equal the previous ones, at a sharp temperature, are (almost) perfectly
    /// compatible; scaling the features changes nothing (the term compares directions), and the
    /// gradient is orthogonal to each feature row.
    @Test func matchingFeaturesScoreNearZeroAndOnlyDirectionsCount() {
        let a = randomUnitRows([8, 16], seed: 9)
        let same = Tensor(zeros: a.shape)
        same.copy(from: a)
        BLAS.scale(count: same.count, alpha: 3, x: same.data)
        #expect(value(same, a, TargetInfoNCE(temperature: 0.02)) < 1e-3)
        let h = randomTensor([8, 16], seed: 10)
        let scaled = Tensor(zeros: h.shape)
        scaled.copy(from: h)
        BLAS.scale(count: scaled.count, alpha: 5, x: scaled.data)
        #expect(abs(value(h, a) - value(scaled, a)) < 1e-5)
        #expect(value(h, a) > value(same, a))
        let gradient = Tensor(zeros: h.shape)
        _ = loss.loss(features: h, targets: a, gradientScale: 1, gradient: gradient)
        for r in 0..<8 { #expect(abs(BLAS.dot(count: 16, h.data + r * 16, gradient.data + r * 16)) < 1e-5) }
    }

    /// Through a tap between two layers, as the trainer applies it: L = Σ y ⊙ R + compat(h) with
    /// h the first layer's output; every parameter's gradient against finite differences.
    @Test func throughATapTheGradientReachesTheLayersBelow() {
        var rng = SeededGenerator(seed: 11)
        let arena = ParameterArena()
        let below = Linear("below", in: arena, inFeatures: 5, outFeatures: 4, rng: &rng)
        let tap = FeatureTap()
        let above = Linear("above", in: arena, inFeatures: 4, outFeatures: 3, rng: &rng)
        arena.seal()
        let network = Sequential([below, tap, above])
        let (x, a, r) = (randomTensor([6, 5], seed: 12), randomUnitRows([6, 4], seed: 13), randomTensor([6, 3], seed: 14))
        func total() -> Float {
            let y = network.forward(x, mode: .training)
            return (0..<y.count).reduce(0) { $0 + y[$1] * r[$1] } + value(tap.features, a)
        }
        arena.zeroGradients()
        _ = network.forward(x, mode: .training)
        let extra = Tensor(zeros: tap.features.shape)
        _ = loss.loss(features: tap.features, targets: a, gradientScale: 1, gradient: extra)
        tap.extraGradient = extra
        _ = network.backward(r)
        let probes = arena.parameters.map {
            GradientProbe($0.name, values: $0.values, count: $0.count, analytic: Array(UnsafeBufferPointer(start: $0.gradients, count: $0.count)))
        }
        let report = GradientCheck().run(probes) { Double(total()) }
        #expect(report.worstError < 1e-2, "\(report)")
        // A forward forgets the extra gradient: the next backward adds nothing it was not given.
        _ = network.forward(x, mode: .training)
        #expect(tap.extraGradient == nil)
    }
}

@Suite struct TrainerCompatibilityTests {
    private static func trainer(_ compatibility: CompatibilityTerm?) -> Trainer {
        var config = TrainerTests.config(.simclr, adc: true)
        config.compatibility = compatibility
        config.optimiser.momentum = 0
        config.optimiser.weightDecay = 0
        return Trainer(config)
    }

    private static func values(_ trainer: Trainer, projector: Bool) -> [Float] {
        trainer.online.arena.parameters.filter { $0.name.hasPrefix("projector") == projector }
            .flatMap { Array(UnsafeBufferPointer(start: $0.values, count: $0.count)) }
    }

    /// One SGD step: with λ = 0 the term changes nothing; with λ > 0 it changes the encoder (the
    /// served features) and leaves the projector exactly as the step without it would.
    @Test func theTermMovesTheEncoderOnly() {
        let (views, prior) = TrainerTests.inputs(batch: 8, seed: 21)
        let previous = randomUnitRows([16, TrainerTests.config(.simclr, adc: true).encoder.featureDimension], seed: 22)
        let (plain, zero, weighted) = (Self.trainer(nil), Self.trainer(CompatibilityTerm(weight: 0)), Self.trainer(CompatibilityTerm(weight: 2)))
        let reports = [plain, zero, weighted].map { $0.step(views: views, prior: prior, previous: previous) }
        #expect(!reports[0].terms.contains { $0.name == "compatibility" })
        let term = reports[2].terms.first { $0.name == "compatibility" }
        #expect(term != nil && term!.value > 0 && abs(reports[2].loss - reports[0].loss - 2 * term!.value) < 1e-3)
        let all = { (t: Trainer) in Array(UnsafeBufferPointer(start: t.online.arena.values, count: t.online.arena.count)) }
        #expect(all(zero) == all(plain))
        #expect(!Self.values(plain, projector: true).isEmpty)
        #expect(Self.values(weighted, projector: true) == Self.values(plain, projector: true))
        let encoderMoved = zip(Self.values(weighted, projector: false), Self.values(plain, projector: false)).map { abs($0 - $1) }.max() ?? 0
        #expect(encoderMoved > 1e-6)
    }
}
