// LARS (You et al. 2017, "Large batch training of convolutional networks"), exactly as solo-learn's
// solo/utils/lars.py (itself copied from PyTorch Lightning Bolts' pl_bolts/optimizers/lars.py), with
// exclude_bias_n_norm_lars and exclude_bias_n_norm_wd both on:
//
// For each weight tensor (role .weight), with ‖·‖ the Euclidean norm over the tensor:
//   if ‖w‖ ≠ 0 and ‖g‖ ≠ 0:
//     trust = η·‖w‖ / (‖g‖ + wd·‖w‖ + eps)          η: trust coefficient (0.02 in solo-learn)
//     with clipping: trust = min(trust / lr, 1)      (so the effective rate is min(η·ratio, lr))
//     d = trust·(g + wd·w)
//   else: d = g                                      (bolts skips decay too when a norm is 0)
// Biases and norm parameters: d = g (no decay, no scaling). Statistics are never touched.
// Then PyTorch's momentum SGD on d: buf = d on the first step, buf = μ·buf + d afterwards;
// w −= lr·buf (Nesterov: w −= lr·(d + μ·buf)). State: one slot "momentum_buffer" (none when μ = 0).
public final class LARS: Optimiser {
    public var learningRate: Float
    public let momentum: Float
    public let weightDecay: Float
    public let trustCoefficient: Float
    public let epsilon: Float
    /// solo-learn's clip_lr: the LARS rate never exceeds the global learning rate.
    public let clipsLearningRate: Bool
    public let nesterov: Bool
    public private(set) var stepCount = 0
    private let slots: OptimiserSlots

    public init(learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 0, trustCoefficient: Float = 0.02,
                clipsLearningRate: Bool = true, epsilon: Float = 1e-8, nesterov: Bool = false) {
        precondition(momentum >= 0 && weightDecay >= 0, "LARS: momentum and weight decay must be ≥ 0")
        precondition(!nesterov || momentum > 0, "LARS: Nesterov momentum needs a momentum > 0")
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.trustCoefficient = trustCoefficient
        self.clipsLearningRate = clipsLearningRate
        self.epsilon = epsilon
        self.nesterov = nesterov
        slots = OptimiserSlots(kind: "LARS", names: momentum == 0 ? [] : ["momentum_buffer"])
    }

    public func step(_ arena: ParameterArena) {
        slots.bind(arena)
        let buffer = slots.buffers.first
        for p in arena.parameters where p.role != .statistic {
            var scale: Float = 1, decay: Float = 0
            if p.role.isScaledAndDecayed {
                let weightNorm = BLAS.norm(count: p.count, p.values)
                let gradientNorm = BLAS.norm(count: p.count, p.gradients)
                if weightNorm != 0 && gradientNorm != 0 {
                    scale = trustCoefficient * weightNorm / (gradientNorm + weightNorm * weightDecay + epsilon)
                    if clipsLearningRate { scale = min(scale / learningRate, 1) }
                    decay = weightDecay
                }
            }
            momentumUpdate(
                count: p.count, values: p.values, gradients: p.gradients, momentumBuffer: buffer.map { $0 + p.offset },
                gradientScale: scale, weightDecay: decay,
                learningRate: learningRate, momentum: momentum, nesterov: nesterov, isFirstStep: stepCount == 0)
        }
        stepCount += 1
    }

    public func saveState(for arena: ParameterArena) -> OptimiserState {
        slots.save(for: arena, stepCount: stepCount)
    }

    public func restoreState(_ state: OptimiserState, for arena: ParameterArena) throws(OptimiserStateError) {
        stepCount = try slots.restore(state, for: arena)
    }
}
