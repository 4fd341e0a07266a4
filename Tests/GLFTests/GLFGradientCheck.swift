// Finite-difference checking of loss terms with several inputs (the GLF calling convention).
//
// A term returns a scalar L(x_1, ..., x_m) and accumulates ∂L/∂x_i; the check perturbs sampled
// coordinates of each input by ±ε and compares (L(v + ε) − L(v − ε)) / 2ε with the accumulated
// gradient. The error is |analytic − numeric| over the RMS of all numeric derivatives checked, so
// a coordinate whose true derivative is 0 is judged against the scale of the whole gradient.
// (Tests/NeuralTests/GradientCheck.swift does the same for layers; it lives in another test target.)
import Neural

struct TermGradientReport: CustomStringConvertible {
    var worstError: Float = 0
    var worstPlace = ""
    var checkedCoordinates = 0

    var description: String { "worst relative error \(worstError) at \(worstPlace) over \(checkedCoordinates) coordinates" }
}

struct TermGradientCheck {
    var epsilon: Float = 1e-3
    var samplesPerInput = 64
    var seed: UInt64 = 11

    /// `inputs` pairs each perturbed tensor with its analytic gradient (already computed);
    /// `value` recomputes the term's value from the inputs' current contents.
    func run(_ inputs: [(name: String, input: Tensor, gradient: Tensor)], value: () -> Float) -> TermGradientReport {
        var rng = SeededGenerator(seed: seed)
        var analytic: [Float] = [], numeric: [Float] = [], places: [String] = []
        for (name, input, gradient) in inputs {
            precondition(input.count == gradient.count, "\(name): gradient \(gradient.shape) vs input \(input.shape)")
            let indices = input.count <= samplesPerInput
                ? Array(0..<input.count) : (0..<samplesPerInput).map { _ in Int(rng.next() % UInt64(input.count)) }
            for index in indices {
                let original = input[index]
                input[index] = original + epsilon
                let plus = Double(value())
                input[index] = original - epsilon
                let minus = Double(value())
                input[index] = original
                analytic.append(gradient[index])
                numeric.append(Float((plus - minus) / (2 * Double(epsilon))))
                places.append("\(name)[\(index)]")
            }
        }
        let rms = (numeric.reduce(0) { $0 + $1 * $1 } / Float(max(numeric.count, 1))).squareRoot()
        let scale = max(rms, 1e-6)
        var report = TermGradientReport(checkedCoordinates: numeric.count)
        for i in numeric.indices {
            let error = abs(analytic[i] - numeric[i]) / scale
            if error > report.worstError {
                report.worstError = error
                report.worstPlace = "\(places[i]): analytic \(analytic[i]) numeric \(numeric[i])"
            }
        }
        return report
    }

    /// N(0, std²) tensor with a fixed seed.
    static func random(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        let t = Tensor(zeros: shape)
        t.fillNormal(std: std, using: &rng)
        return t
    }

    /// Random rows of unit length.
    static func randomUnitRows(_ shape: [Int], seed: UInt64) -> Tensor {
        let t = random(shape, seed: seed)
        let width = shape[shape.count - 1]
        for r in 0..<(t.count / width) {
            let norm = BLAS.norm(count: width, t.data + r * width)
            for j in 0..<width { t[r * width + j] /= norm }
        }
        return t
    }
}
