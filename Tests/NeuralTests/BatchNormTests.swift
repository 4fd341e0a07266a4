import GLFDTesting
import Neural
import Testing

struct BatchNormCase: CustomTestStringConvertible, Sendable {
    var shape: [Int], affine: Bool, fusedReLU: Bool, views: Int
    var testDescription: String { "\(shape.count == 4 ? "2-D" : "1-D") affine=\(affine) relu=\(fusedReLU) views=\(views)" }
}

let batchNormCases: [BatchNormCase] = [[6, 3, 2, 4], [8, 5]].flatMap { shape in
    [true, false].flatMap { affine in [false, true].flatMap { relu in [1, 2].map {
        BatchNormCase(shape: shape, affine: affine, fusedReLU: relu, views: $0) } } } }

@Suite struct BatchNormTests {
    func makeLayer(_ c: BatchNormCase) -> (BatchNorm, ParameterArena) {
        let arena = ParameterArena()
        let bn = BatchNorm("bn", in: arena, channels: c.shape.last!, affine: c.affine, fusedReLU: c.fusedReLU)
        arena.seal()
        // Non-trivial γ, β so that their gradients and the ReLU mask matter.
        var rng = SeededGenerator(seed: 99)
        if let scale = bn.scale { for i in 0..<scale.count { scale.values[i] = 0.5 + rng.nextUniform() } }
        if let shift = bn.shift { for i in 0..<shift.count { shift.values[i] = rng.nextNormal() * 0.3 } }
        return (bn, arena)
    }

    @Test("training-mode backward (through the batch statistics)", arguments: batchNormCases)
    func trainingBackward(_ c: BatchNormCase) {
        let (bn, arena) = makeLayer(c)
        let x = randomTensor(c.shape, seed: 1, std: 2)
        let report = GradientCheck().run(bn, arena: arena, input: x, mode: .training(views: c.views))
        #expect(report.worstError < 2e-2, "\(report)")
    }

    @Test("inference-mode backward", arguments: batchNormCases.filter { $0.views == 1 })
    func inferenceBackward(_ c: BatchNormCase) {
        let (bn, arena) = makeLayer(c)
        for j in 0..<bn.channels { bn.runningMean.values[j] = Float(j) * 0.1; bn.runningVariance.values[j] = 0.5 + Float(j) * 0.2 }
        let report = GradientCheck().run(bn, arena: arena, input: randomTensor(c.shape, seed: 2), mode: .inference)
        #expect(report.worstError < 1e-2, "\(report)")
    }

    @Test func trainingNormalisesEachChannelAndUpdatesRunningStatistics() {
        let arena = ParameterArena()
        let bn = BatchNorm("bn", in: arena, channels: 3, momentum: 0.1)
        arena.seal()
        let x = randomTensor([10, 3], seed: 3, std: 3)
        let y = bn.forward(x, mode: .training)
        for j in 0..<3 {
            let column = (0..<10).map { Double(x[$0 * 3 + j]) }
            let mean = column.reduce(0, +) / 10
            let biased = column.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 10
            let out = (0..<10).map { Double(y[$0 * 3 + j]) }
            let outMean = out.reduce(0, +) / 10
            let outVariance = out.reduce(0) { $0 + ($1 - outMean) * ($1 - outMean) } / 10
            #expect(abs(outMean) < 1e-5)
            #expect(abs(outVariance - biased / (biased + 1e-5)) < 1e-4)
            // PyTorch's rule: running ← (1 − m)·running + m·batch, with the unbiased variance.
            #expect(abs(Double(bn.runningMean.values[j]) - 0.1 * mean) < 1e-5)
            #expect(abs(Double(bn.runningVariance.values[j]) - (0.9 + 0.1 * biased * 10 / 9)) < 1e-4)
        }
    }

    @Test func inferenceUsesRunningStatistics() {
        let arena = ParameterArena()
        let bn = BatchNorm("bn", in: arena, channels: 2)
        arena.seal()
        bn.runningMean.values[0] = 1; bn.runningMean.values[1] = -2
        bn.runningVariance.values[0] = 4; bn.runningVariance.values[1] = 0.25
        bn.scale!.values[1] = 3; bn.shift!.values[1] = 0.5
        let y = bn.forward(Tensor(shape: [1, 2], values: [3, -1]), mode: .inference)
        #expect(abs(y[0] - 2 / (4 + 1e-5 as Float).squareRoot()) < 1e-6)
        #expect(abs(y[1] - (3 * 1 / (0.25 + 1e-5 as Float).squareRoot() + 0.5)) < 1e-5)
    }

    @Test func viewsKeepSeparateStatistics() {
        func make() -> BatchNorm { let a = ParameterArena(); let bn = BatchNorm("bn", in: a, channels: 4); a.seal(); return bn }
        let a = randomTensor([6, 4], seed: 4), b = randomTensor([6, 4], seed: 5, std: 3)
        let both = Tensor(shape: [12, 4], values: a.array + b.array)
        let joint = make().forward(both, mode: .training(views: 2)).array
        let separate = make().forward(a, mode: .training).array + make().forward(b, mode: .training).array
        #expect(zip(joint, separate).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    // Dropping the terms that flow through the batch statistics is the classic batch-norm bug; the
    // check must catch it. Inference mode with the running statistics set to this batch's
    // statistics has exactly that backward.
    @Test func backwardWithoutTheBatchStatisticTermsFailsTheCheck() {
        let (bn, arena) = makeLayer(BatchNormCase(shape: [8, 5], affine: true, fusedReLU: false, views: 1))
        let (frozen, _) = makeLayer(BatchNormCase(shape: [8, 5], affine: true, fusedReLU: false, views: 1))
        let x = randomTensor([8, 5], seed: 6)
        for j in 0..<5 {
            let column = (0..<8).map { x[$0 * 5 + j] }
            let mean = column.reduce(0, +) / 8
            frozen.runningMean.values[j] = mean
            frozen.runningVariance.values[j] = column.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 8
        }
        let report = GradientCheck().run(bn, arena: arena, input: x, mode: .training) { dy in
            _ = frozen.forward(x, mode: .inference)
            return frozen.backward(dy)
        }
        #expect(report.worstError > 0.1, "\(report)")
    }
}
