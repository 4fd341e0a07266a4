// Winograd F(2×2, 3×3) against the definition (a direct convolution in Double), against the
// im2col Conv2D on the same data, and against finite differences; a wrong transform must fail.
//
// The speed comparison with im2col is a benchmark: `glf-bench conv`.
import Foundation
import GLFDTesting
import Neural
import Testing

/// Direct 3×3, stride 1, padding 1 convolution of NHWC x with OHWI weights, in Double.
private func directConvolution(_ x: Tensor, weight: UnsafePointer<Float>, outChannels oc: Int) -> [Double] {
    let (n, h, w, ic) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    var y = [Double](repeating: 0, count: n * h * w * oc)
    for b in 0..<n { for oy in 0..<h { for ox in 0..<w { for o in 0..<oc {
        var sum = 0.0
        for ky in 0..<3 { for kx in 0..<3 {
            let (iy, ix) = (oy - 1 + ky, ox - 1 + kx)
            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
            for c in 0..<ic {
                sum += Double(x[((b * h + iy) * w + ix) * ic + c]) * Double(weight[((o * 3 + ky) * 3 + kx) * ic + c])
            }
        }}
        y[((b * h + oy) * w + ox) * oc + o] = sum
    }}}}
    return y
}

/// max |a − b| / rms(b): one number for "how far from the reference", whatever the scale.
private func relativeError<A: Collection, B: Collection>(_ a: A, _ b: B) -> Double
where A.Element: BinaryFloatingPoint, B.Element: BinaryFloatingPoint {
    precondition(a.count == b.count)
    let worst = zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0
    let rms = (b.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(b.count, 1))).squareRoot()
    return worst / max(rms, 1e-30)
}

private func array(_ pointer: UnsafePointer<Float>, _ count: Int) -> [Float] {
    Array(UnsafeBufferPointer(start: pointer, count: count))
}

/// Equivalent to Lavin & Gray's: G's middle rows doubled, Bᵀ's halved, so U ⊙ V is unchanged.
private let rescaledTransforms = WinogradConvolution.Transforms(
    inputTransposed: [1, 0, -1, 0,
                      0, 0.5, 0.5, 0,
                      0, -0.5, 0.5, 0,
                      0, 1, 0, -1],
    filter: [1, 0, 0,
             1, 1, 1,
             1, -1, 1,
             0, 0, 1],
    outputTransposed: WinogradConvolution.Transforms.lavinGray.outputTransposed)

/// Lavin & Gray's with one entry of Bᵀ off by 0.05: a plausible typo.
private let perturbedTransforms: WinogradConvolution.Transforms = {
    var t = WinogradConvolution.Transforms.lavinGray
    t.inputTransposed[6] += 0.05
    return t
}()

struct WinogradCase: CustomTestStringConvertible, Sendable {
    var batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int
    /// Images per chunk (nil: the default chunking, usually the whole batch at these sizes).
    var imagesPerChunk: Int?
    var testDescription: String {
        "\(batch)×\(height)×\(width)×\(inChannels)→\(outChannels)" + (imagesPerChunk.map { " chunks of \($0)" } ?? "")
    }

    func make(transforms: WinogradConvolution.Transforms = .lavinGray) -> WinogradConvolution {
        let winograd = WinogradConvolution(inChannels: inChannels, outChannels: outChannels, transforms: transforms)
        if let imagesPerChunk {
            winograd.chunkBytes = 1
            winograd.minimumChunkTiles = imagesPerChunk * ((height + 1) / 2) * ((width + 1) / 2)
        }
        return winograd
    }

    /// An im2col Conv2D with random weights, the same shape; Winograd reads its weights.
    func makeConv2D(seed: UInt64) -> (Conv2D, ParameterArena) {
        var rng = SeededGenerator(seed: seed)
        let arena = ParameterArena()
        let conv = Conv2D("conv", in: arena, inChannels: inChannels, outChannels: outChannels,
                          kernel: 3, stride: 1, padding: 1, rng: &rng)
        conv.algorithm = .im2col   // the reference this file compares Winograd with
        arena.seal()
        return (conv, arena)
    }

    var inputShape: [Int] { [batch, height, width, inChannels] }
}

let winogradCases: [WinogradCase] = [
    WinogradCase(batch: 1, height: 7, width: 5, inChannels: 3, outChannels: 4),              // odd both ways
    WinogradCase(batch: 3, height: 5, width: 7, inChannels: 5, outChannels: 6, imagesPerChunk: 1),
    WinogradCase(batch: 5, height: 6, width: 6, inChannels: 8, outChannels: 8, imagesPerChunk: 2),  // last chunk short
    WinogradCase(batch: 2, height: 1, width: 1, inChannels: 4, outChannels: 3),              // all but one pixel padding
    WinogradCase(batch: 2, height: 2, width: 3, inChannels: 9, outChannels: 7),              // 4 lanes + remainder
    WinogradCase(batch: 4, height: 8, width: 8, inChannels: 16, outChannels: 12, imagesPerChunk: 3),
]

/// A Winograd convolution as a Layer with its weight in an arena, for GradientCheck.
private final class WinogradLayer: Layer {
    let weight: Parameter
    let winograd: WinogradConvolution
    private let output = Tensor(zeros: [0])
    private let inputGradient = Tensor(zeros: [0])
    private var input: Tensor?

    init(_ c: WinogradCase, transforms: WinogradConvolution.Transforms = .lavinGray, in arena: ParameterArena, seed: UInt64) {
        let w = randomTensor([c.outChannels, 3, 3, c.inChannels], seed: seed, std: 0.5)
        weight = arena.register("winograd.weight", shape: w.shape, role: .weight, initial: w.array)
        winograd = c.make(transforms: transforms)
    }

    func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        input = x
        winograd.forward(input: x, weight: weight.values, output: output)
        return output
    }

    func backward(_ dy: Tensor) -> Tensor {
        winograd.backward(outputGradient: dy, input: input!, weight: weight.values,
                          weightGradient: weight.gradients, inputGradient: inputGradient)
        return inputGradient
    }
}

/// The same data through Conv2D and Winograd: outputs, dx and dW of both.
private struct SideBySide {
    var conv: (y: [Float], dx: [Float], dw: [Float])
    var winograd: (y: [Float], dx: [Float], dw: [Float])
    var direct: [Double]

    init(_ c: WinogradCase, transforms: WinogradConvolution.Transforms = .lavinGray, seed: UInt64) {
        let (conv2D, _) = c.makeConv2D(seed: seed)
        let x = randomTensor(c.inputShape, seed: seed + 1)
        let dy = randomTensor([c.batch, c.height, c.width, c.outChannels], seed: seed + 2)
        let y = conv2D.forward(x, mode: .training).array
        let dx = conv2D.backward(dy).array
        conv = (y, dx, array(conv2D.weight.gradients, conv2D.weight.count))

        let winograd = c.make(transforms: transforms)
        let (output, inputGradient) = (Tensor(zeros: [0]), Tensor(zeros: [0]))
        let dw = Tensor(zeros: conv2D.weight.shape)
        winograd.forward(input: x, weight: conv2D.weight.values, output: output)
        winograd.backward(outputGradient: dy, input: x, weight: conv2D.weight.values,
                          weightGradient: dw.data, inputGradient: inputGradient)
        self.winograd = (output.array, inputGradient.array, dw.array)
        direct = directConvolution(x, weight: conv2D.weight.values, outChannels: c.outChannels)
    }
}

@Suite struct WinogradTests {
    @Test("forward matches a direct convolution and Conv2D", arguments: winogradCases)
    func forwardMatchesDirectConvolution(_ c: WinogradCase) {
        let run = SideBySide(c, seed: 10)
        #expect(run.winograd.y.count == c.batch * c.height * c.width * c.outChannels)
        #expect(relativeError(run.winograd.y, run.direct) < 1e-4)
        #expect(relativeError(run.winograd.y, run.conv.y) < 1e-5)
    }

    @Test("backward matches Conv2D's (dx and dW)", arguments: winogradCases)
    func backwardMatchesConv2D(_ c: WinogradCase) {
        let run = SideBySide(c, seed: 20)
        #expect(relativeError(run.winograd.dx, run.conv.dx) < 1e-5)
        #expect(relativeError(run.winograd.dw, run.conv.dw) < 1e-5)
    }

    @Test("backward matches finite differences", arguments: winogradCases)
    func backwardMatchesFiniteDifferences(_ c: WinogradCase) {
        let arena = ParameterArena()
        let layer = WinogradLayer(c, in: arena, seed: 30)
        arena.seal()
        let report = GradientCheck().run(layer, arena: arena, input: randomTensor(c.inputShape, seed: 31))
        #expect(report.worstError < 1e-2, "\(report)")
    }

    @Test func weightGradientAccumulatesAndInputGradientIsOptional() {
        let c = WinogradCase(batch: 3, height: 5, width: 6, inChannels: 4, outChannels: 5, imagesPerChunk: 2)
        let (conv, _) = c.makeConv2D(seed: 40)
        let x = randomTensor(c.inputShape, seed: 41)
        let dy = randomTensor([c.batch, c.height, c.width, c.outChannels], seed: 42)
        let winograd = c.make()
        let output = Tensor(zeros: [0])
        winograd.forward(input: x, weight: conv.weight.values, output: output)

        let once = Tensor(zeros: conv.weight.shape)
        let inputGradient = randomTensor([1], seed: 43)   // wrong shape and stale values: overwritten
        winograd.backward(outputGradient: dy, input: x, weight: conv.weight.values,
                          weightGradient: once.data, inputGradient: inputGradient)
        #expect(inputGradient.shape == x.shape)

        let twice = Tensor(zeros: conv.weight.shape)
        for _ in 0..<2 {
            winograd.backward(outputGradient: dy, input: x, weight: conv.weight.values,
                              weightGradient: twice.data, inputGradient: nil)
        }
        #expect(zip(once.array, twice.array).allSatisfy { 2 * $0 == $1 })
        // The same gradient with and without dx: nil skips work, not terms.
        let reference = SideBySide(c, seed: 40)
        #expect(relativeError(once.array, reference.conv.dw) < 1e-5)
    }

    @Test("an equivalent rescaled transform (general path) agrees", arguments: [winogradCases[0], winogradCases[2]])
    func rescaledTransformAgrees(_ c: WinogradCase) {
        let run = SideBySide(c, transforms: rescaledTransforms, seed: 50)
        #expect(relativeError(run.winograd.y, run.direct) < 1e-4)
        #expect(relativeError(run.winograd.dx, run.conv.dx) < 1e-5)
        #expect(relativeError(run.winograd.dw, run.conv.dw) < 1e-5)
    }

    /// A perturbed Bᵀ computes something else, and the comparisons see it; yet its backward is
    /// still the exact gradient of that something else, because backward is built as the adjoint
    /// of forward's own steps rather than as the gradient of a true convolution.
    @Test("a perturbed B fails the comparisons, but not the finite differences")
    func perturbedTransformIsCaught() {
        let c = winogradCases[1]
        let run = SideBySide(c, transforms: perturbedTransforms, seed: 60)
        #expect(relativeError(run.winograd.y, run.direct) > 1e-2)
        #expect(relativeError(run.winograd.dx, run.conv.dx) > 1e-2)
        #expect(relativeError(run.winograd.dw, run.conv.dw) > 1e-2)

        let arena = ParameterArena()
        let layer = WinogradLayer(c, transforms: perturbedTransforms, in: arena, seed: 61)
        arena.seal()
        let report = GradientCheck().run(layer, arena: arena, input: randomTensor(c.inputShape, seed: 62))
        #expect(report.worstError < 1e-2, "\(report)")
    }
}
