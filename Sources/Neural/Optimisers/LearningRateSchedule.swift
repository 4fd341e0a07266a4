// Learning rate as a function of the step number (0 = the first optimiser step):
//
//   step < W (warm-up):      start + (peak − start)·step/W          (linear, `start` at step 0)
//   W ≤ step < T (cosine):   final + ½(peak − final)(1 + cos(π(step − W)/(T − W)))
//   step ≥ T:                final
//
// W = warmupSteps, T = totalSteps. `peak` is reached at step W; the midpoint of the decay,
// (peak + final)/2, at W + (T − W)/2; `final` at step T (one past the last step of a T-step run).
// Without a total (a daemon has no known end) the rate stays at `peak` after the warm-up.
// This is solo-learn's LinearWarmupCosineAnnealingLR (stepped per iteration) except that the
// warm-up slope is (peak − start)/W instead of /(W − 1), so that warm-up and cosine meet at step W
// instead of holding `peak` for two steps.
import Foundation

public struct LearningRateSchedule: Sendable, Equatable {
    public let peak: Float
    public let warmupSteps: Int
    public let warmupStart: Float
    /// nil: no decay, `peak` forever after the warm-up.
    public let totalSteps: Int?
    public let final: Float

    /// The same rate at every step.
    public static func constant(_ learningRate: Float) -> LearningRateSchedule {
        LearningRateSchedule(peak: learningRate, warmupSteps: 0, warmupStart: learningRate, totalSteps: nil, final: learningRate)
    }

    /// Linear warm-up from `warmupStart` to `peak` over `warmupSteps`, then `peak` for ever.
    public static func warmupConstant(peak: Float, warmupSteps: Int, warmupStart: Float = 0) -> LearningRateSchedule {
        precondition(warmupSteps >= 0, "warm-up steps must be ≥ 0")
        return LearningRateSchedule(peak: peak, warmupSteps: warmupSteps, warmupStart: warmupStart, totalSteps: nil, final: peak)
    }

    /// Linear warm-up over `warmupSteps`, then cosine decay from `peak` to `final` at `totalSteps`.
    public static func warmupCosine(peak: Float, warmupSteps: Int, totalSteps: Int, warmupStart: Float = 0,
                                    final: Float = 0) -> LearningRateSchedule {
        precondition(warmupSteps >= 0 && totalSteps > warmupSteps,
                     "warm-up cosine schedule needs 0 ≤ warmupSteps (\(warmupSteps)) < totalSteps (\(totalSteps))")
        return LearningRateSchedule(peak: peak, warmupSteps: warmupSteps, warmupStart: warmupStart, totalSteps: totalSteps, final: final)
    }

    public func learningRate(atStep step: Int) -> Float {
        precondition(step >= 0, "step \(step) < 0")
        if step < warmupSteps {
            return Float(Double(warmupStart) + Double(peak - warmupStart) * Double(step) / Double(warmupSteps))
        }
        guard let totalSteps else { return peak }
        if step >= totalSteps { return final }
        let progress = Double(step - warmupSteps) / Double(totalSteps - warmupSteps)
        return Float(Double(final) + 0.5 * Double(peak - final) * (1 + cos(Double.pi * progress)))
    }
}
