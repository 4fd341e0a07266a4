// BYOL's aligning part (solo-learn `byol_loss_func`, Grill et al. 2020):
//
//   p [B, D]  the online network's predictions q(g(f(x_a)))       — receives a gradient
//   z [B, D]  the EMA target network's projections of the other view — stop-gradient
//
//   L(p, z) = mean_b [ 2 − 2·cos(p_b, z_b) ]                       ∈ [0, 4]
//   ∂L/∂p_b = −(2/B) · (ẑ_b − cos_b · p̂_b) / ‖p_b‖                 (only the part of ẑ_b across p̂_b)
//
// The method SUMS (does not average) this term over the two view orders: L(p1, z2') + L(p2, z1').
// Normalisation is inside the term, as in the reference (F.normalize, norm clamped at 1e-12), so
// the method passes the raw predictor outputs and target projections.
//
// BYOL has no constraining loss term: collapse is prevented implicitly by the asymmetry of the
// predictor, the stop-gradient on z and the slowly moving EMA target network. A method built on
// this term lists no constraining part of its own (ADC may still add one).
import Foundation
import Neural

public struct BYOLAligning: Sendable {
    /// Norms below this are clamped (PyTorch's F.normalize default), so a zero row cannot divide by 0.
    public var normEpsilon: Float

    public init(normEpsilon: Float = 1e-12) { self.normEpsilon = normEpsilon }

    /// Returns mean_b (2 − 2 cos(p_b, z_b)) and adds gradientScale · ∂L/∂p into `predictionGradient`.
    public func loss(prediction p: Tensor, target z: Tensor, gradientScale: Float, predictionGradient: Tensor) -> Float {
        precondition(p.shape.count == 2 && p.shape == z.shape, "BYOL: prediction \(p.shape) vs target \(z.shape)")
        precondition(predictionGradient.shape == p.shape, "BYOL: gradient \(predictionGradient.shape) vs \(p.shape)")
        let (rows, width) = (p.shape[0], p.shape[1])
        guard rows > 0 else { return 0 }
        var total = 0.0
        let coefficient = -2 * gradientScale / Float(rows)
        for b in 0..<rows {
            let (pb, zb, gb) = (p.data + b * width, z.data + b * width, predictionGradient.data + b * width)
            let pNorm = BLAS.norm(count: width, pb)
            let (pScale, zScale) = (1 / max(pNorm, normEpsilon), 1 / max(BLAS.norm(count: width, zb), normEpsilon))
            let cosine = BLAS.dot(count: width, pb, zb) * pScale * zScale
            total += Double(2 - 2 * cosine)
            guard gradientScale != 0 else { continue }
            if pNorm > normEpsilon {
                // d cos / dp = (ẑ − cos·p̂) / ‖p‖
                let (a, c) = (coefficient * zScale * pScale, -coefficient * cosine * pScale * pScale)
                for j in 0..<width { gb[j] += a * zb[j] + c * pb[j] }
            } else {
                // Below the clamp p̂ = p/ε is linear in p: d cos / dp = ẑ / ε.
                let a = coefficient * zScale / normEpsilon
                for j in 0..<width { gb[j] += a * zb[j] }
            }
        }
        return Float(total / Double(rows))
    }
}
