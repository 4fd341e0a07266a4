// The linear probe (the paper's protocol, method.md §5): a linear classifier on frozen,
// L2-normalised backbone features of the train split, scored by top-1 on the test split.
//
//   features  x [N, F]   L2-normalised per row, then standardised per dimension with the train
//                        split's mean and std (the same map is applied to the test features)
//   weights   W [F, C], bias b [C]
//   logits    s = x W + b                         [N, C]   (one sgemm)
//   loss      L = −(1/N) Σ_n log softmax(s_n)_{y_n} + (λ/2)‖W‖²
//   gradient  ∂L/∂W = (1/N) xᵀ (P − Y) + λW,  ∂L/∂b = (1/N) Σ_n (P − Y)_n     P = softmax(s), Y one-hot
//
// The problem is convex, so it is solved to convergence by L-BFGS (memory 10, backtracking Armijo
// line search) rather than by an SGD schedule with a learning rate to tune: the probe then measures
// the features, not the optimiser. Standardising makes the problem well conditioned (L2-normalised
// features are ~1/√F per dimension). λ is the only knob (default 1e-4).
import Foundation
import Neural

public struct LinearProbe: Sendable {
    /// λ, the L2 penalty on W (not on b).
    public var l2: Double
    public var maxIterations: Int
    /// Stop when the gradient's largest entry falls below this.
    public var gradientTolerance: Double

    public init(l2: Double = 1e-4, maxIterations: Int = 500, gradientTolerance: Double = 1e-6) {
        precondition(l2 >= 0 && maxIterations >= 1 && gradientTolerance > 0)
        self.l2 = l2
        self.maxIterations = maxIterations
        self.gradientTolerance = gradientTolerance
    }

    /// A trained probe: the standardisation, W [F, C] and b [C] (row-major in `parameters`: W then b).
    public struct Model: Sendable {
        public let features: Int
        public let classes: Int
        public let mean: [Float], inverseStd: [Float]
        public let parameters: [Float]
        public let iterations: Int
        public let finalLoss: Double
        public let finalGradient: Double

        /// Predicted class of every row of x [N, F] (raw features: normalised here as in training).
        public func predict(_ x: Tensor) -> [Int] {
            let inputs = LinearProbe.prepare(x, mean: mean, inverseStd: inverseStd)
            let logits = LinearProbe.logits(inputs, parameters, features: features, classes: classes)
            return (0..<inputs.shape[0]).map { n in
                var best = 0
                for c in 1..<classes where logits[n * classes + c] > logits[n * classes + best] { best = c }
                return best
            }
        }

        public func accuracy(_ x: Tensor, labels: [Int]) -> Double {
            let predicted = predict(x)
            return Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(max(labels.count, 1))
        }
    }

    /// Fits the probe to x [N, F] with labels in 0..<classes.
    public func fit(_ x: Tensor, labels: [Int], classes: Int) -> Model {
        precondition(x.shape.count == 2 && x.shape[0] == labels.count && x.shape[0] > 0, "features \(x.shape) vs \(labels.count) labels")
        precondition(classes >= 2 && labels.allSatisfy { (0..<classes).contains($0) })
        let features = x.shape[1]
        let (mean, inverseStd) = Self.standardisation(Self.unitRows(x))
        let inputs = Self.prepare(x, mean: mean, inverseStd: inverseStd)
        let objective = { (theta: [Double]) -> (Double, [Double]) in
            self.lossAndGradient(inputs, labels: labels, parameters: theta.map(Float.init), classes: classes)
        }
        let start = [Double](repeating: 0, count: features * classes + classes)
        let (solution, iterations, loss, gradient) = Self.minimise(objective, from: start, maxIterations: maxIterations,
                                                                  tolerance: gradientTolerance)
        return Model(features: features, classes: classes, mean: mean, inverseStd: inverseStd,
                     parameters: solution.map(Float.init), iterations: iterations, finalLoss: loss, finalGradient: gradient)
    }

    /// L and ∂L/∂θ at θ = (W, b) for prepared inputs x [N, F] (see the header).
    public func lossAndGradient(_ x: Tensor, labels: [Int], parameters: [Float], classes: Int) -> (Double, [Double]) {
        let (n, features) = (x.shape[0], x.shape[1])
        precondition(parameters.count == features * classes + classes)
        var residual = Self.logits(x, parameters, features: features, classes: classes)   // s, then P − Y
        var loss = 0.0
        for r in 0..<n {
            let row = r * classes
            var largest = -Float.infinity
            for c in 0..<classes { largest = max(largest, residual[row + c]) }
            var sum = 0.0
            for c in 0..<classes { sum += exp(Double(residual[row + c] - largest)) }
            let logNormaliser = Double(largest) + log(sum)
            loss -= Double(residual[row + labels[r]]) - logNormaliser
            for c in 0..<classes { residual[row + c] = Float(exp(Double(residual[row + c]) - logNormaliser)) }
            residual[row + labels[r]] -= 1
        }
        loss /= Double(n)
        var gradient = [Float](repeating: 0, count: parameters.count)
        residual.withUnsafeBufferPointer { r in
            gradient.withUnsafeMutableBufferPointer { g in
                // ∂L/∂W = (1/N) xᵀ R   [F, C]
                BLAS.gemm(transposeA: true, m: features, n: classes, k: n, alpha: 1 / Float(n), a: x.data, lda: features,
                          b: r.baseAddress!, ldb: classes, c: g.baseAddress!, ldc: classes)
            }
        }
        var penalty = 0.0
        for k in 0..<(features * classes) {
            penalty += Double(parameters[k]) * Double(parameters[k])
        }
        loss += l2 / 2 * penalty
        var result = gradient.map(Double.init)
        for k in 0..<(features * classes) { result[k] += l2 * Double(parameters[k]) }
        for r in 0..<n {
            for c in 0..<classes { result[features * classes + c] += Double(residual[r * classes + c]) / Double(n) }
        }
        return (loss, result)
    }

    // MARK: Features

    /// L2-normalised rows, then (x − mean) · inverseStd per dimension: [N, F].
    static func prepare(_ x: Tensor, mean: [Float], inverseStd: [Float]) -> Tensor {
        let unit = unitRows(x)
        let features = x.shape[1]
        for r in 0..<x.shape[0] {
            let row = unit.data + r * features
            for j in 0..<features { row[j] = (row[j] - mean[j]) * inverseStd[j] }
        }
        return unit
    }

    static func unitRows(_ x: Tensor) -> Tensor {
        let (n, features) = (x.shape[0], x.shape[1])
        let y = Tensor(zeros: x.shape)
        for r in 0..<n {
            let inverse = 1 / max(BLAS.norm(count: features, x.data + r * features), 1e-12)
            for j in 0..<features { y.data[r * features + j] = x.data[r * features + j] * inverse }
        }
        return y
    }

    /// Per-dimension mean and 1/std (a constant dimension gets 1/std = 0: it carries nothing).
    static func standardisation(_ x: Tensor) -> (mean: [Float], inverseStd: [Float]) {
        let (n, features) = (x.shape[0], x.shape[1])
        var sum = [Double](repeating: 0, count: features), squares = [Double](repeating: 0, count: features)
        for r in 0..<n {
            for j in 0..<features {
                let v = Double(x.data[r * features + j])
                sum[j] += v
                squares[j] += v * v
            }
        }
        let mean = sum.map { $0 / Double(n) }
        let std = (0..<features).map { max(squares[$0] / Double(n) - mean[$0] * mean[$0], 0).squareRoot() }
        return (mean.map(Float.init), std.map { $0 > 1e-8 ? Float(1 / $0) : 0 })
    }

    /// s = x W + b: [N, C], row-major.
    static func logits(_ x: Tensor, _ parameters: [Float], features: Int, classes: Int) -> [Float] {
        let n = x.shape[0]
        var s = [Float](repeating: 0, count: n * classes)
        for r in 0..<n { for c in 0..<classes { s[r * classes + c] = parameters[features * classes + c] } }
        parameters.withUnsafeBufferPointer { w in
            s.withUnsafeMutableBufferPointer { out in
                BLAS.gemm(m: n, n: classes, k: features, a: x.data, lda: features, b: w.baseAddress!, ldb: classes,
                          beta: 1, c: out.baseAddress!, ldc: classes)
            }
        }
        return s
    }

    // MARK: L-BFGS

    /// Minimises a smooth convex f from `start`; returns θ, the iterations taken, f(θ) and ‖∇f(θ)‖∞.
    static func minimise(_ f: ([Double]) -> (Double, [Double]), from start: [Double], maxIterations: Int,
                         tolerance: Double, memory: Int = 10) -> ([Double], Int, Double, Double) {
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        var theta = start
        var (value, gradient) = f(theta)
        var history: [(s: [Double], y: [Double], rho: Double)] = []
        var iteration = 0
        while iteration < maxIterations, gradient.map(abs).max()! > tolerance {
            iteration += 1
            // Two-loop recursion: direction = −H ∇f.
            var q = gradient
            var alphas: [Double] = []
            for pair in history.reversed() {
                let alpha = pair.rho * dot(pair.s, q)
                alphas.append(alpha)
                for k in q.indices { q[k] -= alpha * pair.y[k] }
            }
            if let last = history.last {
                let gamma = dot(last.s, last.y) / dot(last.y, last.y)
                for k in q.indices { q[k] *= gamma }
            }
            for (pair, alpha) in zip(history, alphas.reversed()) {
                let beta = pair.rho * dot(pair.y, q)
                for k in q.indices { q[k] += pair.s[k] * (alpha - beta) }
            }
            var direction = q.map { -$0 }
            var slope = dot(direction, gradient)
            if slope >= 0 {                                  // not a descent direction: restart
                history.removeAll()
                direction = gradient.map { -$0 }
                slope = dot(direction, gradient)
            }
            // Backtracking (Armijo): the first step of L-BFGS is 1; of steepest descent, 1/‖∇f‖.
            var step = history.isEmpty ? 1 / max(gradient.map(abs).max()!, 1e-12) : 1
            var next = theta, nextValue = value, nextGradient = gradient, accepted = false
            for _ in 0..<40 {
                next = zip(theta, direction).map { $0 + step * $1 }
                (nextValue, nextGradient) = f(next)
                if nextValue <= value + 1e-4 * step * slope { accepted = true; break }
                step /= 2
            }
            guard accepted else { break }                    // no decrease possible in Float: converged
            let s = zip(next, theta).map { $0 - $1 }, y = zip(nextGradient, gradient).map { $0 - $1 }
            let sy = dot(s, y)
            if sy > 1e-12 {
                history.append((s, y, 1 / sy))
                if history.count > memory { history.removeFirst() }
            }
            (theta, value, gradient) = (next, nextValue, nextGradient)
        }
        return (theta, iteration, value, gradient.map(abs).max()!)
    }
}
