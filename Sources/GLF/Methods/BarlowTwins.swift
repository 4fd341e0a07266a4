// Barlow Twins (Zbontar et al. 2021) in GLF terms, on the cross-correlation C of the two views'
// batch-standardised projections:
//   aligning:     scale · Σ_i (1 − C_ii)²          (invariance)
//   constraining: scale · λ · Σ_{i≠j} C_ij²         (redundancy reduction)
// One part computes C once and reports both terms. solo-learn's CIFAR recipe: projector 2048
// hidden → 2048, λ 0.0051, scale 0.1, LARS.
import Neural

public struct BarlowTwins: Method {
    public var hiddenDimension = 2048
    public var projectionDimension = 2048
    public var constants = BarlowTwinsLoss()

    public static let name = MethodName(registering: "barlow-twins")

    public init() {}

    public init(constants: MethodConstants) {
        hiddenDimension = constants.hidden ?? hiddenDimension
        projectionDimension = constants.projection ?? projectionDimension
    }

    public func projector(featureDimension: Int) -> HeadConfig {
        HeadConfig(inputDimension: featureDimension, hiddenDimension: hiddenDimension, outputDimension: projectionDimension)
    }
    public var parts: [WeightedPart] { [WeightedPart(Terms(constants: constants))] }

    struct Terms: LossPart {
        let constants: BarlowTwinsLoss
        func apply(to t: StepTensors, weight: Float) -> [LossValue] {
            let parts = constants.loss(t.view(0, of: t.projections), t.view(1, of: t.projections),
                                       aligningGradientScale: weight, constrainingGradientScale: weight,
                                       gradient1: t.view(0, of: t.projectionGradient), gradient2: t.view(1, of: t.projectionGradient))
            return [LossValue(name: "barlow.invariance", kind: .aligning, value: parts.aligning, weight: weight),
                    LossValue(name: "barlow.redundancy", kind: .constraining, value: parts.constraining, weight: weight)]
        }
    }
}
