// Row-wise L2 normalisation: [N, D] → [N, D] with unit rows.
//   forward:  y = x / max(‖x‖, ε)
//   backward: dx = (dy − y·(y·dy)) / ‖x‖   (the projection of dy onto the tangent space, scaled)
// Below ε the layer is a fixed scaling by 1/ε and dx = dy/ε.
public final class L2Normalize: Layer {
    public let epsilon: Float
    private let output = Tensor(zeros: [0])
    private let inputGradient = Tensor(zeros: [0])
    private var norms: [Float] = []

    public init(epsilon: Float = 1e-12) { self.epsilon = epsilon }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        let (n, d) = (x.rows, x.lastDimension)
        output.reshape(to: x.shape)
        norms = [Float](repeating: 0, count: n)
        for r in 0..<n {
            let norm = BLAS.norm(count: d, x.data + r * d)
            norms[r] = norm
            let inverse = 1 / max(norm, epsilon)
            let (src, dst) = (x.data + r * d, output.data + r * d)
            for j in 0..<d { dst[j] = src[j] * inverse }
        }
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let (n, d) = (dy.rows, dy.lastDimension)
        precondition(dy.count == output.count)
        inputGradient.reshape(to: dy.shape)
        for r in 0..<n {
            let (y, g, dx) = (output.data + r * d, dy.data + r * d, inputGradient.data + r * d)
            if norms[r] > epsilon {
                let projection = BLAS.dot(count: d, y, g)
                let inverse = 1 / norms[r]
                for j in 0..<d { dx[j] = (g[j] - y[j] * projection) * inverse }
            } else {
                for j in 0..<d { dx[j] = g[j] / epsilon }
            }
        }
        return inputGradient
    }
}
