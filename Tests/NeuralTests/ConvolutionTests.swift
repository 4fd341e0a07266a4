import GLFDTesting
import Neural
import Testing

/// Direct convolution in Double: the definition, with no gathering and no BLAS.
func naiveConvolution(_ x: Tensor, _ conv: Conv2D) -> [Double] {
    let (n, h, w, ic) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (oc, k, s, p) = (conv.outChannels, conv.kernel, conv.stride, conv.padding)
    let (oh, ow) = conv.outputSize(height: h, width: w)
    let weight = conv.weight.values
    var y = [Double](repeating: 0, count: n * oh * ow * oc)
    for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for o in 0..<oc {
        var sum = conv.bias.map { Double($0.values[o]) } ?? 0
        for ky in 0..<k { for kx in 0..<k {
            let (iy, ix) = (oy * s - p + ky, ox * s - p + kx)
            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
            for c in 0..<ic {
                sum += Double(x[((b * h + iy) * w + ix) * ic + c]) * Double(weight[((o * k + ky) * k + kx) * ic + c])
            }
        }}
        y[((b * oh + oy) * ow + ox) * oc + o] = sum
    }}}}
    return y
}

struct ConvolutionCase: CustomTestStringConvertible, Sendable {
    var kernel: Int, stride: Int, padding: Int, bias: Bool
    /// One image per chunk of gathered patches (the path large batches take), or the whole batch.
    var chunked: Bool
    var algorithm = Conv2D.Algorithm.im2col
    var testDescription: String {
        "k\(kernel) s\(stride) p\(padding)\(bias ? " +bias" : "")\(chunked ? " chunked" : "") \(algorithm)"
    }

    func make(in arena: ParameterArena, inChannels: Int, outChannels: Int, rng: inout SeededGenerator) -> Conv2D {
        let conv = Conv2D("conv", in: arena, inChannels: inChannels, outChannels: outChannels, kernel: kernel,
                          stride: stride, padding: padding, bias: bias, rng: &rng)
        if chunked { conv.chunkBytes = 1 }
        conv.algorithm = algorithm
        return conv
    }
}

let convolutionCases: [ConvolutionCase] = [1, 3].flatMap { k in [1, 2].flatMap { s in [0, 1].flatMap { p in
    [false, true].flatMap { bias in [false, true].map {
        ConvolutionCase(kernel: k, stride: s, padding: p, bias: bias, chunked: $0) } } } } }
    + [false, true].map { ConvolutionCase(kernel: 3, stride: 1, padding: 1, bias: $0, chunked: false, algorithm: .winograd) }

@Suite struct ConvolutionTests {
    @Test("forward matches a direct convolution", arguments: convolutionCases)
    func forwardMatchesDirectConvolution(_ c: ConvolutionCase) {
        var rng = SeededGenerator(seed: 1)
        let arena = ParameterArena()
        let conv = c.make(in: arena, inChannels: 5, outChannels: 6, rng: &rng)
        arena.seal()
        if let bias = conv.bias { for i in 0..<bias.count { bias.values[i] = Float(i) * 0.1 - 0.2 } }
        let x = randomTensor([2, 7, 6, 5], seed: 2)   // odd height: strides must round like PyTorch
        let y = conv.forward(x, mode: .inference)
        let reference = naiveConvolution(x, conv)
        let (oh, ow) = conv.outputSize(height: 7, width: 6)
        #expect(y.shape == [2, oh, ow, 6])
        let worst = zip(y.array, reference).map { abs(Double($0) - $1) }.max()!
        #expect(worst < 1e-4, "max |Δ| = \(worst)")
    }

    @Test("backward matches finite differences", arguments: convolutionCases)
    func backwardMatchesFiniteDifferences(_ c: ConvolutionCase) {
        var rng = SeededGenerator(seed: 3)
        let arena = ParameterArena()
        let conv = c.make(in: arena, inChannels: 3, outChannels: 4, rng: &rng)
        arena.seal()
        let report = GradientCheck().run(conv, arena: arena, input: randomTensor([2, 5, 6, 3], seed: 4))
        #expect(report.worstError < 1e-2, "\(report)")
    }

    @Test func winogradIsChosenWhereItWasMeasuredFaster() {
        var rng = SeededGenerator(seed: 0)
        let arena = ParameterArena()
        func algorithm(_ ic: Int, _ k: Int, _ s: Int) -> Conv2D.Algorithm {
            Conv2D("c\(ic)\(k)\(s)", in: arena, inChannels: ic, outChannels: 8, kernel: k, stride: s, padding: k / 2, rng: &rng).algorithm
        }
        #expect(algorithm(32, 3, 1) == .winograd)
        #expect(algorithm(3, 3, 1) == .im2col)     // the stem
        #expect(algorithm(32, 3, 2) == .im2col)
        #expect(algorithm(32, 1, 1) == .im2col)
    }

    @Test func outputSizeFollowsTheUsualFormula() {
        var rng = SeededGenerator(seed: 0)
        let conv = Conv2D("c", in: ParameterArena(), inChannels: 1, outChannels: 1, kernel: 3, stride: 2, padding: 1, rng: &rng)
        #expect(conv.outputSize(height: 32, width: 31) == (16, 16))
        #expect(conv.outputSize(height: 1, width: 2) == (1, 1))
    }
}
