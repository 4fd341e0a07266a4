// 2-D convolution on NHWC tensors, as one sgemm over gathered patches (im2col).
//
//   input  x: [N, H, W, IC]
//   weight w: [OC, KH, KW, IC]   (each output channel's filter is one contiguous row of K = KH·KW·IC)
//   output y: [N, OH, OW, OC]    OH = (H + 2·padding − KH) / stride + 1
//
// forward:  cols[N·OH·OW, K] = im2col(x);  y = cols · wᵀ (+ b)
// backward: dw += dyᵀ · cols;  dcols = dy · w;  dx = col2im(dcols)
// A 1×1 stride-1 convolution needs no gathering: x already is cols.
//
// Most of a ResNet's training time is spent in the three sgemms here.

public final class Conv2D: Layer {
    public let inChannels: Int, outChannels: Int
    public let kernel: Int, stride: Int, padding: Int
    public let weight: Parameter
    public let bias: Parameter?
    /// The first layer of a network does not need the gradient with respect to the image.
    public var computesInputGradient = true

    private let output = Tensor(zeros: [0])
    private let columns = Tensor(zeros: [0])
    private let columnGradient = Tensor(zeros: [0])
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
    }

    private var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }
    private var patchSize: Int { kernel * kernel * inChannels }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernel) / stride + 1, (width + 2 * padding - kernel) / stride + 1)
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[3] == inChannels, "Conv2D expects [N, H, W, \(inChannels)], got \(x.shape)")
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let (oh, ow) = outputSize(height: h, width: w)
        let rows = n * oh * ow
        input = mode.isTraining ? x : nil
        let cols: UnsafePointer<Float>
        if isPointwise {
            cols = UnsafePointer(x.data)
        } else {
            columns.reshape(to: [rows, patchSize])
            im2col(x, into: columns.data, outputHeight: oh, outputWidth: ow)
            cols = UnsafePointer(columns.data)
        }
        output.reshape(to: [n, oh, ow, outChannels])
        BLAS.gemm(transposeB: true, m: rows, n: outChannels, k: patchSize,
                  a: cols, lda: patchSize, b: weight.values, ldb: patchSize, c: output.data, ldc: outChannels)
        if let bias {
            let y = output.data, b = bias.values, oc = outChannels
            for r in 0..<rows { for c in 0..<oc { y[r * oc + c] += b[c] } }
        }
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("Conv2D.backward without a training forward") }
        let rows = dy.rows
        precondition(dy.lastDimension == outChannels && dy.count == output.count)
        let cols = isPointwise ? UnsafePointer(x.data) : UnsafePointer(columns.data)
        // dw[OC, K] += dyᵀ[OC, rows] · cols[rows, K]
        BLAS.gemm(transposeA: true, m: outChannels, n: patchSize, k: rows,
                  a: dy.data, lda: outChannels, b: cols, ldb: patchSize, beta: 1, c: weight.gradients, ldc: patchSize)
        if let bias {
            let g = bias.gradients, d = dy.data, oc = outChannels
            for r in 0..<rows { for c in 0..<oc { g[c] += d[r * oc + c] } }
        }
        guard computesInputGradient else { return inputGradient }
        inputGradient.reshape(to: x.shape)
        if isPointwise {
            // dx[rows, IC] = dy[rows, OC] · w[OC, IC]
            BLAS.gemm(m: rows, n: inChannels, k: outChannels,
                      a: dy.data, lda: outChannels, b: weight.values, ldb: inChannels, c: inputGradient.data, ldc: inChannels)
        } else {
            columnGradient.reshape(to: [rows, patchSize])
            BLAS.gemm(m: rows, n: patchSize, k: outChannels,
                      a: dy.data, lda: outChannels, b: weight.values, ldb: patchSize, c: columnGradient.data, ldc: patchSize)
            inputGradient.fill(0)
            col2im(columnGradient.data, into: inputGradient, outputHeight: output.shape[1], outputWidth: output.shape[2])
        }
        return inputGradient
    }

    /// Gathers each output pixel's receptive field into one row of `cols`; padding reads as 0.
    private func im2col(_ x: Tensor, into cols: UnsafeMutablePointer<Float>, outputHeight oh: Int, outputWidth ow: Int) {
        let (n, h, w, ic, k, s, p) = (x.shape[0], x.shape[1], x.shape[2], inChannels, kernel, stride, padding)
        let src = x.data
        var row = cols
        for b in 0..<n {
            let image = src + b * h * w * ic
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var dst = row
                    for ky in 0..<k {
                        let iy = oy * s - p + ky
                        for kx in 0..<k {
                            let ix = ox * s - p + kx
                            if iy >= 0 && iy < h && ix >= 0 && ix < w {
                                dst.update(from: image + (iy * w + ix) * ic, count: ic)
                            } else {
                                dst.update(repeating: 0, count: ic)
                            }
                            dst += ic
                        }
                    }
                    row += k * k * ic
                }
            }
        }
    }

    /// The adjoint of im2col: adds each row's entries back onto the pixels they were read from.
    private func col2im(_ cols: UnsafeMutablePointer<Float>, into dx: Tensor, outputHeight oh: Int, outputWidth ow: Int) {
        let (n, h, w, ic, k, s, p) = (dx.shape[0], dx.shape[1], dx.shape[2], inChannels, kernel, stride, padding)
        var row = UnsafePointer(cols)
        for b in 0..<n {
            let image = dx.data + b * h * w * ic
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var src = row
                    for ky in 0..<k {
                        let iy = oy * s - p + ky
                        for kx in 0..<k {
                            let ix = ox * s - p + kx
                            if iy >= 0 && iy < h && ix >= 0 && ix < w {
                                let dst = image + (iy * w + ix) * ic
                                for c in 0..<ic { dst[c] += src[c] }
                            }
                            src += ic
                        }
                    }
                    row += k * k * ic
                }
            }
        }
    }
}
