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
// backward (training), per view of M rows, with g = dy·γ (after the ReLU mask):
//   dβ += Σ dy;  dγ += Σ dy·x̂;  dx = (1/σ̂)·(g − mean(g) − x̂·mean(g·x̂))
// The mean terms are the gradient through the batch statistics.
import Foundation

public final class BatchNorm: Layer {
    public let channels: Int
    public let epsilon: Float
    public let momentum: Float
    public let fusedReLU: Bool
    public let scale: Parameter?, shift: Parameter?
    public let runningMean: Parameter, runningVariance: Parameter

    private let output = Tensor(zeros: [0])
    private let normalized = Tensor(zeros: [0])
    private let inputGradient = Tensor(zeros: [0])
    private var inverseStd: [Float] = []   // [views, C]
    private var lastMode = ForwardMode.inference

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

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        let c = channels
        precondition(x.lastDimension == c, "BatchNorm(\(c)) got \(x.shape)")
        let views = mode.isTraining ? mode.views : 1
        let rowsPerView = x.rows / views
        precondition(rowsPerView * views == x.rows, "\(x.rows) rows do not split into \(views) views")
        precondition(!mode.isTraining || rowsPerView > 1, "batch statistics need more than one row per view")
        lastMode = mode
        output.reshape(to: x.shape)
        normalized.reshape(to: x.shape)
        inverseStd = [Float](repeating: 0, count: views * c)
        var mean = [Float](repeating: 0, count: c), istd = [Float](repeating: 0, count: c)
        for v in 0..<views {
            let rowStart = v * rowsPerView
            if mode.isTraining {
                let (mu, variance) = statistics(x.data + rowStart * c, rows: rowsPerView)
                let unbiased = Float(rowsPerView) / Float(rowsPerView - 1)
                for j in 0..<c {
                    mean[j] = mu[j]
                    istd[j] = 1 / (variance[j] + epsilon).squareRoot()
                    inverseStd[v * c + j] = istd[j]
                    runningMean.values[j] += momentum * (mu[j] - runningMean.values[j])
                    runningVariance.values[j] += momentum * (variance[j] * unbiased - runningVariance.values[j])
                }
            } else {
                for j in 0..<c {
                    mean[j] = runningMean.values[j]
                    istd[j] = 1 / (runningVariance.values[j] + epsilon).squareRoot()
                    inverseStd[j] = istd[j]
                }
            }
            let gamma = scale.map { Array(UnsafeBufferPointer(start: $0.values, count: c)) } ?? [Float](repeating: 1, count: c)
            let beta = shift.map { Array(UnsafeBufferPointer(start: $0.values, count: c)) } ?? [Float](repeating: 0, count: c)
            let relu = fusedReLU
            mean.withUnsafeBufferPointer { mean in istd.withUnsafeBufferPointer { istd in
            gamma.withUnsafeBufferPointer { gamma in beta.withUnsafeBufferPointer { beta in
                for r in rowStart..<(rowStart + rowsPerView) {
                    let xr = x.data + r * c, nr = normalized.data + r * c, yr = output.data + r * c
                    for j in 0..<c {
                        let xh = (xr[j] - mean[j]) * istd[j]
                        nr[j] = xh
                        let y = gamma[j] * xh + beta[j]
                        yr[j] = relu ? max(y, 0) : y
                    }
                }
            }}}}
        }
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let c = channels
        precondition(dy.count == output.count)
        let views = lastMode.isTraining ? lastMode.views : 1
        let rowsPerView = dy.rows / views
        inputGradient.reshape(to: dy.shape)
        let gamma = scale.map { Array(UnsafeBufferPointer(start: $0.values, count: c)) } ?? [Float](repeating: 1, count: c)
        for v in 0..<views {
            let rowStart = v * rowsPerView, rowEnd = rowStart + rowsPerView
            // Σ dy and Σ dy·x̂ per channel (dy after the ReLU mask), in Double for long batches.
            var sumDy = [Double](repeating: 0, count: c), sumDyXhat = [Double](repeating: 0, count: c)
            for r in rowStart..<rowEnd {
                let d = dy.data + r * c, xh = normalized.data + r * c, y = output.data + r * c
                for j in 0..<c {
                    let g = (fusedReLU && y[j] <= 0) ? 0 : d[j]
                    sumDy[j] += Double(g)
                    sumDyXhat[j] += Double(g * xh[j])
                }
            }
            if let shift { for j in 0..<c { shift.gradients[j] += Float(sumDy[j]) } }
            if let scale { for j in 0..<c { scale.gradients[j] += Float(sumDyXhat[j]) } }
            let m = Double(rowsPerView)
            var meanG = [Float](repeating: 0, count: c), meanGXhat = [Float](repeating: 0, count: c), coef = [Float](repeating: 0, count: c)
            for j in 0..<c {
                coef[j] = gamma[j] * inverseStd[v * c + j]
                // In inference mode the statistics are constants: no mean terms.
                meanG[j] = lastMode.isTraining ? Float(sumDy[j] / m) : 0
                meanGXhat[j] = lastMode.isTraining ? Float(sumDyXhat[j] / m) : 0
            }
            let relu = fusedReLU
            meanG.withUnsafeBufferPointer { meanG in meanGXhat.withUnsafeBufferPointer { meanGXhat in
            coef.withUnsafeBufferPointer { coef in
                for r in rowStart..<rowEnd {
                    let d = dy.data + r * c, xh = normalized.data + r * c, y = output.data + r * c
                    let dx = inputGradient.data + r * c
                    for j in 0..<c {
                        let g = (relu && y[j] <= 0) ? 0 : d[j]
                        dx[j] = coef[j] * (g - meanG[j] - xh[j] * meanGXhat[j])
                    }
                }
            }}}
        }
        return inputGradient
    }

    /// Per-channel mean and biased variance over `rows` rows (two passes, Double accumulators).
    private func statistics(_ x: UnsafeMutablePointer<Float>, rows: Int) -> ([Float], [Float]) {
        let c = channels
        var sum = [Double](repeating: 0, count: c)
        for r in 0..<rows { let xr = x + r * c; for j in 0..<c { sum[j] += Double(xr[j]) } }
        let mean = sum.map { Float($0 / Double(rows)) }
        var squares = [Double](repeating: 0, count: c)
        for r in 0..<rows {
            let xr = x + r * c
            for j in 0..<c { let d = xr[j] - mean[j]; squares[j] += Double(d * d) }
        }
        return (mean, squares.map { Float($0 / Double(rows)) })
    }
}
