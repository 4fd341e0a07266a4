// Barlow Twins (Zbontar et al. 2021; solo-learn `barlow_loss_func`): both parts read one
// cross-correlation matrix.
//
//   z1, z2 [N, D]  the projections of the two views (raw: the term standardises them itself)
//   n = (z − mean) / sqrt(var + ε)    per feature over the batch, biased variance, no affine
//   C = n1ᵀ n2 / N                    [D, D]: one sgemm
//
//   aligning     = scale · Σ_i (1 − C_ii)²            (invariance: each feature agrees across views)
//   constraining = scale · λ · Σ_{i≠j} C_ij²          (redundancy reduction: features decorrelate)
//
// Backward: G = ∂L/∂C, then ∂L/∂n1 = n2 Gᵀ / N and ∂L/∂n2 = n1 G / N (two sgemms), then through
// the standardisation exactly as batch norm without affine:
//   ∂L/∂z = rstd · (∂L/∂n − mean(∂L/∂n) − n · mean(∂L/∂n ⊙ n))   per feature over the batch.
// So both views receive a gradient, and the loss is invariant to a per-feature affine map of
// either input (up to ε).
//
// Both parts share n and C: a method that wants both calls `BarlowTwinsLoss.loss` once with a
// gradient scale per part (the gradient is linear in G, so the parts' gradients simply add).
// `BarlowTwinsAligning` and `BarlowTwinsConstraining` are the parts on their own, following
// LossConventions.swift exactly; each recomputes C.
import Foundation
import Neural

public struct BarlowTwinsLoss: Sendable {
    /// Weight of the off-diagonal terms (solo-learn CIFAR: 0.0051; lightly: 0.005).
    public var lambda: Float
    /// Multiplies both parts (solo-learn CIFAR: 0.1; lightly: 1).
    public var scale: Float
    /// Added to the batch variance before the square root.
    public var epsilon: Float

    public init(lambda: Float = 0.0051, scale: Float = 0.1, epsilon: Float = 1e-5) {
        self.lambda = lambda
        self.scale = scale
        self.epsilon = epsilon
    }

    /// Returns both parts and adds aligningGradientScale · ∂aligning/∂z + constrainingGradientScale
    /// · ∂constraining/∂z into `gradient1` (for z1) and `gradient2` (for z2). With both scales 0 it
    /// only evaluates.
    public func loss(_ z1: Tensor, _ z2: Tensor,
                     aligningGradientScale: Float, constrainingGradientScale: Float,
                     gradient1: Tensor, gradient2: Tensor) -> SplitLoss {
        precondition(z1.shape.count == 2 && z1.shape == z2.shape, "Barlow Twins: z1 \(z1.shape) vs z2 \(z2.shape)")
        precondition(gradient1.shape == z1.shape && gradient2.shape == z2.shape, "Barlow Twins: gradient shapes")
        let (n, d) = (z1.shape[0], z1.shape[1])
        guard n > 0, d > 0 else { return SplitLoss(aligning: 0, constraining: 0) }

        let standard1 = UnsafeMutablePointer<Float>.allocate(capacity: n * d)
        let standard2 = UnsafeMutablePointer<Float>.allocate(capacity: n * d)
        let correlation = UnsafeMutablePointer<Float>.allocate(capacity: d * d)
        defer { standard1.deallocate(); standard2.deallocate(); correlation.deallocate() }
        let rstd1 = standardise(z1.data, rows: n, width: d, into: standard1)
        let rstd2 = standardise(z2.data, rows: n, width: d, into: standard2)

        // C [D, D] = n1ᵀ [D, N] · n2 [N, D] / N
        BLAS.gemm(transposeA: true, m: d, n: d, k: n, alpha: 1 / Float(n),
                  a: standard1, lda: d, b: standard2, ldb: d, c: correlation, ldc: d)

        var onDiagonal = 0.0, offDiagonal = 0.0
        for i in 0..<d {
            for j in 0..<d {
                let c = Double(correlation[i * d + j])
                if i == j { onDiagonal += (1 - c) * (1 - c) } else { offDiagonal += c * c }
            }
        }
        let parts = SplitLoss(aligning: Float(Double(scale) * onDiagonal),
                          constraining: Float(Double(scale) * Double(lambda) * offDiagonal))
        guard aligningGradientScale != 0 || constrainingGradientScale != 0 else { return parts }

        // G = ∂L/∂C, in place over C.
        let diagonalFactor = -2 * scale * aligningGradientScale
        let offDiagonalFactor = 2 * scale * lambda * constrainingGradientScale
        for i in 0..<d {
            for j in 0..<d {
                let index = i * d + j
                correlation[index] = i == j ? diagonalFactor * (1 - correlation[index]) : offDiagonalFactor * correlation[index]
            }
        }
        let standardGradient = UnsafeMutablePointer<Float>.allocate(capacity: n * d)
        defer { standardGradient.deallocate() }
        // ∂L/∂n1 [N, D] = n2 [N, D] · Gᵀ [D, D] / N
        BLAS.gemm(transposeB: true, m: n, n: d, k: d, alpha: 1 / Float(n),
                  a: standard2, lda: d, b: correlation, ldb: d, c: standardGradient, ldc: d)
        addStandardisationBackward(standardGradient, standard: standard1, rstd: rstd1, rows: n, width: d, into: gradient1.data)
        // ∂L/∂n2 [N, D] = n1 [N, D] · G [D, D] / N
        BLAS.gemm(m: n, n: d, k: d, alpha: 1 / Float(n),
                  a: standard1, lda: d, b: correlation, ldb: d, c: standardGradient, ldc: d)
        addStandardisationBackward(standardGradient, standard: standard2, rstd: rstd2, rows: n, width: d, into: gradient2.data)
        return parts
    }

    /// out = (x − mean) · rstd per column of x [rows, width]; returns rstd [width].
    private func standardise(_ x: UnsafePointer<Float>, rows: Int, width: Int, into out: UnsafeMutablePointer<Float>) -> [Float] {
        var mean = [Double](repeating: 0, count: width), variance = [Double](repeating: 0, count: width)
        for r in 0..<rows { for j in 0..<width { mean[j] += Double(x[r * width + j]) } }
        for j in 0..<width { mean[j] /= Double(rows) }
        for r in 0..<rows {
            for j in 0..<width { let centred = Double(x[r * width + j]) - mean[j]; variance[j] += centred * centred }
        }
        let rstd = (0..<width).map { Float(1 / (variance[$0] / Double(rows) + Double(epsilon)).squareRoot()) }
        for r in 0..<rows {
            for j in 0..<width { out[r * width + j] = Float(Double(x[r * width + j]) - mean[j]) * rstd[j] }
        }
        return rstd
    }

    /// dx += rstd · (dn − mean(dn) − n · mean(dn ⊙ n)) per column (batch norm's backward, no affine).
    private func addStandardisationBackward(_ dn: UnsafePointer<Float>, standard: UnsafePointer<Float>, rstd: [Float],
                                            rows: Int, width: Int, into dx: UnsafeMutablePointer<Float>) {
        var meanGradient = [Double](repeating: 0, count: width), meanProduct = [Double](repeating: 0, count: width)
        for r in 0..<rows {
            for j in 0..<width {
                let index = r * width + j
                meanGradient[j] += Double(dn[index])
                meanProduct[j] += Double(dn[index]) * Double(standard[index])
            }
        }
        let (a, b) = (meanGradient.map { Float($0 / Double(rows)) }, meanProduct.map { Float($0 / Double(rows)) })
        for r in 0..<rows {
            for j in 0..<width {
                let index = r * width + j
                dx[index] += rstd[j] * (dn[index] - a[j] - standard[index] * b[j])
            }
        }
    }
}

/// Barlow Twins' aligning part alone: scale · Σ_i (1 − C_ii)².
public struct BarlowTwinsAligning: Sendable {
    public var constants: BarlowTwinsLoss

    public init(_ constants: BarlowTwinsLoss = BarlowTwinsLoss()) { self.constants = constants }

    public func loss(_ z1: Tensor, _ z2: Tensor, gradientScale: Float, gradient1: Tensor, gradient2: Tensor) -> Float {
        constants.loss(z1, z2, aligningGradientScale: gradientScale, constrainingGradientScale: 0,
                  gradient1: gradient1, gradient2: gradient2).aligning
    }
}

/// Barlow Twins' constraining part alone: scale · λ · Σ_{i≠j} C_ij².
public struct BarlowTwinsConstraining: Sendable {
    public var constants: BarlowTwinsLoss

    public init(_ constants: BarlowTwinsLoss = BarlowTwinsLoss()) { self.constants = constants }

    public func loss(_ z1: Tensor, _ z2: Tensor, gradientScale: Float, gradient1: Tensor, gradient2: Tensor) -> Float {
        constants.loss(z1, z2, aligningGradientScale: 0, constrainingGradientScale: gradientScale,
                  gradient1: gradient1, gradient2: gradient2).constraining
    }
}
