// Stochastic gradient descent with momentum, PyTorch's torch.optim.SGD semantics (dampening 0):
//   d = g + wd·w            (wd only on weights; biases and norm parameters get d = g)
//   buf = d on the first step, buf = μ·buf + d afterwards
//   w −= lr·buf             (Nesterov: w −= lr·(d + μ·buf))
// Statistics are never touched. State: one slot "momentum_buffer" (none when μ = 0).
public final class SGD: Optimiser {
    public var learningRate: Float
    public let momentum: Float
    public let weightDecay: Float
    public let nesterov: Bool
    public private(set) var stepCount = 0
    private let slots: OptimiserSlots

    public init(learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 0, nesterov: Bool = false) {
        precondition(momentum >= 0 && weightDecay >= 0, "SGD: momentum and weight decay must be ≥ 0")
        precondition(!nesterov || momentum > 0, "SGD: Nesterov momentum needs a momentum > 0")
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        slots = OptimiserSlots(kind: "SGD", names: momentum == 0 ? [] : ["momentum_buffer"])
    }

    public func step(_ arena: ParameterArena) {
        slots.bind(arena)
        let buffer = slots.buffers.first
        for p in arena.parameters where p.role != .statistic {
            momentumUpdate(
                count: p.count, values: p.values, gradients: p.gradients, momentumBuffer: buffer.map { $0 + p.offset },
                gradientScale: 1, weightDecay: p.role.isScaledAndDecayed ? weightDecay : 0,
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
