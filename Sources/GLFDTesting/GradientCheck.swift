// Finite-difference checking of backward passes: the one check every layer, loss and ADC term in
// the tests goes through.
//
// A scalar L is evaluated at v ± ε on sampled coordinates of each checked tensor, and the
// central difference (L(v + ε) − L(v − ε)) / 2ε is compared with the analytic ∂L/∂v. L is
// accumulated in Double; ε = 1e-3 keeps Float32 rounding in L around 1e-3 of a typical
// derivative, while a missing or wrong term moves the gradient by a sizeable fraction of its
// scale. Each tensor's error is reported relative to the root-mean-square of its numeric gradient,
// but never to less than 5% of the whole gradient's: a tensor whose true gradient is zero (a bias
// before batch norm) is then judged against the rounding floor, not against its own noise.
//
// A loss term is a scalar already; for a layer y = f(x; θ) the check uses L = Σ y ⊙ R with a
// fixed random R, so that ∂L/∂y = R.
import Neural

public struct GradientReport: CustomStringConvertible, Sendable {
    /// max |analytic − numeric| / scale, over every checked coordinate.
    public var worstError: Float = 0
    public var worstPlace = ""
    public var checkedCoordinates = 0

    public var description: String { "worst relative error \(worstError) at \(worstPlace) over \(checkedCoordinates) coordinates" }
}

/// One tensor the check perturbs: its values in place, and the analytic gradient to judge.
public struct GradientProbe {
    public var name: String
    public var values: UnsafeMutablePointer<Float>
    public var count: Int
    public var analytic: [Float]

    public init(_ name: String, values: UnsafeMutablePointer<Float>, count: Int, analytic: [Float]) {
        precondition(analytic.count == count, "\(name): \(analytic.count) gradient values for \(count) inputs")
        (self.name, self.values, self.count, self.analytic) = (name, values, count, analytic)
    }

    public init(_ name: String, _ input: Tensor, gradient: Tensor) {
        precondition(input.count == gradient.count, "\(name): gradient \(gradient.shape) vs input \(input.shape)")
        self.init(name, values: input.data, count: input.count, analytic: gradient.array)
    }
}

public struct GradientCheck: Sendable {
    public var epsilon: Float
    /// Coordinates checked per tensor (all of a smaller one); `.max` checks every coordinate.
    public var samplesPerTensor: Int
    public var seed: UInt64

    public init(epsilon: Float = 1e-3, samplesPerTensor: Int = 48, seed: UInt64 = 7) {
        (self.epsilon, self.samplesPerTensor, self.seed) = (epsilon, samplesPerTensor, seed)
    }

    /// The mechanism: `value` recomputes L from the probes' current contents (each perturbation is
    /// undone before the next).
    public func run(_ probes: [GradientProbe], value: () -> Double) -> GradientReport {
        var rng = SeededGenerator(seed: seed)
        return run(probes, sampling: &rng, value: value)
    }

    /// Loss terms: each input with its analytic gradient, `value` the term at the inputs' contents.
    public func run(_ inputs: [(name: String, input: Tensor, gradient: Tensor)], value: () -> Float) -> GradientReport {
        run(inputs.map { GradientProbe($0.name, $0.input, gradient: $0.gradient) }) { Double(value()) }
    }

    /// A layer: dL/dx (unless `checkInput` is false) and dL/dθ for every non-statistic parameter.
    /// `backward` defaults to the layer's own; a test may pass a deliberately wrong one.
    public func run(_ layer: Layer, arena: ParameterArena, input: Tensor, mode: ForwardMode = .training,
                    checkInput: Bool = true, backward: ((Tensor) -> Tensor)? = nil) -> GradientReport {
        var rng = SeededGenerator(seed: seed)
        let weights = Tensor(zeros: layer.forward(input, mode: mode).shape)
        weights.fillNormal(std: 1, using: &rng)

        arena.zeroGradients()
        _ = layer.forward(input, mode: mode)
        let dx = (backward ?? layer.backward)(weights).array
        var probes = checkInput ? [GradientProbe("input", values: input.data, count: input.count, analytic: dx)] : []
        for p in arena.parameters where p.role != .statistic {
            probes.append(GradientProbe(p.name, values: p.values, count: p.count,
                                        analytic: Array(UnsafeBufferPointer(start: p.gradients, count: p.count))))
        }
        return run(probes, sampling: &rng) {
            let y = layer.forward(input, mode: mode)
            var total = 0.0
            for i in 0..<y.count { total += Double(y[i]) * Double(weights[i]) }
            return total
        }
    }

    private func run(_ probes: [GradientProbe], sampling rng: inout SeededGenerator, value: () -> Double) -> GradientReport {
        func numericDerivative(_ pointer: UnsafeMutablePointer<Float>) -> Float {
            let original = pointer.pointee
            pointer.pointee = original + epsilon
            let plus = value()
            pointer.pointee = original - epsilon
            let minus = value()
            pointer.pointee = original
            return Float((plus - minus) / Double(2 * epsilon))
        }
        // Numeric derivatives of every tensor first, so that each one's error can be put against
        // the scale of the whole gradient.
        struct Checked { var name: String; var indices: [Int]; var analytic: [Float]; var numeric: [Float] }
        let checked = probes.map { probe in
            let indices = probe.count <= samplesPerTensor
                ? Array(0..<probe.count) : (0..<samplesPerTensor).map { _ in Int(rng.next() % UInt64(probe.count)) }
            return Checked(name: probe.name, indices: indices, analytic: indices.map { probe.analytic[$0] },
                           numeric: indices.map { numericDerivative(probe.values + $0) })
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

/// N(0, std²) tensor with a fixed seed.
public func randomTensor(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    let t = Tensor(zeros: shape)
    t.fillNormal(std: std, using: &rng)
    return t
}

/// Random values bounded away from zero (|v| ≥ 0.1), so that a ReLU's kink is never within ε.
public func randomTensorAwayFromZero(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    let t = Tensor(zeros: shape)
    for i in 0..<t.count {
        let v = rng.nextNormal()
        t[i] = v < 0 ? v - 0.1 : v + 0.1
    }
    return t
}

/// Random rows of unit length (what the losses see after L2 normalisation).
public func randomUnitRows(_ shape: [Int], seed: UInt64) -> Tensor {
    let t = randomTensor(shape, seed: seed)
    normaliseRows(t)
    return t
}

/// Scales every row of `t` (its last dimension) to unit length, in place.
public func normaliseRows(_ t: Tensor) {
    let width = t.lastDimension
    for r in 0..<(t.count / width) {
        let norm = BLAS.norm(count: width, t.data + r * width)
        BLAS.scale(count: width, alpha: 1 / norm, x: t.data + r * width)
    }
}
