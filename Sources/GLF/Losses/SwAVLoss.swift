// SwAV (Caron et al. 2020; solo-learn `swav_loss_func` and `SinkhornKnopp`).
//
// The term works on prototype SCORES, not on projections:
//   s1, s2 [B, K]  s = Cᵀz for each view, z the L2-normalised projection and C the prototypes.
// Normalising z and keeping the prototypes unit-norm (or weight-normed, as solo-learn does) is the
// method's heads' job, and the prototypes are the method's parameters: the loss never sees them.
// The gradient it returns is ∂L/∂s; the heads carry it back to z and C.
//
// Codes (no gradient): q = SinkhornKnopp(s) for each view, from the scores' values.
// Aligning part, the swapped prediction, averaged over the two (code, other view's scores) pairs:
//
//   ℓ(q, s) = −mean_b Σ_k q_bk · log softmax(s_b / T)_k            T = 0.1
//   L       = ½ [ ℓ(q1, s2) + ℓ(q2, s1) ]
//   ∂ℓ/∂s_b = (softmax(s_b / T) · Σ_k q_bk − q_b) / (T · B)         (codes held fixed)
//
// Constraining part: the equipartition of codes over prototypes that Sinkhorn-Knopp enforces
// (each prototype receives about B/K of the batch's mass), plus the unit-norm prototypes. Neither
// is a loss term: a SwAV method has no constraining part of its own (ADC may add one).
// A collapsed assignment (uniform codes, uniform scores) gives ℓ = ln K.
import Foundation
import Neural

/// Sinkhorn-Knopp codes: soft assignments of samples to prototypes, with each prototype receiving
/// an equal share of the mass (an entropy-regularised optimal transport, solved approximately).
public struct SinkhornKnopp: Sendable {
    /// Entropy regularisation: smaller is sharper (SwAV: 0.05).
    public var epsilon: Float
    public var iterations: Int

    public init(epsilon: Float = 0.05, iterations: Int = 3) {
        self.epsilon = epsilon
        self.iterations = iterations
    }

    /// scores [B, K] (and optionally queue [Q, K], scores of past embeddings against the CURRENT
    /// prototypes) → codes [B, K] for the batch rows only. Each returned row sums to 1 (the final
    /// ×N turns per-sample mass 1/N into 1); each prototype's column sums to about N/K over all
    /// rows (B/K over the batch's), exactly so only in the limit of many iterations. Rows are
    /// ordered [batch; queue]; the order is immaterial, every step treats the rows alike.
    ///
    /// With Q = exp(S/ε)ᵀ [K, N], N = B + Q rows in total (the reference, transposed):
    ///   Q /= ΣQ; `iterations` times: Q_k· /= Σ Q_k·, /= K (prototypes); Q_·n /= Σ Q_·n, /= N (samples);
    ///   Q *= N.
    /// Numerics: each prototype's exponent is shifted by its largest score before exp. That is
    /// exact, because the first prototype normalisation divides the shift out, and it keeps at
    /// least one entry of every prototype at 1. The work is in Double (exp underflows there only
    /// beyond score gaps of ~37, far outside cosine scores in [−1, 1]); a sum that still comes out
    /// 0 is replaced by an even spread so that no NaN appears from finite scores.
    public func codes(scores: Tensor, queue: Tensor? = nil) -> Tensor {
        precondition(scores.shape.count == 2, "Sinkhorn-Knopp: scores \(scores.shape) must be [B, K]")
        let (batch, k) = (scores.shape[0], scores.shape[1])
        if let queue { precondition(queue.shape.count == 2 && queue.shape[1] == k, "Sinkhorn-Knopp: queue \(queue.shape) vs K = \(k)") }
        let queueRows = queue?.shape[0] ?? 0
        let n = batch + queueRows
        let codes = Tensor(zeros: [batch, k])
        guard batch > 0, k > 0 else { return codes }

        // q [N, K], sample-major like the scores: batch rows first, then the queue's.
        let q = UnsafeMutablePointer<Double>.allocate(capacity: n * k)
        defer { q.deallocate() }
        func scoreRow(_ row: Int) -> UnsafePointer<Float> {
            UnsafePointer(row < batch ? scores.data + row * k : queue!.data + (row - batch) * k)
        }
        let inverseEpsilon = 1 / Double(epsilon)
        var largest = [Float](repeating: -.infinity, count: k)
        for row in 0..<n {
            let s = scoreRow(row)
            for c in 0..<k { largest[c] = max(largest[c], s[c]) }
        }
        var total = 0.0
        for row in 0..<n {
            let s = scoreRow(row)
            for c in 0..<k {
                let value = exp(Double(s[c] - largest[c]) * inverseEpsilon)
                q[row * k + c] = value
                total += value
            }
        }
        if total > 0 { for i in 0..<(n * k) { q[i] /= total } }

        // Prototype sums and factors are gathered first so that every pass runs along rows.
        var prototypeSums = [Double](repeating: 0, count: k), prototypeFactors = [Double](repeating: 0, count: k)
        for _ in 0..<iterations {
            // Every prototype gets mass 1/K.
            for c in 0..<k { prototypeSums[c] = 0 }
            for row in 0..<n { for c in 0..<k { prototypeSums[c] += q[row * k + c] } }
            for c in 0..<k { prototypeFactors[c] = 1 / (prototypeSums[c] * Double(k)) }
            for row in 0..<n { for c in 0..<k { q[row * k + c] *= prototypeFactors[c] } }
            for c in 0..<k where !(prototypeSums[c] > 0) {
                for row in 0..<n { q[row * k + c] = 1 / (Double(k) * Double(n)) }
            }
            // Every sample gets mass 1/N.
            for row in 0..<n {
                let r = q + row * k
                var sum = 0.0
                for c in 0..<k { sum += r[c] }
                if sum > 0 {
                    let factor = 1 / (sum * Double(n))
                    for c in 0..<k { r[c] *= factor }
                } else {
                    for c in 0..<k { r[c] = 1 / (Double(k) * Double(n)) }
                }
            }
        }
        for i in 0..<(batch * k) { codes.data[i] = Float(q[i] * Double(n)) }
        return codes
    }
}

/// SwAV's aligning part: the swapped prediction of each view's codes from the other view's scores.
public struct SwAVAligning: Sendable {
    /// Softmax temperature on the scores (SwAV: 0.1).
    public var temperature: Float
    public var sinkhorn: SinkhornKnopp

    public init(temperature: Float = 0.1, sinkhorn: SinkhornKnopp = SinkhornKnopp()) {
        self.temperature = temperature
        self.sinkhorn = sinkhorn
    }

    /// Computes each view's codes with Sinkhorn-Knopp (no gradient; optionally over [batch; queue]
    /// rows, queue_v [Q, K] being view v's past embeddings scored by the current prototypes), then
    /// returns ½ [ℓ(q1, s2) + ℓ(q2, s1)] and adds gradientScale · ∂L/∂s_v into gradient_v.
    public func loss(scores1: Tensor, scores2: Tensor, gradientScale: Float, gradient1: Tensor, gradient2: Tensor,
                     queue1: Tensor? = nil, queue2: Tensor? = nil) -> Float {
        let codes1 = sinkhorn.codes(scores: scores1, queue: queue1)
        let codes2 = sinkhorn.codes(scores: scores2, queue: queue2)
        return loss(scores1: scores1, scores2: scores2, codes1: codes1, codes2: codes2,
                    gradientScale: gradientScale, gradient1: gradient1, gradient2: gradient2)
    }

    /// The same with the codes given (and held fixed): codes_v [B, K] are view v's targets.
    public func loss(scores1: Tensor, scores2: Tensor, codes1: Tensor, codes2: Tensor,
                     gradientScale: Float, gradient1: Tensor, gradient2: Tensor) -> Float {
        precondition(scores1.shape.count == 2 && scores1.shape == scores2.shape, "SwAV: scores \(scores1.shape) vs \(scores2.shape)")
        precondition(codes1.shape == scores1.shape && codes2.shape == scores1.shape, "SwAV: codes \(codes1.shape), \(codes2.shape) vs scores \(scores1.shape)")
        precondition(gradient1.shape == scores1.shape && gradient2.shape == scores2.shape, "SwAV: gradient shapes")
        let halfScale = gradientScale / 2
        let predicted2 = swappedPrediction(codes: codes1, scores: scores2, gradientScale: halfScale, gradient: gradient2)
        let predicted1 = swappedPrediction(codes: codes2, scores: scores1, gradientScale: halfScale, gradient: gradient1)
        return (predicted1 + predicted2) / 2
    }

    /// ℓ(q, s) = −mean_b Σ_k q_bk log softmax(s_b/T)_k; adds gradientScale · ∂ℓ/∂s into `gradient`.
    private func swappedPrediction(codes q: Tensor, scores s: Tensor, gradientScale: Float, gradient: Tensor) -> Float {
        let (rows, k) = (s.shape[0], s.shape[1])
        guard rows > 0, k > 0 else { return 0 }
        let inverseTemperature = 1 / temperature
        let factor = gradientScale * inverseTemperature / Float(rows)
        var softmax = [Float](repeating: 0, count: k)
        var total = 0.0
        for b in 0..<rows {
            let (sb, qb, gb) = (s.data + b * k, q.data + b * k, gradient.data + b * k)
            var largest = -Float.infinity
            for c in 0..<k { largest = max(largest, sb[c] * inverseTemperature) }
            var sum = 0.0
            for c in 0..<k {
                softmax[c] = exp(sb[c] * inverseTemperature - largest)
                sum += Double(softmax[c])
            }
            let logSum = Double(largest) + log(sum)
            var codeMass = 0.0, crossEntropy = 0.0
            for c in 0..<k {
                codeMass += Double(qb[c])
                crossEntropy -= Double(qb[c]) * (Double(sb[c] * inverseTemperature) - logSum)
            }
            total += crossEntropy
            guard gradientScale != 0 else { continue }
            let softmaxFactor = factor * Float(codeMass / sum)
            for c in 0..<k { gb[c] += softmaxFactor * softmax[c] - factor * qb[c] }
        }
        return Float(total / Double(rows))
    }
}
