// t-SNE (van der Maaten & Hinton, 2008) for glfctl map --method tsne: exact, O(N²) a step, for the
// few thousand points a map shows. Input affinities are Gaussian with a bandwidth per point found
// for `perplexity` (the same calibration as ADC's input-space prior); output affinities use the
// Student-t kernel 1 / (1 + d²); gradient descent with momentum, early exaggeration first.
import Foundation

public enum TSNE {
    /// 2-D coordinates of the rows of `vectors` ([count, dimension]); deterministic (a fixed
    /// initial layout from the first two principal components, scaled down).
    public static func embed(_ vectors: [Float], dimension: Int, perplexity: Double = 30, iterations: Int = 750) -> [[Double]] {
        let n = vectors.count / dimension
        guard n > 2 else { return PrincipalComponents.project(vectors, dimension: dimension) }
        // Squared distances.
        var distances = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in (i + 1)..<n {
                var sum = 0.0
                for k in 0..<dimension { let d = Double(vectors[i * dimension + k] - vectors[j * dimension + k]); sum += d * d }
                distances[i * n + j] = sum
                distances[j * n + i] = sum
            }
        }
        // P(j|i) with entropy log(perplexity), by bisection on the precision β = 1 / 2σ².
        let target = log(min(perplexity, Double(n - 1) / 3))
        var p = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            var (beta, low, high) = (1.0, 0.0, Double.infinity)
            let scale = distances[(i * n)..<(i * n + n)].filter { $0 > 0 }.min() ?? 1
            for _ in 0..<60 {
                var sum = 0.0, weighted = 0.0
                for j in 0..<n where j != i {
                    let w = exp(-beta * (distances[i * n + j] - scale))
                    p[i * n + j] = w
                    sum += w
                    weighted += w * (distances[i * n + j] - scale)
                }
                let entropy = log(sum) + beta * weighted / sum
                for j in 0..<n where j != i { p[i * n + j] /= sum }
                if abs(entropy - target) < 1e-5 { break }
                if entropy > target { low = beta; beta = high.isFinite ? (beta + high) / 2 : beta * 2 }
                else { high = beta; beta = (beta + low) / 2 }
            }
        }
        // Symmetric joint P.
        for i in 0..<n { for j in (i + 1)..<n { let s = (p[i * n + j] + p[j * n + i]) / Double(2 * n); p[i * n + j] = s; p[j * n + i] = s } }
        var y = PrincipalComponents.project(vectors, dimension: dimension).map { $0.map { $0 * 1e-4 } }
        let spread = max(1e-12, y.map { $0[0] * $0[0] + $0[1] * $0[1] }.max() ?? 1).squareRoot()
        y = y.map { $0.map { $0 / spread * 1e-2 } }
        var velocity = [[Double]](repeating: [0, 0], count: n)
        var q = [Double](repeating: 0, count: n * n)
        for iteration in 0..<iterations {
            let exaggeration = iteration < 250 ? 12.0 : 1.0, momentum = iteration < 250 ? 0.5 : 0.8
            var z = 0.0
            for i in 0..<n {
                for j in (i + 1)..<n {
                    let dx = y[i][0] - y[j][0], dy = y[i][1] - y[j][1]
                    let w = 1 / (1 + dx * dx + dy * dy)
                    q[i * n + j] = w
                    q[j * n + i] = w
                    z += 2 * w
                }
            }
            for i in 0..<n {
                var gx = 0.0, gy = 0.0
                for j in 0..<n where j != i {
                    let w = q[i * n + j]
                    let force = (exaggeration * p[i * n + j] - w / z) * w
                    gx += force * (y[i][0] - y[j][0])
                    gy += force * (y[i][1] - y[j][1])
                }
                velocity[i][0] = momentum * velocity[i][0] - 200 * 4 * gx
                velocity[i][1] = momentum * velocity[i][1] - 200 * 4 * gy
            }
            for i in 0..<n { y[i][0] += velocity[i][0]; y[i][1] += velocity[i][1] }
        }
        return y
    }
}
