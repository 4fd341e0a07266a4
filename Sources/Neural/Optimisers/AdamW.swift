// AdamW (Loshchilov & Hutter), PyTorch's torch.optim.AdamW semantics (amsgrad off). At step t ≥ 1:
//   w ← w·(1 − lr·wd)                      decoupled decay, weights only (not biases, norms)
//   m ← m + (1 − β1)·(g − m)               = β1·m + (1 − β1)·g (PyTorch's lerp form)
//   v ← β2·v + (1 − β2)·g²
//   w ← w − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps)
// Statistics are never touched. State: slots "exp_avg" (m) and "exp_avg_sq" (v), plus the step
// count t.
import Foundation

public final class AdamW: Optimiser {
    public var learningRate: Float
    public let beta1: Float, beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    public private(set) var stepCount = 0
    private let slots = OptimiserSlots(kind: "AdamW", names: ["exp_avg", "exp_avg_sq"])

    /// PyTorch's defaults, including weight decay 0.01.
    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0.01) {
        precondition((0..<1).contains(beta1) && (0..<1).contains(beta2), "AdamW: betas must be in [0, 1)")
        precondition(weightDecay >= 0, "AdamW: weight decay must be ≥ 0")
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public func step(_ arena: ParameterArena) {
        slots.bind(arena)
        stepCount += 1
        // Scalars in Double as PyTorch computes them in Python, rounded once to Float.
        let t = Double(stepCount)
        let stepSize = Float(Double(learningRate) / (1 - pow(Double(beta1), t)))
        let correction2 = Float((1 - pow(Double(beta2), t)).squareRoot())
        let decayFactor = 1 - learningRate * weightDecay
        let b2 = beta2, eps = epsilon
        let oneMinusB1 = 1 - beta1, oneMinusB2 = 1 - beta2
        for p in arena.parameters where p.role != .statistic {
            let n = p.count, w = p.values, g = p.gradients
            let m = slots.buffers[0] + p.offset, v = slots.buffers[1] + p.offset
            // One pass: (w·f) − update, the same two roundings as PyTorch's mul_ then addcdiv_;
            // f = 1 (exact) where there is no decay.
            let f = p.role.isScaledAndDecayed ? decayFactor : 1
            for i in 0..<n {
                let gi = g[i]
                let mi = m[i] + oneMinusB1 * (gi - m[i])
                let vi = b2 * v[i] + oneMinusB2 * gi * gi
                m[i] = mi
                v[i] = vi
                w[i] = w[i] * f - stepSize * (mi / (vi.squareRoot() / correction2 + eps))
            }
        }
    }

    public func saveState(for arena: ParameterArena) -> OptimiserState {
        slots.save(for: arena, stepCount: stepCount)
    }

    public func restoreState(_ state: OptimiserState, for arena: ParameterArena) throws(OptimiserStateError) {
        stepCount = try slots.restore(state, for: arena)
    }
}
