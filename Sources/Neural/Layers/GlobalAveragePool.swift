// Global average pooling: [N, H, W, C] → [N, C].
//   forward:  y[n, c] = mean over h, w of x[n, h, w, c]
//   backward: dx[n, h, w, c] = dy[n, c] / (H·W)
public final class GlobalAveragePool: Layer {
    private let output = Tensor(zeros: [0])
    private let inputGradient = Tensor(zeros: [0])
    private var inputShape: [Int] = []

    public init() {}

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        precondition(x.shape.count == 4, "GlobalAveragePool expects [N, H, W, C], got \(x.shape)")
        let (n, pixels, c) = (x.shape[0], x.shape[1] * x.shape[2], x.shape[3])
        inputShape = x.shape
        output.reshape(to: [n, c])
        output.fill(0)
        let scale = 1 / Float(pixels)
        for b in 0..<n {
            let y = output.data + b * c
            for p in 0..<pixels {
                let xr = x.data + (b * pixels + p) * c
                for j in 0..<c { y[j] += xr[j] }
            }
            for j in 0..<c { y[j] *= scale }
        }
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let (n, pixels, c) = (inputShape[0], inputShape[1] * inputShape[2], inputShape[3])
        precondition(dy.shape == [n, c])
        inputGradient.reshape(to: inputShape)
        let scale = 1 / Float(pixels)
        for b in 0..<n {
            let d = dy.data + b * c
            for p in 0..<pixels {
                let dx = inputGradient.data + (b * pixels + p) * c
                for j in 0..<c { dx[j] = d[j] * scale }
            }
        }
        return inputGradient
    }
}
