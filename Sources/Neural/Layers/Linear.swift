// Fully connected layer.
//   input x: [N, IN];  weight w: [OUT, IN] (PyTorch's layout);  bias b: [OUT];  output y: [N, OUT]
//   forward:  y = x · wᵀ + b
//   backward: dw += dyᵀ · x;  db += Σ_rows dy;  dx = dy · w
public final class Linear: Layer {
    public let inFeatures: Int, outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter?

    private let output = Tensor(zeros: [0])
    private let inputGradient = Tensor(zeros: [0])
    private var input: Tensor?

    public init(_ name: String, in arena: ParameterArena, inFeatures: Int, outFeatures: Int, bias: Bool = true,
                rng: inout SeededGenerator) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        // PyTorch's default: U(−1/√fan_in, 1/√fan_in) for weights and biases.
        let bound = 1 / Float(inFeatures).squareRoot()
        let w = Tensor(zeros: [outFeatures, inFeatures])
        w.fillUniform(bound: bound, using: &rng)
        weight = arena.register("\(name).weight", shape: w.shape, role: .weight, initial: w.array)
        if bias {
            let b = Tensor(zeros: [outFeatures])
            b.fillUniform(bound: bound, using: &rng)
            self.bias = arena.register("\(name).bias", shape: [outFeatures], role: .bias, initial: b.array)
        } else {
            self.bias = nil
        }
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        precondition(x.shape.count == 2 && x.shape[1] == inFeatures, "Linear(\(inFeatures)→\(outFeatures)) got \(x.shape)")
        let n = x.shape[0]
        input = x
        output.reshape(to: [n, outFeatures])
        if let bias {
            for r in 0..<n { (output.data + r * outFeatures).update(from: bias.values, count: outFeatures) }
        }
        BLAS.gemm(transposeB: true, m: n, n: outFeatures, k: inFeatures,
                  a: x.data, lda: inFeatures, b: weight.values, ldb: inFeatures,
                  beta: bias == nil ? 0 : 1, c: output.data, ldc: outFeatures)
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("Linear.backward before forward") }
        let n = x.shape[0]
        precondition(dy.shape == [n, outFeatures])
        BLAS.gemm(transposeA: true, m: outFeatures, n: inFeatures, k: n,
                  a: dy.data, lda: outFeatures, b: x.data, ldb: inFeatures, beta: 1, c: weight.gradients, ldc: inFeatures)
        if let bias {
            for r in 0..<n { BLAS.axpy(count: outFeatures, alpha: 1, x: dy.data + r * outFeatures, y: bias.gradients) }
        }
        inputGradient.reshape(to: x.shape)
        BLAS.gemm(m: n, n: inFeatures, k: outFeatures,
                  a: dy.data, lda: outFeatures, b: weight.values, ldb: inFeatures, c: inputGradient.data, ldc: inFeatures)
        return inputGradient
    }
}
