// Finite-difference check for ADC's terms, in the project's pattern (Tests/NeuralTests/GradientCheck):
// central differences (L(z + ε e_k) − L(z − ε e_k)) / 2ε on every coordinate of a small z, the
// error of each coordinate reported relative to the root-mean-square of the numeric gradient.
// The terms are scalar losses, so L is the loss itself (no random projection R is needed).
import Foundation
import Neural

struct ADCGradientReport: CustomStringConvertible {
    var worstError: Float = 0      // max |analytic − numeric| / rms(numeric)
    var worstPlace = ""
    var checkedCoordinates = 0

    var description: String { "worst relative error \(worstError) at \(worstPlace) over \(checkedCoordinates) coordinates" }
}

/// Compares `analytic` (∂L/∂z at z) with central differences of `loss`, which must not keep z's
/// perturbation (it is restored after each evaluation).
func adcGradientCheck(at z: Tensor, analytic: Tensor, epsilon: Float = 1e-3, loss: (Tensor) -> Float) -> ADCGradientReport {
    precondition(analytic.shape == z.shape)
    var numeric = [Float](repeating: 0, count: z.count)
    for k in 0..<z.count {
        let original = z[k]
        z[k] = original + epsilon
        let plus = Double(loss(z))
        z[k] = original - epsilon
        let minus = Double(loss(z))
        z[k] = original
        numeric[k] = Float((plus - minus) / Double(2 * epsilon))
    }
    let rms = max((numeric.reduce(0) { $0 + $1 * $1 } / Float(numeric.count)).squareRoot(), 1e-6)
    var report = ADCGradientReport(checkedCoordinates: z.count)
    for k in 0..<z.count {
        let error = abs(analytic[k] - numeric[k]) / rms
        if error > report.worstError {
            report.worstError = error
            report.worstPlace = "z[\(k)]: analytic \(analytic[k]) numeric \(numeric[k])"
        }
    }
    return report
}

/// Random [rows, width] with unit rows (the caller of ADC L2-normalises), from a seed.
func adcUnitRows(_ rows: Int, _ width: Int, seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    let t = Tensor(zeros: [rows, width])
    t.fillNormal(std: 1, using: &rng)
    adcNormaliseRows(t)
    return t
}

func adcNormaliseRows(_ t: Tensor) {
    let width = t.lastDimension
    for r in 0..<t.rows {
        let n = BLAS.norm(count: width, t.data + r * width)
        BLAS.scale(count: width, alpha: 1 / n, x: t.data + r * width)
    }
}

func adcCopy(_ t: Tensor) -> Tensor {
    let c = Tensor(zeros: t.shape)
    c.copy(from: t)
    return c
}

/// Points on the unit circle at the given angles: [count, 2].
func adcCircle(_ angles: [Float]) -> Tensor {
    Tensor(shape: [angles.count, 2], values: angles.flatMap { [cos($0), sin($0)] })
}
