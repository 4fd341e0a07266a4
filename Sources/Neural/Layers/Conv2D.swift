// 2-D convolution on NHWC tensors, as one sgemm over gathered patches (im2col).
//
//   input  x: [N, H, W, IC]
//   weight w: [OC, KH, KW, IC]   (each output channel's filter is one contiguous row of K = KH·KW·IC)
//   output y: [N, OH, OW, OC]    OH = (H + 2·padding − KH) / stride + 1
//
// forward:  cols = im2col(x);  y = cols · wᵀ (+ b)
// backward: dw += dyᵀ · cols;  dcols = dy · w;  dx = col2im(dcols)
// A 1×1 stride-1 convolution needs no gathering: x already is cols.
//
// The patches of a whole batch would be 9× the input (150 MB for the first stage of a batch of
// 128 at 32×32): writing and re-reading that costs more than the products. So the batch is
// processed a few images at a time, with each chunk's patches (about 1 MiB, `chunkBytes`) gathered
// into a buffer that stays in the core's L2 cache, and gathered again in backward rather than kept.
// Most of a ResNet's training time is spent in the three sgemms here.
//
// 3×3 convolutions with stride 1 and padding 1 go through Winograd F(2×2, 3×3) instead
// (Winograd.swift): 2.25× fewer multiplies. Measured with `glf-bench conv` at batch 128 on one
// core, forward + backward: 1.25× faster at 8 channels, 1.3× at 16, 1.5–1.7× from 32 up, but
// 0.75–0.9× for a 3-channel stem. So `algorithm` starts as .winograd where it applies and the
// layer has at least `winogradMinimumChannels` input channels.

public final class Conv2D: Layer {
    public let inChannels: Int, outChannels: Int
    public let kernel: Int, stride: Int, padding: Int
    public let weight: Parameter
    public let bias: Parameter?
    /// The first layer of a network does not need the gradient with respect to the image.
    public var computesInputGradient = true
    /// Target size of one chunk's gathered patches (at least one image per chunk).
    public var chunkBytes = 1 << 20

    public enum Algorithm: String, Sendable { case im2col, winograd }
    /// How the products are computed; .winograd only for 3×3, stride 1, padding 1.
    public var algorithm: Algorithm {
        didSet { precondition(algorithm == .im2col || supportsWinograd, "Winograd needs a 3×3 kernel, stride 1 and padding 1") }
    }
    public static let winogradMinimumChannels = 8
    private var supportsWinograd: Bool { kernel == 3 && stride == 1 && padding == 1 }
    private lazy var winograd = WinogradConvolution(inChannels: inChannels, outChannels: outChannels)

    private let output = Tensor(zeros: [0])
    private let columns = Tensor(zeros: [0])        // one chunk's patches
    private let columnGradient = Tensor(zeros: [0]) // one chunk's dL/dpatches
    private let inputGradient = Tensor(zeros: [0])
    private var input: Tensor?

    public init(
        _ name: String, in arena: ParameterArena, inChannels: Int, outChannels: Int,
        kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = false, rng: inout SeededGenerator
    ) {
        precondition(kernel >= 1 && stride >= 1 && padding >= 0)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        // He initialisation on fan-out, as torchvision's ResNet.
        let w = Tensor(zeros: [outChannels, kernel, kernel, inChannels])
        w.fillNormal(std: (2 / Float(outChannels * kernel * kernel)).squareRoot(), using: &rng)
        weight = arena.register("\(name).weight", shape: w.shape, role: .weight, initial: w.array)
        self.bias = bias
            ? arena.register("\(name).bias", shape: [outChannels], role: .bias, initial: Array(repeating: 0, count: outChannels))
            : nil
        algorithm = kernel == 3 && stride == 1 && padding == 1 && inChannels >= Self.winogradMinimumChannels ? .winograd : .im2col
    }

    private var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }
    private var patchSize: Int { kernel * kernel * inChannels }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernel) / stride + 1, (width + 2 * padding - kernel) / stride + 1)
    }

    /// Images per chunk: as many as fit `chunkBytes` of patches, at least one.
    private func imagesPerChunk(pixelsPerImage: Int) -> Int {
        max(1, chunkBytes / (pixelsPerImage * patchSize * MemoryLayout<Float>.size))
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[3] == inChannels, "Conv2D expects [N, H, W, \(inChannels)], got \(x.shape)")
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let (oh, ow) = outputSize(height: h, width: w)
        input = mode.isTraining ? x : nil
        output.reshape(to: [n, oh, ow, outChannels])
        if algorithm == .winograd {
            winograd.forward(input: x, weight: weight.values, output: output)
            addBias(to: output.data, rows: n * oh * ow)
        } else if isPointwise {
            product(cols: x.data, rows: n * oh * ow, into: output.data)
        } else {
            let step = imagesPerChunk(pixelsPerImage: oh * ow)
            columns.reshape(to: [step * oh * ow, patchSize])
            for first in Swift.stride(from: 0, to: n, by: step) {
                let images = min(step, n - first)
                im2col(x, images: first..<(first + images), into: columns.data, outputHeight: oh, outputWidth: ow)
                product(cols: columns.data, rows: images * oh * ow, into: output.data + first * oh * ow * outChannels)
            }
        }
        return output
    }

    /// y[rows, OC] = cols[rows, K] · wᵀ (+ b)
    private func product(cols: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        BLAS.gemm(transposeB: true, m: rows, n: outChannels, k: patchSize,
                  a: cols, lda: patchSize, b: weight.values, ldb: patchSize, c: y, ldc: outChannels)
        addBias(to: y, rows: rows)
    }

    private func addBias(to y: UnsafeMutablePointer<Float>, rows: Int) {
        guard let bias else { return }
        let (b, oc) = (bias.values, outChannels)
        for r in 0..<rows { for c in 0..<oc { y[r * oc + c] += b[c] } }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("Conv2D.backward without a training forward") }
        precondition(dy.lastDimension == outChannels && dy.count == output.count)
        let (n, oh, ow) = (output.shape[0], output.shape[1], output.shape[2])
        if let bias {
            let (g, d, oc) = (bias.gradients, dy.data, outChannels)
            for r in 0..<dy.rows { for c in 0..<oc { g[c] += d[r * oc + c] } }
        }
        if algorithm == .winograd {
            winograd.backward(outputGradient: dy, input: x, weight: weight.values, weightGradient: weight.gradients,
                              inputGradient: computesInputGradient ? inputGradient : nil)
            return inputGradient
        }
        if computesInputGradient {
            inputGradient.reshape(to: x.shape)
            if !isPointwise { inputGradient.fill(0) }
        }
        if isPointwise {
            weightGradient(dy: dy.data, cols: x.data, rows: dy.rows)
            if computesInputGradient {
                // dx[rows, IC] = dy[rows, OC] · w[OC, IC]
                BLAS.gemm(m: dy.rows, n: inChannels, k: outChannels,
                          a: dy.data, lda: outChannels, b: weight.values, ldb: inChannels, c: inputGradient.data, ldc: inChannels)
            }
            return inputGradient
        }
        let step = imagesPerChunk(pixelsPerImage: oh * ow)
        columns.reshape(to: [step * oh * ow, patchSize])
        if computesInputGradient { columnGradient.reshape(to: [step * oh * ow, patchSize]) }
        for first in Swift.stride(from: 0, to: n, by: step) {
            let images = first..<min(first + step, n)
            let rows = images.count * oh * ow
            let dyChunk = dy.data + first * oh * ow * outChannels
            im2col(x, images: images, into: columns.data, outputHeight: oh, outputWidth: ow)
            weightGradient(dy: dyChunk, cols: columns.data, rows: rows)
            if computesInputGradient {
                // dcols[rows, K] = dy[rows, OC] · w[OC, K]
                BLAS.gemm(m: rows, n: patchSize, k: outChannels,
                          a: dyChunk, lda: outChannels, b: weight.values, ldb: patchSize, c: columnGradient.data, ldc: patchSize)
                col2im(columnGradient.data, images: images, into: inputGradient, outputHeight: oh, outputWidth: ow)
            }
        }
        return inputGradient
    }

    /// dw[OC, K] += dyᵀ[OC, rows] · cols[rows, K]
    private func weightGradient(dy: UnsafePointer<Float>, cols: UnsafePointer<Float>, rows: Int) {
        BLAS.gemm(transposeA: true, m: outChannels, n: patchSize, k: rows,
                  a: dy, lda: outChannels, b: cols, ldb: patchSize, beta: 1, c: weight.gradients, ldc: patchSize)
    }

    /// Gathers each output pixel's receptive field into one row of `cols`; padding reads as 0.
    /// Within one kernel row the taps are neighbouring pixels, so each kernel row is one
    /// contiguous run of (valid taps × IC) floats in the NHWC input: one copy, not KW copies.
    private func im2col(_ x: Tensor, images: Range<Int>, into cols: UnsafeMutablePointer<Float>,
                        outputHeight oh: Int, outputWidth ow: Int) {
        let (h, w, ic, k, s, p) = (x.shape[1], x.shape[2], inChannels, kernel, stride, padding)
        var row = cols
        for b in images {
            let image = x.data + b * h * w * ic
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let (x0, taps) = validTaps(ox * s - p, width: w)
                    for ky in 0..<k {
                        let iy = oy * s - p + ky
                        let dst = row + ky * k * ic
                        guard iy >= 0 && iy < h && taps.count > 0 else { dst.update(repeating: 0, count: k * ic); continue }
                        dst.update(repeating: 0, count: taps.lowerBound * ic)
                        (dst + taps.lowerBound * ic).update(from: image + (iy * w + x0 + taps.lowerBound) * ic, count: taps.count * ic)
                        (dst + taps.upperBound * ic).update(repeating: 0, count: (k - taps.upperBound) * ic)
                    }
                    row += k * k * ic
                }
            }
        }
    }

    /// The adjoint of im2col: adds each row's entries back onto the pixels they were read from.
    private func col2im(_ cols: UnsafeMutablePointer<Float>, images: Range<Int>, into dx: Tensor,
                        outputHeight oh: Int, outputWidth ow: Int) {
        let (h, w, ic, k, s, p) = (dx.shape[1], dx.shape[2], inChannels, kernel, stride, padding)
        var row = UnsafePointer(cols)
        for b in images {
            let image = dx.data + b * h * w * ic
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let (x0, taps) = validTaps(ox * s - p, width: w)
                    for ky in 0..<k {
                        let iy = oy * s - p + ky
                        guard iy >= 0 && iy < h && taps.count > 0 else { continue }
                        let src = row + (ky * k + taps.lowerBound) * ic
                        let dst = image + (iy * w + x0 + taps.lowerBound) * ic
                        for c in 0..<(taps.count * ic) { dst[c] += src[c] }
                    }
                    row += k * k * ic
                }
            }
        }
    }

    /// For a kernel row starting at input column x0: the taps kx whose column x0 + kx lies inside
    /// the image.
    @inline(__always)
    private func validTaps(_ x0: Int, width w: Int) -> (x0: Int, taps: Range<Int>) {
        let first = max(0, -x0), end = min(kernel, w - x0)
        return (x0, first..<max(first, end))
    }
}
