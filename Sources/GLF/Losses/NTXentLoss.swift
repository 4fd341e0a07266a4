// SimCLR's NT-Xent (Chen et al. 2020; solo-learn `simclr_loss_func`), the baseline, split the GLF way.
//
//   z1, z2 [B, D]  the two views' projections, ALREADY L2-normalised: the method puts an
//                  L2Normalize layer after its projector, so the gradient returned here is
//                  ∂L/∂(normalised z) and that layer's backward projects it. The term takes the
//                  rows as given (it computes dot products, not cosines).
//   u = [z1; z2] [2B, D],  ℓ_ij = u_i·u_j / τ  [2B, 2B] (one sgemm),  i' = the other view of i
//
//   aligning     = −mean_i ℓ_ii'                         (= −mean_b z1_b·z2_b / τ)
//   constraining =  mean_i logsumexp_{j≠i} ℓ_ij          (all 2B − 1 others, the positive included)
//   aligning + constraining = mean_i −log( exp ℓ_ii' / Σ_{j≠i} exp ℓ_ij ) = NT-Xent
//
// Backward: with G = ∂L/∂ℓ [2B, 2B] (G_ij = softmax_{j≠i}(ℓ_i·)_j / 2B for the constraining part,
// G_ii' −= 1/2B for the aligning part), ∂L/∂u = (G + Gᵀ) u / τ (one sgemm per view's rows).
//
// Temperature: solo-learn's CIFAR config uses τ = 0.2 (scripts/pretrain/cifar/simclr.yaml),
// the SimCLR paper 0.1–0.5 by batch size; default 0.2, configurable.
import Foundation
import Neural

public struct NTXentLoss: Sendable {
    public var temperature: Float

    public init(temperature: Float = 0.2) { self.temperature = temperature }

    /// Returns both parts and adds aligningGradientScale · ∂aligning/∂z + constrainingGradientScale
    /// · ∂constraining/∂z into `gradient1` (for z1) and `gradient2` (for z2).
    public func loss(_ z1: Tensor, _ z2: Tensor,
                     aligningGradientScale: Float, constrainingGradientScale: Float,
                     gradient1: Tensor, gradient2: Tensor) -> SplitLoss {
        precondition(z1.shape.count == 2 && z1.shape == z2.shape, "NT-Xent: z1 \(z1.shape) vs z2 \(z2.shape)")
        precondition(gradient1.shape == z1.shape && gradient2.shape == z2.shape, "NT-Xent: gradient shapes")
        let (batch, d) = (z1.shape[0], z1.shape[1])
        guard batch > 0 else { return SplitLoss(aligning: 0, constraining: 0) }
        let n = 2 * batch

        let u = UnsafeMutablePointer<Float>.allocate(capacity: n * d)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer { u.deallocate(); logits.deallocate() }
        u.update(from: z1.data, count: batch * d)
        (u + batch * d).update(from: z2.data, count: batch * d)
        let inverseTemperature = 1 / temperature
        // ℓ [2B, 2B] = u uᵀ / τ
        BLAS.gemm(transposeB: true, m: n, n: n, k: d, alpha: inverseTemperature, a: u, lda: d, b: u, ldb: d, c: logits, ldc: n)

        var aligning = 0.0, constraining = 0.0
        let computeGradient = aligningGradientScale != 0 || constrainingGradientScale != 0
        let softmaxFactor = constrainingGradientScale / Float(n)
        for i in 0..<n {
            let row = logits + i * n
            let positive = (i + batch) % n
            aligning -= Double(row[positive])
            var largest = -Float.infinity
            for j in 0..<n where j != i { largest = max(largest, row[j]) }
            // Row i becomes exp(ℓ_ij − max) (0 at j = i), then row i of G, in place.
            var sum = 0.0
            for j in 0..<n {
                row[j] = j == i ? 0 : exp(row[j] - largest)
                sum += Double(row[j])
            }
            constraining += Double(largest) + log(sum)
            guard computeGradient else { continue }
            BLAS.scale(count: n, alpha: softmaxFactor * Float(1 / sum), x: row)
            row[positive] -= aligningGradientScale / Float(n)
        }
        let parts = SplitLoss(aligning: Float(aligning / Double(n)), constraining: Float(constraining / Double(n)))
        guard computeGradient else { return parts }

        // G + Gᵀ, in place (the diagonal is 0).
        for i in 0..<n {
            for j in (i + 1)..<n {
                let symmetric = logits[i * n + j] + logits[j * n + i]
                logits[i * n + j] = symmetric
                logits[j * n + i] = symmetric
            }
        }
        // ∂L/∂z1 += (G + Gᵀ)[0..<B, :] · u / τ, and the same for z2 with rows B..<2B.
        BLAS.gemm(m: batch, n: d, k: n, alpha: inverseTemperature, a: logits, lda: n, b: u, ldb: d,
                  beta: 1, c: gradient1.data, ldc: d)
        BLAS.gemm(m: batch, n: d, k: n, alpha: inverseTemperature, a: logits + batch * n, lda: n, b: u, ldb: d,
                  beta: 1, c: gradient2.data, ldc: d)
        return parts
    }
}

/// NT-Xent's aligning part alone: −mean_i u_i·u_i' / τ.
public struct NTXentAligning: Sendable {
    public var temperature: Float

    public init(temperature: Float = 0.2) { self.temperature = temperature }

    /// Needs no [2B, 2B] matrix: −mean_b z1_b·z2_b / τ, ∂/∂z1_b = −z2_b / (Bτ), ∂/∂z2_b = −z1_b / (Bτ).
    public func loss(_ z1: Tensor, _ z2: Tensor, gradientScale: Float, gradient1: Tensor, gradient2: Tensor) -> Float {
        precondition(z1.shape.count == 2 && z1.shape == z2.shape, "NT-Xent: z1 \(z1.shape) vs z2 \(z2.shape)")
        precondition(gradient1.shape == z1.shape && gradient2.shape == z2.shape, "NT-Xent: gradient shapes")
        let (batch, d) = (z1.shape[0], z1.shape[1])
        guard batch > 0 else { return 0 }
        let total = BLAS.dot(count: batch * d, z1.data, z2.data)
        if gradientScale != 0 {
            let factor = -gradientScale / (Float(batch) * temperature)
            BLAS.axpy(count: batch * d, alpha: factor, x: z2.data, y: gradient1.data)
            BLAS.axpy(count: batch * d, alpha: factor, x: z1.data, y: gradient2.data)
        }
        return -total / (Float(batch) * temperature)
    }
}

/// NT-Xent's constraining part alone: mean_i logsumexp_{j≠i} u_i·u_j / τ (uniformity).
public struct NTXentConstraining: Sendable {
    public var temperature: Float

    public init(temperature: Float = 0.2) { self.temperature = temperature }

    public func loss(_ z1: Tensor, _ z2: Tensor, gradientScale: Float, gradient1: Tensor, gradient2: Tensor) -> Float {
        NTXentLoss(temperature: temperature).loss(z1, z2, aligningGradientScale: 0, constrainingGradientScale: gradientScale,
                                                  gradient1: gradient1, gradient2: gradient2).constraining
    }
}
