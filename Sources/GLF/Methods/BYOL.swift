// BYOL (Grill et al. 2020) in GLF terms.
//   aligning:     2 − 2·cos(q(z1), sg(z2')) + 2 − 2·cos(q(z2), sg(z1')), summed over both view orders
//                 (p = predictor output of the online network, z' = the EMA target's projection)
//   constraining: implicit — the predictor, the stop-gradient and the EMA target keep it from
//                 collapsing; there is no loss term for it.
// solo-learn's CIFAR recipe: projector 2048 hidden → 256, predictor 4096 hidden → 256, τ 0.99 → 1.
// A daemon has no known end, so τ is fixed (method.md: 0.99).
import Neural

public struct BYOL: Method {
    public var hiddenDimension = 2048
    public var projectionDimension = 256
    public var predictorHiddenDimension = 4096
    public var targetDecayValue: Float = 0.99

    public static let name = MethodName(registering: "byol")

    public init() {}

    public init(constants: MethodConstants) {
        hiddenDimension = constants.hidden ?? hiddenDimension
        projectionDimension = constants.projection ?? projectionDimension
        predictorHiddenDimension = constants.predictorHidden ?? predictorHiddenDimension
    }

    public func projector(featureDimension: Int) -> HeadConfig {
        HeadConfig(inputDimension: featureDimension, hiddenDimension: hiddenDimension, outputDimension: projectionDimension)
    }
    public var predictor: HeadConfig {
        HeadConfig(inputDimension: projectionDimension, hiddenDimension: predictorHiddenDimension, outputDimension: projectionDimension)
    }
    public var targetDecay: Float? { targetDecayValue }

    /// The predictor q: z → p, trained; its input gradient joins z's.
    public func makeHeads(projectionDimension: Int, workers: Int, seed: UInt64) -> [MethodHead] {
        let head = predictor
        let model = ReplicatedModel(replicas: 2, workers: workers) { arena in
            var rng = SeededGenerator(seed: seed &+ 1)
            return MLPHead(head, name: "predictor", in: arena, rng: &rng)
        }
        return [MethodHead(name: "predictor", model: model, input: \.projections, inputGradient: \.projectionGradient,
                           output: \.predictions, outputGradient: \.predictionGradient)]
    }
    public var parts: [WeightedPart] { [WeightedPart(Aligning())] }

    struct Aligning: LossPart {
        func apply(to t: StepTensors, weight: Float) -> [LossValue] {
            guard let p = t.predictions, let target = t.targets else { preconditionFailure("BYOL needs predictions and targets") }
            let term = BYOLAligning()
            var value: Float = 0
            for (online, other) in [(0, 1), (1, 0)] {
                value += term.loss(prediction: t.view(online, of: p), target: t.view(other, of: target),
                                   gradientScale: weight, predictionGradient: t.view(online, of: t.predictionGradient))
            }
            return [LossValue(name: "byol", kind: .aligning, value: value, weight: weight)]
        }
    }
}
