// Every layer's backward against finite differences, and proof that the check catches mistakes.
import GLFDTesting
import Neural
import Testing

@Suite struct LayerGradientTests {
    @Test func linear() {
        var rng = SeededGenerator(seed: 1)
        let arena = ParameterArena()
        let layer = Linear("fc", in: arena, inFeatures: 7, outFeatures: 5, rng: &rng)
        arena.seal()
        let report = GradientCheck().run(layer, arena: arena, input: randomTensor([6, 7], seed: 2))
        #expect(report.worstError < 1e-2, "\(report)")
    }

    @Test func relu() {
        let report = GradientCheck().run(ReLU(), arena: sealedEmptyArena(), input: randomTensorAwayFromZero([4, 3, 3, 2], seed: 3))
        #expect(report.worstError < 1e-2, "\(report)")
    }

    @Test func globalAveragePool() {
        let report = GradientCheck().run(GlobalAveragePool(), arena: sealedEmptyArena(), input: randomTensor([3, 4, 5, 6], seed: 4))
        #expect(report.worstError < 1e-2, "\(report)")
    }

    @Test func l2Normalize() {
        let layer = L2Normalize()
        let x = randomTensor([5, 8], seed: 5)
        let report = GradientCheck().run(layer, arena: sealedEmptyArena(), input: x)
        #expect(report.worstError < 1e-2, "\(report)")
        let y = layer.forward(x, mode: .inference)
        for r in 0..<5 {
            let norm = (0..<8).reduce(Float(0)) { $0 + y[r * 8 + $1] * y[r * 8 + $1] }.squareRoot()
            #expect(abs(norm - 1) < 1e-6)
        }
    }

    @Test(arguments: [(4, 4, 1), (3, 6, 2), (4, 6, 1)])
    func residualBlock(inChannels: Int, outChannels: Int, stride: Int) {
        var rng = SeededGenerator(seed: 6)
        let arena = ParameterArena()
        let block = ResidualBlock("block", in: arena, inChannels: inChannels, outChannels: outChannels, stride: stride, rng: &rng)
        arena.seal()
        #expect((block.shortcut != nil) == (stride != 1 || inChannels != outChannels))
        let report = GradientCheck().run(block, arena: arena, input: randomTensor([4, 5, 5, inChannels], seed: 7),
                                         mode: .training(views: 2))
        #expect(report.worstError < 2e-2, "\(report)")
    }

    @Test func mlpHeadWithFinalBatchNorm() {
        var rng = SeededGenerator(seed: 8)
        let arena = ParameterArena()
        let head = MLPHead(HeadConfig(inputDimension: 6, hiddenDimension: 10, outputDimension: 4, finalBatchNorm: true),
                           name: "projector", in: arena, rng: &rng)
        arena.seal()
        let report = GradientCheck().run(head, arena: arena, input: randomTensor([8, 6], seed: 9), mode: .training(views: 2))
        #expect(report.worstError < 2e-2, "\(report)")
    }

    @Test func encoderParameters() {
        var rng = SeededGenerator(seed: 10)
        let arena = ParameterArena()
        let encoder = ResNetEncoder(EncoderConfig(inputChannels: 2, imageSize: 6, width: 3, blocksPerStage: [1, 2]),
                                    in: arena, rng: &rng)
        arena.seal()
        // The stem skips dL/dimage by design, so only the parameters are checked. A stem weight
        // moves every unit downstream, so with ε = 1e-3 some ReLU kinks fall inside [w − ε, w + ε]
        // (measured: 37% error at ε = 1e-3, 9% at 3e-4, under 2% at 1e-4): a small ε it is.
        let report = GradientCheck(epsilon: 1e-4, samplesPerTensor: 12).run(encoder, arena: arena, input: randomTensor([4, 6, 6, 2], seed: 11),
                                                             checkInput: false)
        #expect(report.worstError < 3e-2, "\(report)")
        #expect(encoder.forward(randomTensor([4, 6, 6, 2], seed: 12), mode: .inference).shape == [4, 6])
    }

    // The check itself must fail on a wrong gradient, or it proves nothing.
    @Test func aSlightlyWrongGradientFailsTheCheck() {
        var rng = SeededGenerator(seed: 13)
        let arena = ParameterArena()
        let layer = Linear("fc", in: arena, inFeatures: 7, outFeatures: 5, rng: &rng)
        arena.seal()
        let x = randomTensor([6, 7], seed: 14)
        let wrong = GradientCheck().run(layer, arena: arena, input: x) { dy in
            let dx = layer.backward(dy)
            dx[3] *= 1.1     // one coordinate 10% off
            return dx
        }
        #expect(wrong.worstError > 5e-2, "\(wrong)")
    }
}

func sealedEmptyArena() -> ParameterArena {
    let arena = ParameterArena()
    arena.seal()
    return arena
}
