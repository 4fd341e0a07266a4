// SimCLR (Chen et al. 2020), the contrastive baseline, in GLF terms, on unit projections ẑ:
//   aligning:     −mean sim(ẑ_i, ẑ_i')/τ                       (the positive pair)
//   constraining: mean_i logsumexp_{j≠i} sim(ẑ_i, ẑ_j)/τ       (uniformity against all others)
// Their sum is NT-Xent. solo-learn's CIFAR recipe: projector 2048 hidden → 256, τ 0.2.
import Neural

public struct SimCLR: Method {
    public var hiddenDimension = 2048
    public var projectionDimension = 256
    public var temperature: Float = 0.2

    public static let name = MethodName(registering: "simclr")

    public init() {}

    public init(constants: MethodConstants) {
        hiddenDimension = constants.hidden ?? hiddenDimension
        projectionDimension = constants.projection ?? projectionDimension
        temperature = constants.temperature ?? temperature
    }

    public func projector(featureDimension: Int) -> HeadConfig {
        HeadConfig(inputDimension: featureDimension, hiddenDimension: hiddenDimension, outputDimension: projectionDimension)
    }
    public var parts: [WeightedPart] { [WeightedPart(Terms(loss: NTXentLoss(temperature: temperature)))] }

    struct Terms: LossPart {
        let loss: NTXentLoss
        func apply(to t: StepTensors, weight: Float) -> [LossValue] {
            let (z, g) = (t.unitProjections, t.unitProjectionGradient)
            let parts = loss.loss(t.view(0, of: z), t.view(1, of: z), aligningGradientScale: weight, constrainingGradientScale: weight,
                                  gradient1: t.view(0, of: g), gradient2: t.view(1, of: g))
            return [LossValue(name: "simclr.positive", kind: .aligning, value: parts.aligning, weight: weight),
                    LossValue(name: "simclr.uniformity", kind: .constraining, value: parts.constraining, weight: weight)]
        }
    }
}
