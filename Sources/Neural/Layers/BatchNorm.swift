// Batch normalisation over the last dimension: one implementation serves BatchNorm2d on NHWC
// images ([N, H, W, C] seen as [N·H·W, C]) and BatchNorm1d on features ([N, C]).
//
//   training:  μ, σ² = mean and biased variance of each channel over the rows of each view
//              x̂ = (x − μ) / √(σ² + ε);  y = γ·x̂ + β   (γ, β only when affine)
//              running statistics move towards μ and the unbiased σ² by `momentum` (as PyTorch)
//   inference: the same with the running statistics
//
// With `fusedReLU` the layer outputs max(0, y) and masks the gradient itself: one pass over
// memory less than a separate ReLU, and BN → ReLU is how every ResNet block uses it.
//
// backward (training), per view of M rows, with g = dy (zero where the ReLU was off):
//   dβ += Σ g;  dγ += Σ g·x̂;  dx = γ/σ̂ · (g − mean(g) − x̂·mean(g·x̂))
// The mean terms are the gradient through the batch statistics.
//
// Speed: these loops stream tensors of millions of floats, so they are written to touch memory
// as few times as possible. Forward is y = a·x + b with a = γ/σ̂ and b = β − a·μ per channel, and
// keeps no x̂: backward recomputes it from x (the previous layer's output, still alive), and the
// ReLU mask from a·x + b, so it reads only dy and x. Since x̂ = (x − μ)/σ̂, dx is again an affine
// function of g and x per channel: dx = c·g + p·x + q. Sums run in Float over blocks of rows
// (vectorised across channels) and are folded into Double between blocks.

public final class BatchNorm: Layer {
    public let channels: Int
    public let epsilon: Float
    public let momentum: Float
    public let fusedReLU: Bool
    public let scale: Parameter?, shift: Parameter?
    public let runningMean: Parameter, runningVariance: Parameter

    private let output = Tensor(zeros: [0])
    private let inputGradient = Tensor(zeros: [0])
    private var input: Tensor?
    private var lastMode = ForwardMode.inference
    /// Per view and channel, from the last forward: mean, 1/σ̂, and the affine map y = a·x + b.
    private var mean: [Float] = [], inverseStd: [Float] = [], slope: [Float] = [], intercept: [Float] = []

    public init(
        _ name: String, in arena: ParameterArena, channels: Int, affine: Bool = true, fusedReLU: Bool = false,
        epsilon: Float = 1e-5, momentum: Float = 0.1
    ) {
        self.channels = channels
        self.epsilon = epsilon
        self.momentum = momentum
        self.fusedReLU = fusedReLU
        let ones = [Float](repeating: 1, count: channels), zeros = [Float](repeating: 0, count: channels)
        scale = affine ? arena.register("\(name).weight", shape: [channels], role: .normScale, initial: ones) : nil
        shift = affine ? arena.register("\(name).bias", shape: [channels], role: .normShift, initial: zeros) : nil
        runningMean = arena.register("\(name).running_mean", shape: [channels], role: .statistic, initial: zeros)
        runningVariance = arena.register("\(name).running_var", shape: [channels], role: .statistic, initial: ones)
    }

    private func gamma(_ j: Int) -> Float { scale?.values[j] ?? 1 }
    private func beta(_ j: Int) -> Float { shift?.values[j] ?? 0 }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        let c = channels
        precondition(x.lastDimension == c, "BatchNorm(\(c)) got \(x.shape)")
        let views = mode.isTraining ? mode.views : 1
        let rowsPerView = x.rows / views
        precondition(rowsPerView * views == x.rows, "\(x.rows) rows do not split into \(views) views")
        precondition(!mode.isTraining || rowsPerView > 1, "batch statistics need more than one row per view")
        lastMode = mode
        input = x
        output.reshape(to: x.shape)
        mean = [Float](repeating: 0, count: views * c)
        inverseStd = mean; slope = mean; intercept = mean
        for v in 0..<views {
            let rows = (v * rowsPerView)..<((v + 1) * rowsPerView)
            if mode.isTraining {
                let (mu, variance) = columnMeanAndVariance(x.data, rows: rows)
                let unbiased = Float(rowsPerView) / Float(rowsPerView - 1)
                for j in 0..<c {
                    mean[v * c + j] = mu[j]
                    inverseStd[v * c + j] = 1 / (variance[j] + epsilon).squareRoot()
                    runningMean.values[j] += momentum * (mu[j] - runningMean.values[j])
                    runningVariance.values[j] += momentum * (variance[j] * unbiased - runningVariance.values[j])
                }
            } else {
                for j in 0..<c {
                    mean[j] = runningMean.values[j]
                    inverseStd[j] = 1 / (runningVariance.values[j] + epsilon).squareRoot()
                }
            }
            for j in 0..<c {
                slope[v * c + j] = gamma(j) * inverseStd[v * c + j]
                intercept[v * c + j] = beta(j) - slope[v * c + j] * mean[v * c + j]
            }
            slope.withUnsafeBufferPointer { a in intercept.withUnsafeBufferPointer { b in
                let (a, b) = (a.baseAddress! + v * c, b.baseAddress! + v * c)
                for r in rows {
                    let (xr, yr) = (x.data + r * c, output.data + r * c)
                    if fusedReLU {
                        for j in 0..<c { yr[j] = max(a[j] * xr[j] + b[j], 0) }
                    } else {
                        for j in 0..<c { yr[j] = a[j] * xr[j] + b[j] }
                    }
                }
            }}
        }
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("BatchNorm.backward before forward") }
        let c = channels
        precondition(dy.count == output.count)
        let views = lastMode.isTraining ? lastMode.views : 1
        let rowsPerView = dy.rows / views
        inputGradient.reshape(to: dy.shape)
        for v in 0..<views {
            let rows = (v * rowsPerView)..<((v + 1) * rowsPerView)
            // Σ g and Σ g·x per channel; Σ g·x̂ = (Σ g·x − μ·Σ g)/σ̂.
            let (sumG, sumGX) = maskedColumnSums(dy.data, x.data, view: v, rows: rows)
            let m = Double(rowsPerView)
            var k1 = [Float](repeating: 0, count: c), k2 = k1, k3 = k1
            for j in 0..<c {
                let (mu, istd) = (Double(mean[v * c + j]), Double(inverseStd[v * c + j]))
                let sumGXhat = (sumGX[j] - mu * sumG[j]) * istd
                shift?.gradients[j] += Float(sumG[j])
                scale?.gradients[j] += Float(sumGXhat)
                // dx = γσ̂⁻¹·(g − Σg/M − x̂·Σg·x̂/M) = k1·g + k2·x + k3
                let coefficient = Double(gamma(j)) * istd
                // In inference mode the statistics are constants: no terms through them.
                let meanG = lastMode.isTraining ? sumG[j] / m : 0, meanGXhat = lastMode.isTraining ? sumGXhat / m : 0
                k1[j] = Float(coefficient)
                k2[j] = Float(-coefficient * istd * meanGXhat)
                k3[j] = Float(coefficient * (mu * istd * meanGXhat - meanG))
            }
            k1.withUnsafeBufferPointer { k1 in k2.withUnsafeBufferPointer { k2 in k3.withUnsafeBufferPointer { k3 in
            slope.withUnsafeBufferPointer { a in intercept.withUnsafeBufferPointer { b in
                let (k1, k2, k3) = (k1.baseAddress!, k2.baseAddress!, k3.baseAddress!)
                let (a, b) = (a.baseAddress! + v * c, b.baseAddress! + v * c)
                for r in rows {
                    let (d, xr, dx) = (dy.data + r * c, x.data + r * c, inputGradient.data + r * c)
                    var j = 0
                    while j + 16 <= c {
                        let xv = load16(xr + j)
                        var g = load16(d + j)
                        if fusedReLU { g.replace(with: 0, where: load16(a + j) * xv + load16(b + j) .<= 0) }
                        store16(load16(k1 + j) * g + load16(k2 + j) * xv + load16(k3 + j), dx + j)
                        j += 16
                    }
                    while j < c {
                        let g = fusedReLU && a[j] * xr[j] + b[j] <= 0 ? 0 : d[j]
                        dx[j] = k1[j] * g + k2[j] * xr[j] + k3[j]
                        j += 1
                    }
                }
            }}}}}
        }
        return inputGradient
    }

    // MARK: Column sums, blocked

    private static let blockRows = 64

    /// Per-channel mean and biased variance over `rows`. Sums are taken around a shift (the first
    /// row) so that a large mean does not swamp the variance in Float.
    private func columnMeanAndVariance(_ x: UnsafeMutablePointer<Float>, rows: Range<Int>) -> ([Float], [Float]) {
        let c = channels
        let shiftRow = Array(UnsafeBufferPointer(start: x + rows.lowerBound * c, count: c))
        var sum = [Double](repeating: 0, count: c), squares = sum
        var blockSum = [Float](repeating: 0, count: c), blockSquares = blockSum
        shiftRow.withUnsafeBufferPointer { k in blockSum.withUnsafeMutableBufferPointer { s in
        blockSquares.withUnsafeMutableBufferPointer { q in
            let (k, s, q) = (k.baseAddress!, s.baseAddress!, q.baseAddress!)
            for blockStart in Swift.stride(from: rows.lowerBound, to: rows.upperBound, by: Self.blockRows) {
                s.update(repeating: 0, count: c)
                q.update(repeating: 0, count: c)
                for r in blockStart..<min(blockStart + Self.blockRows, rows.upperBound) {
                    let xr = x + r * c
                    for j in 0..<c { let d = xr[j] - k[j]; s[j] += d; q[j] += d * d }
                }
                for j in 0..<c { sum[j] += Double(s[j]); squares[j] += Double(q[j]) }
            }
        }}}
        let n = Double(rows.count)
        let mean = (0..<c).map { Float(Double(shiftRow[$0]) + sum[$0] / n) }
        let variance = (0..<c).map { Float(max(squares[$0] / n - (sum[$0] / n) * (sum[$0] / n), 0)) }
        return (mean, variance)
    }

    /// Σ g and Σ g·x per channel over `rows`, where g is dy masked by the fused ReLU.
    private func maskedColumnSums(_ dy: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>, view v: Int,
                                  rows: Range<Int>) -> ([Double], [Double]) {
        let c = channels
        var sumG = [Double](repeating: 0, count: c), sumGX = sumG
        var blockG = [Float](repeating: 0, count: c), blockGX = blockG
        slope.withUnsafeBufferPointer { a in intercept.withUnsafeBufferPointer { b in
        blockG.withUnsafeMutableBufferPointer { sg in blockGX.withUnsafeMutableBufferPointer { sgx in
            let (a, b, sg, sgx) = (a.baseAddress! + v * c, b.baseAddress! + v * c, sg.baseAddress!, sgx.baseAddress!)
            for blockStart in Swift.stride(from: rows.lowerBound, to: rows.upperBound, by: Self.blockRows) {
                sg.update(repeating: 0, count: c)
                sgx.update(repeating: 0, count: c)
                for r in blockStart..<min(blockStart + Self.blockRows, rows.upperBound) {
                    let (d, xr) = (dy + r * c, x + r * c)
                    var j = 0
                    while j + 16 <= c {
                        let xv = load16(xr + j)
                        var g = load16(d + j)
                        if fusedReLU { g.replace(with: 0, where: load16(a + j) * xv + load16(b + j) .<= 0) }
                        store16(load16(sg + j) + g, sg + j)
                        store16(load16(sgx + j) + g * xv, sgx + j)
                        j += 16
                    }
                    while j < c {
                        let g = fusedReLU && a[j] * xr[j] + b[j] <= 0 ? 0 : d[j]
                        sg[j] += g; sgx[j] += g * xr[j]
                        j += 1
                    }
                }
                for j in 0..<c { sumG[j] += Double(sg[j]); sumGX[j] += Double(sgx[j]) }
            }
        }}}}
        return (sumG, sumGX)
    }
}
