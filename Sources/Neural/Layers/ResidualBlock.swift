// ResNet basic block (He et al. 2016), NHWC:
//
//   main:     conv3×3(stride) → BN+ReLU → conv3×3 → BN
//   shortcut: identity, or conv1×1(stride) → BN when the shape changes
//   y = ReLU(main(x) + shortcut(x))
//
// backward: the ReLU mask gives ds; ds flows into both branches; dx is the sum of what they return
// (the residual addition's backward is that copy and that sum).
public final class ResidualBlock: Layer {
    public let main: Sequential
    public let shortcut: Sequential?

    private let output = Tensor(zeros: [0])
    private let sumGradient = Tensor(zeros: [0])
    private let inputGradient = Tensor(zeros: [0])

    public init(_ name: String, in arena: ParameterArena, inChannels: Int, outChannels: Int, stride: Int,
                rng: inout SeededGenerator) {
        main = Sequential([
            Conv2D("\(name).conv1", in: arena, inChannels: inChannels, outChannels: outChannels,
                   kernel: 3, stride: stride, padding: 1, rng: &rng),
            BatchNorm("\(name).bn1", in: arena, channels: outChannels, fusedReLU: true),
            Conv2D("\(name).conv2", in: arena, inChannels: outChannels, outChannels: outChannels,
                   kernel: 3, stride: 1, padding: 1, rng: &rng),
            BatchNorm("\(name).bn2", in: arena, channels: outChannels),
        ])
        if stride != 1 || inChannels != outChannels {
            shortcut = Sequential([
                Conv2D("\(name).shortcut.conv", in: arena, inChannels: inChannels, outChannels: outChannels,
                       kernel: 1, stride: stride, rng: &rng),
                BatchNorm("\(name).shortcut.bn", in: arena, channels: outChannels),
            ])
        } else {
            shortcut = nil
        }
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        let a = main.forward(x, mode: mode)
        let b = shortcut?.forward(x, mode: mode) ?? x
        precondition(a.shape == b.shape)
        output.reshape(to: a.shape)
        let (pa, pb, y) = (a.data, b.data, output.data)
        for i in 0..<a.count { y[i] = max(pa[i] + pb[i], 0) }
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(dy.count == output.count)
        sumGradient.reshape(to: dy.shape)
        maskByPositive(dy.data, output.data, into: sumGradient.data, count: dy.count)
        let dxMain = main.backward(sumGradient)
        let dxShortcut = shortcut?.backward(sumGradient) ?? sumGradient
        inputGradient.reshape(to: dxMain.shape)
        let (p, q, dx) = (dxMain.data, dxShortcut.data, inputGradient.data)
        for i in 0..<inputGradient.count { dx[i] = p[i] + q[i] }
        return inputGradient
    }
}
