// Finite-difference checking of backward passes.
//
// For a layer y = f(x; θ) the check uses the scalar L = Σ y ⊙ R with a fixed random R, so that
// dL/dy = R. The analytic gradients (backward(R), and the arena's gradients) are compared with
// central differences (L(v + ε) − L(v − ε)) / 2ε on sampled coordinates of x and of every trained
// parameter. L is accumulated in Double; ε = 1e-3 keeps Float32 rounding in L around 1e-3 of a
// typical derivative, while a missing or wrong term moves the gradient by a sizeable fraction of
// its scale. The error is reported relative to the root-mean-square of the numeric gradient.
import Neural

struct GradientReport: CustomStringConvertible {
    var worstError: Float = 0          // max |analytic − numeric| / rms(numeric), over all checked tensors
    var worstPlace = ""
    var checkedCoordinates = 0

    var description: String { "worst relative error \(worstError) at \(worstPlace) over \(checkedCoordinates) coordinates" }
}

struct GradientCheck {
    var epsilon: Float = 1e-3
    var samplesPerTensor = 48
    var seed: UInt64 = 7

    /// Checks dL/dx (unless `checkInput` is false) and dL/dθ for every non-statistic parameter.
    /// `backward` defaults to the layer's own; a test may pass a deliberately wrong one.
    func run(_ layer: Layer, arena: ParameterArena, input: Tensor, mode: ForwardMode = .training,
             checkInput: Bool = true, backward: ((Tensor) -> Tensor)? = nil) -> GradientReport {
        var rng = SeededGenerator(seed: seed)
        let firstOutput = layer.forward(input, mode: mode)
        let weights = Tensor(zeros: firstOutput.shape)
        weights.fillNormal(std: 1, using: &rng)

        // Analytic gradients.
        arena.zeroGradients()
        _ = layer.forward(input, mode: mode)
        let dx = (backward ?? layer.backward)(weights).array
        let parameterGradients = arena.parameters.map { Array(UnsafeBufferPointer(start: $0.gradients, count: $0.count)) }

        func loss() -> Double {
            let y = layer.forward(input, mode: mode)
            var total = 0.0
            for i in 0..<y.count { total += Double(y[i]) * Double(weights[i]) }
            return total
        }
        func numericDerivative(_ pointer: UnsafeMutablePointer<Float>) -> Float {
            let original = pointer.pointee
            pointer.pointee = original + epsilon
            let plus = loss()
            pointer.pointee = original - epsilon
            let minus = loss()
            pointer.pointee = original
            return Float((plus - minus) / Double(2 * epsilon))
        }

        // Numeric derivatives first, so that each tensor's error can be put against the scale of
        // the whole gradient: a tensor whose true gradient is zero (a bias before batch norm)
        // is then judged against the rounding floor, not against its own noise.
        struct Checked { var name: String; var indices: [Int]; var analytic: [Float]; var numeric: [Float] }
        var checked: [Checked] = []
        func sample(_ name: String, count: Int, analytic: [Float], pointer: UnsafeMutablePointer<Float>) {
            let indices = count <= samplesPerTensor
                ? Array(0..<count) : (0..<samplesPerTensor).map { _ in Int(rng.next() % UInt64(count)) }
            checked.append(Checked(name: name, indices: indices, analytic: indices.map { analytic[$0] },
                                   numeric: indices.map { numericDerivative(pointer + $0) }))
        }
        if checkInput { sample("input", count: input.count, analytic: dx, pointer: input.data) }
        for (p, analytic) in zip(arena.parameters, parameterGradients) where p.role != .statistic {
            sample(p.name, count: p.count, analytic: analytic, pointer: p.values)
        }
        func rms(_ v: [Float]) -> Float { (v.reduce(0) { $0 + $1 * $1 } / Float(max(v.count, 1))).squareRoot() }
        let overall = rms(checked.flatMap(\.numeric))
        var report = GradientReport()
        for c in checked {
            let scale = max(rms(c.numeric), 0.05 * overall, 1e-6)
            for (i, index) in c.indices.enumerated() {
                let error = abs(c.analytic[i] - c.numeric[i]) / scale
                if error > report.worstError {
                    report.worstError = error
                    report.worstPlace = "\(c.name)[\(index)]: analytic \(c.analytic[i]) numeric \(c.numeric[i])"
                }
            }
            report.checkedCoordinates += c.indices.count
        }
        return report
    }
}

/// Random N(0, 1) tensor with a fixed seed.
func randomTensor(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    let t = Tensor(zeros: shape)
    t.fillNormal(std: std, using: &rng)
    return t
}

/// Random values bounded away from zero (|v| ≥ 0.1), so that a ReLU's kink is never within ε.
func randomTensorAwayFromZero(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    let t = Tensor(zeros: shape)
    for i in 0..<t.count {
        let v = rng.nextNormal()
        t[i] = v < 0 ? v - 0.1 : v + 0.1
    }
    return t
}
