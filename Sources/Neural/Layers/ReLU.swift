// ReLU, elementwise on any shape.
//   forward:  y = max(x, 0)
//   backward: dx = dy where y > 0, else 0
public final class ReLU: Layer {
    private let output = Tensor(zeros: [0])
    private let inputGradient = Tensor(zeros: [0])

    public init() {}

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        output.reshape(to: x.shape)
        let (src, dst) = (x.data, output.data)
        for i in 0..<x.count { dst[i] = max(src[i], 0) }
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(dy.count == output.count)
        inputGradient.reshape(to: dy.shape)
        maskByPositive(dy.data, output.data, into: inputGradient.data, count: dy.count)
        return inputGradient
    }
}
