// The linear probe: its gradient against finite differences, convergence, and agreement with a
// closed-form classifier where the answer is known.
import Foundation
import Testing
import GLF
import Neural

@Suite struct LinearProbeTests {
    /// n rows of dimension f: row r is class r % classes, its class's centre plus Gaussian noise.
    func clusters(_ n: Int, features f: Int, classes: Int, spread: Float, seed: UInt64) -> (Tensor, [Int], Tensor) {
        var rng = SeededGenerator(seed: seed)
        let centres = Tensor(zeros: [classes, f])
        centres.fillNormal(std: 1, using: &rng)
        let (x, labels) = samples(n, around: centres, spread: spread, seed: seed &+ 1)
        return (x, labels, centres)
    }

    func samples(_ n: Int, around centres: Tensor, spread: Float, seed: UInt64) -> (Tensor, [Int]) {
        let (classes, f) = (centres.shape[0], centres.shape[1])
        var rng = SeededGenerator(seed: seed)
        let x = Tensor(zeros: [n, f])
        x.fillNormal(std: spread, using: &rng)
        let labels = (0..<n).map { $0 % classes }
        for r in 0..<n { for j in 0..<f { x[r * f + j] += centres[labels[r] * f + j] } }
        return (x, labels)
    }

    @Test func gradientMatchesFiniteDifferences() {
        let (x, labels, _) = clusters(40, features: 6, classes: 4, spread: 1, seed: 1)
        let probe = LinearProbe(l2: 0.05)
        var rng = SeededGenerator(seed: 2)
        let theta = Tensor(zeros: [6 * 4 + 4])
        theta.fillNormal(std: 0.5, using: &rng)
        let parameters = theta.array
        let (_, analytic) = probe.lossAndGradient(x, labels: labels, parameters: parameters, classes: 4)
        var worst = 0.0
        for k in parameters.indices {
            var plus = parameters, minus = parameters
            plus[k] += 1e-2
            minus[k] -= 1e-2
            let numeric = (probe.lossAndGradient(x, labels: labels, parameters: plus, classes: 4).0
                           - probe.lossAndGradient(x, labels: labels, parameters: minus, classes: 4).0) / 2e-2
            worst = max(worst, abs(numeric - analytic[k]))
        }
        #expect(worst < 1e-3, "worst |analytic − numeric| \(worst)")
        // A wrong gradient (the penalty forgotten) fails the same comparison.
        let (_, unpenalised) = LinearProbe(l2: 0).lossAndGradient(x, labels: labels, parameters: parameters, classes: 4)
        #expect(zip(unpenalised, analytic).map { abs($0 - $1) }.max()! > 1e-2)
    }

    /// Separable clusters: the closed-form nearest-centre rule (on unit rows, as the probe sees
    /// them) classifies every test row, and so must the probe, row for row.
    @Test func separableFeaturesAreClassifiedLikeTheClosedForm() {
        let (train, trainLabels, centres) = clusters(300, features: 8, classes: 5, spread: 0.05, seed: 3)
        let (test, testLabels) = samples(200, around: centres, spread: 0.05, seed: 4)
        func unit(_ t: Tensor, _ row: Int) -> [Float] {
            let d = t.lastDimension, n = norm(t, row)
            return (0..<d).map { t[row * d + $0] / n }
        }
        let nearestCentre = (0..<200).map { r in
            let x = unit(test, r)
            return (0..<5).min { a, b in
                zip(x, unit(centres, a)).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                    < zip(x, unit(centres, b)).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            }!
        }
        #expect(nearestCentre == testLabels)
        let model = LinearProbe().fit(train, labels: trainLabels, classes: 5)
        #expect(model.predict(test) == nearestCentre)
        #expect(model.accuracy(train, labels: trainLabels) == 1)
    }

    func norm(_ t: Tensor, _ row: Int) -> Float {
        let d = t.lastDimension
        return (0..<d).reduce(Float(0)) { $0 + t[row * d + $1] * t[row * d + $1] }.squareRoot()
    }

    @Test func overlappingClassesConvergeToAStationaryPoint() {
        let (x, labels, _) = clusters(500, features: 10, classes: 3, spread: 1.5, seed: 5)
        let model = LinearProbe(l2: 1e-2, maxIterations: 1000, gradientTolerance: 1e-5).fit(x, labels: labels, classes: 3)
        #expect(model.finalGradient < 1e-4, "max |∇| \(model.finalGradient) after \(model.iterations) iterations")
        let accuracy = model.accuracy(x, labels: labels)
        #expect(accuracy > 0.5 && accuracy < 1, "\(accuracy)")   // learnable, not separable
    }
}
