// Exponential moving average of a network's parameters: BYOL's target network.
//   ξ ← τ·ξ + (1 − τ)·θ        ξ: target arena, θ: online arena, τ: decay
// over every float of the two arenas, which must have the same layout (the target is built by the
// same code as the online network, then `copyValues(from:)`).
//
// Batch-norm statistics (role .statistic) are averaged like everything else (as timm's ModelEma
// does with buffers; solo-learn and lightly average only parameters and leave the target's own
// running statistics alone): the target's statistics then follow the averaged network whether or
// not — and in whichever mode — the target is ever run forward, and the update stays one loop over
// one contiguous buffer.
//
// τ is fixed (a daemon has no known end; 0.99 as lightly's CIFAR benchmark) or follows solo-learn's
// cosine schedule from τ_base to 1 over a known number of steps:
//   τ(step) = 1 − (1 − τ_base)·(cos(π·step/T) + 1)/2        (solo/utils/momentum.py, final τ 1)
import Foundation

public struct ExponentialMovingAverage: Sendable, Equatable {
    public enum DecaySchedule: Sendable, Equatable {
        /// The same τ at every step.
        case fixed(Float)
        /// solo-learn's cosine increase from `base` at step 0 to 1 at `totalSteps` (and after).
        case cosine(base: Float, totalSteps: Int)
    }

    public let schedule: DecaySchedule

    public init(schedule: DecaySchedule) {
        switch schedule {
        case .fixed(let tau):
            precondition((0...1).contains(tau), "EMA decay \(tau) is not in [0, 1]")
        case .cosine(let base, let totalSteps):
            precondition((0...1).contains(base), "EMA base decay \(base) is not in [0, 1]")
            precondition(totalSteps > 0, "EMA cosine schedule needs totalSteps > 0, got \(totalSteps)")
        }
        self.schedule = schedule
    }

    /// A fixed decay (the daemon's choice).
    public init(decay: Float = 0.99) { self.init(schedule: .fixed(decay)) }

    /// τ for the update after optimiser step `step` (0-based, as solo-learn's global_step).
    public func decay(atStep step: Int) -> Float {
        switch schedule {
        case .fixed(let tau):
            return tau
        case .cosine(let base, let totalSteps):
            let progress = Double(min(max(step, 0), totalSteps)) / Double(totalSteps)
            return Float(1 - (1 - Double(base)) * (cos(Double.pi * progress) + 1) / 2)
        }
    }

    /// ξ ← τ(step)·ξ + (1 − τ(step))·θ.
    public func update(target: ParameterArena, online: ParameterArena, step: Int) {
        Self.update(target: target, online: online, decay: decay(atStep: step))
    }

    /// ξ ← τ·ξ + (1 − τ)·θ over every float of the arenas, statistics included. τ = 0 copies θ,
    /// τ = 1 leaves ξ unchanged.
    public static func update(target: ParameterArena, online: ParameterArena, decay tau: Float) {
        precondition(target !== online, "EMA: the target and the online arena are the same arena")
        precondition(target.isSealed && online.isSealed, "EMA: both arenas must be sealed")
        precondition(target.count == online.count && target.parameters.count == online.parameters.count,
                     "EMA: arena layouts differ (target: \(target.parameters.count) parameters, \(target.count) floats; online: \(online.parameters.count) parameters, \(online.count) floats)")
        for (t, o) in zip(target.parameters, online.parameters) {
            precondition(t.name == o.name && t.shape == o.shape && t.role == o.role,
                         "EMA: arena layouts differ at target \(t.name) \(t.shape) vs online \(o.name) \(o.shape)")
        }
        let xi = target.values, theta = UnsafePointer(online.values), n = target.count
        let keep = tau, take = 1 - tau
        for i in 0..<n { xi[i] = keep * xi[i] + take * theta[i] }
    }
}
