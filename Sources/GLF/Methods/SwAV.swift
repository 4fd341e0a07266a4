// SwAV (Caron et al. 2020) in GLF terms, on scores s = Cᵀẑ of unit projections against unit-norm
// prototypes C (the `Prototypes` head):
//   aligning:     swapped prediction — each view's Sinkhorn codes predicted from the other
//                 view's scores, −mean Σ_k q_k log softmax(s/T)_k, T = 0.1
//   constraining: the equipartition of codes that Sinkhorn-Knopp enforces (ε 0.05, 3 iterations)
//                 and the unit-norm prototypes: no loss term.
// solo-learn's CIFAR recipe: projector 2048 hidden → 128, 3000 prototypes, frozen for the first
// epoch; lightly's CIFAR benchmark uses 512 prototypes (method.md). The queue (solo-learn: 3840
// past projections per view) is off by default: on 2 cores Sinkhorn over 3840 × 3000 costs more
// than the rest of the step; set `prototypesConfig.queueLength` to use one.
import Neural

public struct SwAV: Method {
    public var hiddenDimension = 2048
    public var projectionDimension = 128
    public var prototypesConfig = PrototypesConfig(count: 512, frozenSteps: 300)
    public var aligning = SwAVAligning()

    public static let name = MethodName(registering: "swav")

    public init() {}

    public init(constants: MethodConstants) {
        hiddenDimension = constants.hidden ?? hiddenDimension
        projectionDimension = constants.projection ?? projectionDimension
        prototypesConfig.count = constants.prototypes ?? prototypesConfig.count
        prototypesConfig.frozenSteps = constants.prototypesFrozenSteps ?? prototypesConfig.frozenSteps
        prototypesConfig.queueLength = constants.prototypesQueue ?? prototypesConfig.queueLength
        aligning.temperature = constants.temperature ?? aligning.temperature
    }

    public func projector(featureDimension: Int) -> HeadConfig {
        HeadConfig(inputDimension: featureDimension, hiddenDimension: hiddenDimension, outputDimension: projectionDimension)
    }
    public var parts: [WeightedPart] { [WeightedPart(Terms(loss: aligning))] }

    /// The prototypes: s = Cᵀẑ on unit projections, not stepped at all for their first steps (as
    /// solo-learn drops their gradient, weight decay included), renormalised after every step.
    public func makeHeads(projectionDimension: Int, workers: Int, seed: UInt64) -> [MethodHead] {
        let count = prototypesConfig.count
        let model = ReplicatedModel(replicas: 2, workers: workers) { arena in
            var rng = SeededGenerator(seed: seed &+ 2)
            return Prototypes("prototypes", in: arena, dimension: projectionDimension, count: count, rng: &rng)
        }
        return [MethodHead(name: "prototypes", model: model, input: \.unitProjections, inputGradient: \.unitProjectionGradient,
                           output: \.scores, outputGradient: \.scoreGradient, frozenSteps: prototypesConfig.frozenSteps,
                           afterUpdate: { ($0.replicas[0] as! Prototypes).normalize() })]
    }

    public func makeState(batch: Int, projectionDimension: Int) -> (any MethodState)? {
        prototypesConfig.queueLength > 0
            ? SwAVQueue(length: prototypesConfig.queueLength, batch: batch, dimension: projectionDimension) : nil
    }

    struct Terms: LossPart {
        let loss: SwAVAligning
        func apply(to t: StepTensors, weight: Float) -> [LossValue] {
            guard let s = t.scores else { preconditionFailure("SwAV needs prototype scores") }
            let value = loss.loss(scores1: t.view(0, of: s), scores2: t.view(1, of: s), gradientScale: weight,
                                  gradient1: t.view(0, of: t.scoreGradient), gradient2: t.view(1, of: t.scoreGradient),
                                  queue1: t.queueScores?[0], queue2: t.queueScores?[1])
            return [LossValue(name: "swav", kind: .aligning, value: value, weight: weight)]
        }
    }
}

public struct PrototypesConfig: Sendable, Codable, Equatable {
    public var count: Int
    /// Prototypes are not updated for the first steps (SwAV's freeze_prototypes_epochs).
    public var frozenSteps: Int
    /// Past unit projections kept per view (0: none). Once full, Sinkhorn-Knopp computes the codes
    /// over [batch; queue], scored by the current prototypes: equipartition over more samples than
    /// a small batch has (SwAV's queue).
    public var queueLength: Int

    public init(count: Int, frozenSteps: Int, queueLength: Int = 0) {
        self.count = count
        self.frozenSteps = frozenSteps
        self.queueLength = queueLength
    }
}
