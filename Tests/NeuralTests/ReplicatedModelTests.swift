import GLFDTesting
import Neural
import Testing

@Suite struct ReplicatedModelTests {
    static let config = EncoderConfig(inputChannels: 3, imageSize: 8, width: 4, blocksPerStage: [1, 1])

    /// Encoder + projector, the way a training step uses them.
    static func build(_ arena: ParameterArena) -> Layer {
        var rng = SeededGenerator(seed: 5)
        let encoder = ResNetEncoder(config, in: arena, rng: &rng)
        let head = MLPHead(HeadConfig(inputDimension: encoder.config.featureDimension, hiddenDimension: 16, outputDimension: 6,
                                      finalBatchNorm: true), name: "projector", in: arena, rng: &rng)
        return Sequential([encoder, head])
    }

    /// One forward and backward of two views; returns the outputs and the primary's gradients.
    static func step(_ model: ReplicatedModel, _ views: Tensor) -> (output: [Float], gradients: [Float]) {
        model.zeroGradients()
        let y = model.forward(views, mode: .training(views: 2))
        let output = y.array
        model.backward(randomTensor(y.shape, seed: 9))
        return (output, Array(UnsafeBufferPointer(start: model.arena.gradients, count: model.arena.count)))
    }

    @Test func replicasComputeWhatOneNetworkComputesOnBothViews() {
        let views = randomTensor([8, 8, 8, 3], seed: 1)
        let replicated = ReplicatedModel(replicas: 2, workers: 2, build: Self.build)
        let (output, gradients) = Self.step(replicated, views)

        let arena = ParameterArena()
        let single = Self.build(arena)
        arena.seal()
        let y = single.forward(views, mode: .training(views: 2))
        _ = single.backward(randomTensor(y.shape, seed: 9))
        let reference = Array(UnsafeBufferPointer(start: arena.gradients, count: arena.count))

        #expect(zip(output, y.array).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
        let scale = reference.map(abs).max()!
        #expect(zip(gradients, reference).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
    }

    @Test func aReplicatedHeadReturnsTheInputGradientOfOneNetwork() {
        func head(_ arena: ParameterArena) -> Layer {
            var rng = SeededGenerator(seed: 8)
            return MLPHead(HeadConfig(inputDimension: 5, hiddenDimension: 7, outputDimension: 3), name: "predictor", in: arena, rng: &rng)
        }
        let x = randomTensor([12, 5], seed: 1), dy = randomTensor([12, 3], seed: 2)
        let replicated = ReplicatedModel(replicas: 2, workers: 2, build: head)
        _ = replicated.forward(x, mode: .training(views: 2))
        let dx = replicated.backward(dy).array
        let arena = ParameterArena()
        let single = head(arena)
        arena.seal()
        _ = single.forward(x, mode: .training(views: 2))
        let reference = single.backward(dy).array
        #expect(dx.count == 60)
        #expect(zip(dx, reference).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
    }

    /// A step's small crops go through the network after its large views, before the update: the
    /// two passes' gradients must add up in the primary, each counted once (a replica that kept
    /// its first pass's gradients would hand them to the primary twice).
    @Test func twoPassesBetweenZeroingAddUp() {
        let large = randomTensor([8, 8, 8, 3], seed: 3), small = randomTensor([8, 4, 4, 3], seed: 4)
        let model = ReplicatedModel(replicas: 2, workers: 2, build: Self.build)
        func pass(_ views: Tensor, seed: UInt64) {
            let y = model.forward(views, mode: .training(views: 2))
            model.backward(randomTensor(y.shape, seed: seed))
        }
        func gradients() -> [Float] { Array(UnsafeBufferPointer(start: model.arena.gradients, count: model.arena.count)) }
        model.zeroGradients(); pass(large, seed: 10)
        let first = gradients()
        model.zeroGradients(); pass(small, seed: 11)
        let second = gradients()
        model.zeroGradients(); pass(large, seed: 10); pass(small, seed: 11)
        let both = gradients()
        let scale = zip(first, second).map { abs($0) + abs($1) }.max()!
        #expect(zip(both, zip(first, second)).allSatisfy { abs($0 - ($1.0 + $1.1)) <= 1e-5 * scale })
    }

    @Test func resultsDoNotDependOnTheNumberOfWorkers() {
        let views = randomTensor([8, 8, 8, 3], seed: 2)
        let one = Self.step(ReplicatedModel(replicas: 2, workers: 1, build: Self.build), views)
        let two = Self.step(ReplicatedModel(replicas: 2, workers: 2, build: Self.build), views)
        #expect(one.output == two.output)
        #expect(one.gradients == two.gradients)
    }

    @Test func runningStatisticsAreTheMeanOfTheReplicas() {
        let model = ReplicatedModel(replicas: 2, workers: 2) { arena in BatchNorm("bn", in: arena, channels: 3) }
        let a = randomTensor([5, 3], seed: 3), b = randomTensor([5, 3], seed: 4, std: 2)
        _ = model.forward(Tensor(shape: [10, 3], values: a.array + b.array), mode: .training(views: 2))
        let mean = model.arena["bn.running_mean"]!
        for j in 0..<3 {
            let ma = (0..<5).reduce(Float(0)) { $0 + a[$1 * 3 + j] } / 5, mb = (0..<5).reduce(Float(0)) { $0 + b[$1 * 3 + j] } / 5
            #expect(abs(mean.values[j] - 0.1 * (ma + mb) / 2) < 1e-6)
        }
    }

    @Test func replicasFollowThePrimaryAfterAnUpdate() {
        let model = ReplicatedModel(replicas: 2, workers: 2, build: Self.build)
        let views = randomTensor([8, 8, 8, 3], seed: 6)
        let before = model.forward(views, mode: .inference).array
        for i in 0..<model.arena.count { model.arena.values[i] *= 0.5 }
        let after = model.forward(views, mode: .inference).array
        // Both halves changed: the second replica picked up the new values too.
        #expect(before[0..<(before.count / 2)] != after[0..<(after.count / 2)])
        #expect(before[(before.count / 2)...] != after[(after.count / 2)...])
    }
}
