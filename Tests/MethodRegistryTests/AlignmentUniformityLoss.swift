// A method's loss written only for the registry's test: Wang & Isola (2020)'s alignment and
// uniformity on unit projections x of the two views (rows of view 1, then view 2, N = 2B rows):
//   aligning:     A = mean_i ‖x_i − x_i'‖²                           over the B pairs
//   constraining: U = log mean_{i≠j} exp(−t ‖x_i − x_j‖²)            over all N rows, t = 2
// Gradients (w_ij = exp(−t d_ij), S = Σ_{i≠j} w_ij):
//   ∂A/∂x_i = 2(x_i − x_i')/B,  ∂A/∂x_i' = −∂A/∂x_i
//   ∂U/∂x_i = −4t Σ_{j≠i} w_ij (x_i − x_j) / S
import Foundation
import Neural

struct AlignmentUniformityLoss: Sendable {
    var t: Float = 2

    /// x [N, D] with N = 2B (view 1's rows, then view 2's). Adds scale · ∂/∂x of each term into
    /// `gradient`; returns (A, U).
    func loss(_ x: Tensor, aligningScale: Float, constrainingScale: Float, gradient: Tensor) -> (aligning: Float, constraining: Float) {
        let (n, d) = (x.rows, x.lastDimension)
        let b = n / 2
        var aligning = 0.0
        for i in 0..<b {
            for k in 0..<d {
                let diff = x[i * d + k] - x[(i + b) * d + k]
                aligning += Double(diff * diff)
                let g = aligningScale * 2 * diff / Float(b)
                gradient[i * d + k] += g
                gradient[(i + b) * d + k] -= g
            }
        }
        var weights = [Double](repeating: 0, count: n * n), total = 0.0
        for i in 0..<n {
            for j in 0..<n where j != i {
                var distance = 0.0
                for k in 0..<d { let diff = Double(x[i * d + k] - x[j * d + k]); distance += diff * diff }
                weights[i * n + j] = exp(-Double(t) * distance)
                total += weights[i * n + j]
            }
        }
        for i in 0..<n {
            for j in 0..<n where j != i {
                let w = Float(-4 * Double(t) * weights[i * n + j] / total) * constrainingScale
                for k in 0..<d { gradient[i * d + k] += w * (x[i * d + k] - x[j * d + k]) }
            }
        }
        return (Float(aligning / Double(b)), Float(log(total / Double(n * (n - 1)))))
    }
}
