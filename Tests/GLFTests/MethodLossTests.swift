// The methods' loss terms: every gradient against finite differences, and the properties that
// define each method (method.md section 2).
import Foundation
import GLF
import GLFDTesting
import Neural
import Testing

private func random(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor { randomTensor(shape, seed: seed, std: std) }
private let tolerance: Float = 1e-2

private func zeros(like t: Tensor) -> Tensor { Tensor(zeros: t.shape) }

/// x ↦ a·x + b elementwise, into a new tensor.
private func affine(_ x: Tensor, _ a: Float, _ b: Float) -> Tensor {
    Tensor(shape: x.shape, values: x.array.map { a * $0 + b })
}

// MARK: - Gradients

@Suite struct MethodLossGradientTests {
    @Test func byolAligningGradient() {
        let (p, z) = (random([6, 5], seed: 1), random([6, 5], seed: 2))
        let term = BYOLAligning()
        let gp = zeros(like: p)
        _ = term.loss(prediction: p, target: z, gradientScale: 1, predictionGradient: gp)
        let report = GradientCheck().run([("p", p, gp)]) {
            term.loss(prediction: p, target: z, gradientScale: 0, predictionGradient: zeros(like: p))
        }
        #expect(report.worstError < tolerance, "\(report)")
    }

    @Test func barlowTwinsPartsGradients() {
        // Features on different scales and offsets, so the standardisation matters.
        let z1 = random([8, 5], seed: 3, std: 2), z2 = random([8, 5], seed: 4)
        for i in 0..<z2.count { z2[i] = z2[i] * Float(1 + i % 5) + 3 }
        let barlow = BarlowTwinsLoss()
        let cases: [(name: String, aligning: Float, constraining: Float)] = [("aligning", 1, 0), ("constraining", 0, 1), ("both", 0.7, 1.3)]
        for c in cases {
            let (g1, g2) = (zeros(like: z1), zeros(like: z2))
            _ = barlow.loss(z1, z2, aligningGradientScale: c.aligning, constrainingGradientScale: c.constraining, gradient1: g1, gradient2: g2)
            // ε = 1e-2: the value is computed in Float through a standardisation and an sgemm, and
            // its rounding (not the curvature) dominates the difference quotient at 1e-3.
            let report = GradientCheck(epsilon: 1e-2).run([("z1", z1, g1), ("z2", z2, g2)]) {
                let parts = barlow.loss(z1, z2, aligningGradientScale: 0, constrainingGradientScale: 0,
                                        gradient1: zeros(like: z1), gradient2: zeros(like: z2))
                return c.aligning * parts.aligning + c.constraining * parts.constraining
            }
            #expect(report.worstError < tolerance, "\(c.name): \(report)")
        }
    }

    @Test func barlowTwinsSeparateTermsMatchTheSharedComputation() {
        let z1 = random([8, 5], seed: 5), z2 = random([8, 5], seed: 6)
        let barlow = BarlowTwinsLoss()
        let (g1, g2, a1, a2, c1, c2) = (zeros(like: z1), zeros(like: z2), zeros(like: z1), zeros(like: z2), zeros(like: z1), zeros(like: z2))
        let parts = barlow.loss(z1, z2, aligningGradientScale: 1, constrainingGradientScale: 1, gradient1: g1, gradient2: g2)
        let aligning = BarlowTwinsAligning(barlow).loss(z1, z2, gradientScale: 1, gradient1: a1, gradient2: a2)
        let constraining = BarlowTwinsConstraining(barlow).loss(z1, z2, gradientScale: 1, gradient1: c1, gradient2: c2)
        #expect(parts == .init(aligning: aligning, constraining: constraining))
        for i in 0..<z1.count {
            #expect(abs(g1[i] - a1[i] - c1[i]) < 1e-5 && abs(g2[i] - a2[i] - c2[i]) < 1e-5)
        }
    }

    @Test func swavAligningGradientWithCodesHeldFixed() {
        let (s1, s2) = (random([6, 7], seed: 7, std: 0.5), random([6, 7], seed: 8, std: 0.5))
        let swav = SwAVAligning()
        let (q1, q2) = (swav.sinkhorn.codes(scores: s1), swav.sinkhorn.codes(scores: s2))
        let (g1, g2) = (zeros(like: s1), zeros(like: s2))
        _ = swav.loss(scores1: s1, scores2: s2, codes1: q1, codes2: q2, gradientScale: 1, gradient1: g1, gradient2: g2)
        let report = GradientCheck().run([("s1", s1, g1), ("s2", s2, g2)]) {
            swav.loss(scores1: s1, scores2: s2, codes1: q1, codes2: q2, gradientScale: 0,
                      gradient1: zeros(like: s1), gradient2: zeros(like: s2))
        }
        #expect(report.worstError < tolerance, "\(report)")
    }

    @Test func ntXentPartsGradients() {
        let (z1, z2) = (randomUnitRows([5, 4], seed: 9), randomUnitRows([5, 4], seed: 10))
        let ntXent = NTXentLoss(temperature: 0.5)
        let cases: [(name: String, aligning: Float, constraining: Float)] = [("aligning", 1, 0), ("constraining", 0, 1), ("both", 0.7, 1.3)]
        for c in cases {
            let (g1, g2) = (zeros(like: z1), zeros(like: z2))
            _ = ntXent.loss(z1, z2, aligningGradientScale: c.aligning, constrainingGradientScale: c.constraining, gradient1: g1, gradient2: g2)
            let report = GradientCheck().run([("z1", z1, g1), ("z2", z2, g2)]) {
                let parts = ntXent.loss(z1, z2, aligningGradientScale: 0, constrainingGradientScale: 0,
                                        gradient1: zeros(like: z1), gradient2: zeros(like: z2))
                return c.aligning * parts.aligning + c.constraining * parts.constraining
            }
            #expect(report.worstError < tolerance, "\(c.name): \(report)")
        }
        // The stand-alone parts agree with the shared computation.
        let (g1, g2, a1, a2, c1, c2) = (zeros(like: z1), zeros(like: z2), zeros(like: z1), zeros(like: z2), zeros(like: z1), zeros(like: z2))
        let parts = ntXent.loss(z1, z2, aligningGradientScale: 1, constrainingGradientScale: 1, gradient1: g1, gradient2: g2)
        let aligning = NTXentAligning(temperature: 0.5).loss(z1, z2, gradientScale: 1, gradient1: a1, gradient2: a2)
        let constraining = NTXentConstraining(temperature: 0.5).loss(z1, z2, gradientScale: 1, gradient1: c1, gradient2: c2)
        #expect(abs(parts.aligning - aligning) < 1e-5 && parts.constraining == constraining)
        for i in 0..<z1.count { #expect(abs(g1[i] - a1[i] - c1[i]) < 1e-5 && abs(g2[i] - a2[i] - c2[i]) < 1e-5) }
    }

    /// The checker must catch a plausible bug: BYOL's gradient without the cos·p̂ projection term.
    @Test func aWrongGradientFailsTheCheck() {
        let (p, z) = (random([6, 5], seed: 12), random([6, 5], seed: 13))
        let (rows, width) = (6, 5)
        let wrong = zeros(like: p)
        for b in 0..<rows {
            let (pNorm, zNorm) = (BLAS.norm(count: width, p.data + b * width), BLAS.norm(count: width, z.data + b * width))
            for j in 0..<width { wrong[b * width + j] = -2 / Float(rows) * z[b * width + j] / (zNorm * pNorm) }
        }
        let report = GradientCheck().run([("p", p, wrong)]) {
            BYOLAligning().loss(prediction: p, target: z, gradientScale: 0, predictionGradient: zeros(like: p))
        }
        #expect(report.worstError > 10 * tolerance, "\(report)")
    }

    /// Every term ADDS gradientScale · ∂L/∂x to what the gradient tensor already holds.
    @Test func gradientsAccumulateWithTheirScale() {
        let (a, b) = (randomUnitRows([4, 6], seed: 14), randomUnitRows([4, 6], seed: 15))
        let terms: [(String, (Float, Tensor, Tensor) -> Void)] = [
            ("byol", { s, g1, _ in _ = BYOLAligning().loss(prediction: a, target: b, gradientScale: s, predictionGradient: g1) }),
            ("barlow.aligning", { s, g1, g2 in _ = BarlowTwinsAligning().loss(a, b, gradientScale: s, gradient1: g1, gradient2: g2) }),
            ("barlow.constraining", { s, g1, g2 in _ = BarlowTwinsConstraining().loss(a, b, gradientScale: s, gradient1: g1, gradient2: g2) }),
            ("swav", { s, g1, g2 in _ = SwAVAligning().loss(scores1: a, scores2: b, gradientScale: s, gradient1: g1, gradient2: g2) }),
            ("ntxent.aligning", { s, g1, g2 in _ = NTXentAligning().loss(a, b, gradientScale: s, gradient1: g1, gradient2: g2) }),
            ("ntxent.constraining", { s, g1, g2 in _ = NTXentConstraining().loss(a, b, gradientScale: s, gradient1: g1, gradient2: g2) }),
        ]
        for (name, apply) in terms {
            let (unit1, unit2) = (zeros(like: a), zeros(like: b))
            apply(1, unit1, unit2)
            let (g1, g2) = (affine(unit1, 0, 0.25), affine(unit2, 0, -0.5))
            apply(-3, g1, g2)
            for i in 0..<a.count {
                #expect(abs(g1[i] - (0.25 - 3 * unit1[i])) < 1e-5, "\(name) gradient1[\(i)]")
                #expect(abs(g2[i] - (-0.5 - 3 * unit2[i])) < 1e-5, "\(name) gradient2[\(i)]")
            }
        }
    }
}

// MARK: - Properties

@Suite struct MethodLossPropertyTests {
    @Test func byolTwoOrderSumIsSymmetricAndEachOrderLiesInZeroToFour() {
        let (p1, p2) = (random([8, 6], seed: 20), random([8, 6], seed: 21))
        let (z1, z2) = (random([8, 6], seed: 22), random([8, 6], seed: 23))
        let byol = BYOLAligning()
        func order(_ p: Tensor, _ z: Tensor) -> Float { byol.loss(prediction: p, target: z, gradientScale: 0, predictionGradient: zeros(like: p)) }
        let sum = order(p1, z2) + order(p2, z1)
        let swapped = order(p2, z1) + order(p1, z2)
        #expect(abs(sum - swapped) < 1e-6)
        for value in [order(p1, z2), order(p2, z1)] { #expect(value >= 0 && value <= 4) }
        // The ends of the range: aligned (any positive scale) and opposite.
        #expect(abs(order(p1, affine(p1, 3, 0))) < 1e-5)
        #expect(abs(order(p1, affine(p1, -0.5, 0)) - 4) < 1e-5)
    }

    @Test func barlowTwinsIsInvariantToAnAffineMapPerFeature() {
        let (x, y) = (random([16, 6], seed: 24), random([16, 6], seed: 25))
        let barlow = BarlowTwinsLoss()
        func total(_ a: Tensor, _ b: Tensor) -> Float {
            barlow.loss(a, b, aligningGradientScale: 0, constrainingGradientScale: 0, gradient1: zeros(like: a), gradient2: zeros(like: b)).total
        }
        let reference = total(x, y)
        #expect(abs(total(affine(x, 2, 4), y) - reference) < 1e-4 * reference)
        #expect(abs(total(x, affine(y, 0.5, -3)) - reference) < 1e-4 * reference)
        // method.md's form: loss(x, x) == loss(x, 2x + 4), and identical views have no aligning loss.
        let same = barlow.loss(x, x, aligningGradientScale: 0, constrainingGradientScale: 0, gradient1: zeros(like: x), gradient2: zeros(like: x))
        #expect(abs(total(x, affine(x, 2, 4)) - same.total) < 1e-4 * same.total)
        #expect(same.aligning < 1e-8)
        // A different map per feature (scale and shift by column) changes nothing either.
        let perFeature = Tensor(zeros: x.shape)
        for r in 0..<16 { for j in 0..<6 { perFeature[r * 6 + j] = x[r * 6 + j] * Float(j + 1) - Float(j) } }
        #expect(abs(total(perFeature, y) - reference) < 1e-4 * reference)
    }

    @Test func sinkhornMatchesTheReferenceOnASmallExample() {
        // Expected values from the reference algorithm (solo-learn's SinkhornKnopp, ε 0.05, 3
        // iterations) run in float64 NumPy on the same scores.
        let scores = Tensor(shape: [3, 2], values: [0.1, -0.2, 0.05, 0.3, -0.1, 0.0])
        let expected: [Float] = [9.9979008e-01, 2.0992288e-04, 7.3683326e-02, 9.2631667e-01, 6.1504296e-01, 3.8495704e-01]
        let codes = SinkhornKnopp().codes(scores: scores)
        for i in 0..<6 { #expect(abs(codes[i] - expected[i]) < 1e-6, "code \(i): \(codes[i]) vs \(expected[i])") }
    }

    @Test func sinkhornCodesSumToOnePerSampleAndSpreadOverPrototypes() {
        // Cosine scores of unit embeddings against unit prototypes, as SwAV produces them.
        let (batch, k, d) = (64, 8, 128)
        let z = randomUnitRows([batch, d], seed: 26), prototypes = randomUnitRows([k, d], seed: 27)
        let scores = Tensor(zeros: [batch, k])
        BLAS.gemm(transposeB: true, m: batch, n: k, k: d, a: z.data, lda: d, b: prototypes.data, ldb: d, c: scores.data, ldc: k)
        func largestImbalance(_ codes: Tensor) -> Float {
            let share = Float(batch) / Float(k)
            return (0..<k).map { c in abs((0..<batch).reduce(Float(0)) { $0 + codes[$1 * k + c] } - share) / share }.max()!
        }

        let codes = SinkhornKnopp().codes(scores: scores)
        #expect(codes.shape == [batch, k])
        for i in 0..<codes.count { #expect(codes[i] >= 0) }
        // The last step normalises the samples, so each code sums to exactly 1 (after the ×N)...
        for b in 0..<batch {
            let row = (0..<k).reduce(Float(0)) { $0 + codes[b * k + $1] }
            #expect(abs(row - 1) < 1e-5, "sample \(b) sums to \(row)")
        }
        // ...while each prototype holds about B/K: near after 3 iterations (in NumPy, ≤ 10% on such
        // scores; more spread scores need more iterations), exact in the limit.
        let softmax = Tensor(zeros: [batch, k])
        for b in 0..<batch {
            let sum = (0..<k).reduce(Float(0)) { $0 + exp(scores[b * k + $1] / 0.05) }
            for c in 0..<k { softmax[b * k + c] = exp(scores[b * k + c] / 0.05) / sum }
        }
        let threeIterations = largestImbalance(codes)
        #expect(threeIterations < 0.15, "largest prototype imbalance \(threeIterations)")
        #expect(threeIterations < largestImbalance(softmax) / 2, "softmax alone: \(largestImbalance(softmax))")
        #expect(largestImbalance(SinkhornKnopp(iterations: 30).codes(scores: scores)) < 1e-3)
    }

    @Test func sinkhornWithAQueueComputesOverAllRowsAndReturnsTheBatchRows() {
        let (batch, queued, k) = (5, 7, 4)
        let all = random([batch + queued, k], seed: 28, std: 0.3)
        let scores = Tensor(shape: [batch, k], values: Array(all.array[0..<(batch * k)]))
        let queue = Tensor(shape: [queued, k], values: Array(all.array[(batch * k)...]))
        let sinkhorn = SinkhornKnopp()
        let withQueue = sinkhorn.codes(scores: scores, queue: queue)
        let overAll = sinkhorn.codes(scores: all)
        #expect(withQueue.shape == [batch, k])
        for i in 0..<(batch * k) { #expect(abs(withQueue[i] - overAll[i]) < 1e-6) }
        #expect(zip(withQueue.array, sinkhorn.codes(scores: scores).array).contains { abs($0 - $1) > 1e-3 })
    }

    @Test func sinkhornStaysFiniteOnExtremeScores() {
        let scores = random([6, 5], seed: 29, std: 50)
        let codes = SinkhornKnopp().codes(scores: scores)
        for b in 0..<6 {
            let row = (0..<5).reduce(Float(0)) { $0 + codes[b * 5 + $1] }
            #expect(row.isFinite && abs(row - 1) < 1e-5)
        }
    }

    @Test func swavCollapsedAssignmentGivesLogK() {
        let (batch, k) = (6, 10)
        let flat = Tensor(zeros: [batch, k])
        let swav = SwAVAligning()
        let codes = swav.sinkhorn.codes(scores: flat)
        for i in 0..<codes.count { #expect(abs(codes[i] - 1 / Float(k)) < 1e-6) }
        let value = swav.loss(scores1: flat, scores2: flat, gradientScale: 0, gradient1: zeros(like: flat), gradient2: zeros(like: flat))
        #expect(abs(value - log(Float(k))) < 1e-5)
        // Codes that are one-hot and predicted by matching sharp scores give a far smaller loss.
        let sharp = Tensor(zeros: [batch, k])
        for b in 0..<batch { sharp[b * k + b % k] = 1 }
        let predicted = swav.loss(scores1: sharp, scores2: sharp, codes1: sharp, codes2: sharp,
                                  gradientScale: 0, gradient1: zeros(like: flat), gradient2: zeros(like: flat))
        #expect(predicted < 0.01)
    }

    @Test func ntXentMatchesTheTextbookFormula() {
        // Hand-checkable: two orthogonal samples, each view identical. For every anchor the
        // positive has similarity 1 and the two others 0: L = −1/τ + ln(e^{1/τ} + 2).
        let basis = Tensor(shape: [2, 2], values: [1, 0, 0, 1])
        let tau: Float = 0.5
        let parts = NTXentLoss(temperature: tau).loss(basis, basis, aligningGradientScale: 0, constrainingGradientScale: 0,
                                                      gradient1: zeros(like: basis), gradient2: zeros(like: basis))
        #expect(abs(parts.aligning - (-2)) < 1e-6)
        #expect(abs(parts.constraining - log(exp(2) + 2)) < 1e-5)
        #expect(abs(parts.total - 0.239_545) < 1e-5)

        // Random unit rows against a direct Double evaluation of −log(e^{s_ii'/τ} / Σ_{k≠i} e^{s_ik/τ}).
        let (batch, d) = (4, 3)
        let (z1, z2) = (randomUnitRows([batch, d], seed: 30), randomUnitRows([batch, d], seed: 31))
        let u = z1.array + z2.array
        func sim(_ i: Int, _ j: Int) -> Double { (0..<d).reduce(0.0) { $0 + Double(u[i * d + $1]) * Double(u[j * d + $1]) } / Double(tau) }
        var textbook = 0.0
        for i in 0..<(2 * batch) {
            let denominator = (0..<(2 * batch)).filter { $0 != i }.reduce(0.0) { $0 + exp(sim(i, $1)) }
            textbook -= log(exp(sim(i, (i + batch) % (2 * batch))) / denominator)
        }
        textbook /= Double(2 * batch)
        let total = NTXentLoss(temperature: tau).loss(z1, z2, aligningGradientScale: 0, constrainingGradientScale: 0,
                                                      gradient1: zeros(like: z1), gradient2: zeros(like: z2)).total
        #expect(abs(Double(total) - textbook) < 1e-5)
    }

    @Test func ntXentIsMinimalWhenViewsCoincideAndOthersAreSpread() {
        // B points at the vertices of a regular simplex (pairwise cosine −1/(B−1)), both views equal.
        let batch = 5
        let simplex = Tensor(zeros: [batch, batch])
        for i in 0..<batch { for j in 0..<batch { simplex[i * batch + j] = (i == j ? 1 : 0) - 1 / Float(batch) } }
        for i in 0..<batch {
            let norm = BLAS.norm(count: batch, simplex.data + i * batch)
            for j in 0..<batch { simplex[i * batch + j] /= norm }
        }
        let ntXent = NTXentLoss(temperature: 0.2)
        func total(_ a: Tensor, _ b: Tensor) -> Float {
            ntXent.loss(a, b, aligningGradientScale: 0, constrainingGradientScale: 0, gradient1: zeros(like: a), gradient2: zeros(like: b)).total
        }
        func normalised(_ t: Tensor) -> Tensor {
            let out = Tensor(shape: t.shape, values: t.array)
            for r in 0..<t.shape[0] {
                let norm = BLAS.norm(count: t.shape[1], out.data + r * t.shape[1])
                for j in 0..<t.shape[1] { out[r * t.shape[1] + j] /= norm }
            }
            return out
        }
        let best = total(simplex, simplex)
        for seed in UInt64(40)..<UInt64(50) {
            let (n1, n2) = (random([batch, batch], seed: seed, std: 0.1), random([batch, batch], seed: seed + 100, std: 0.1))
            let (moved1, moved2) = (Tensor(zeros: simplex.shape), Tensor(zeros: simplex.shape))
            for i in 0..<simplex.count { moved1[i] = simplex[i] + n1[i]; moved2[i] = simplex[i] + n2[i] }
            #expect(best < total(normalised(moved1), normalised(moved2)), "perturbation \(seed)")
        }
        // Collapsed (every sample the same point) and mismatched views (positives swapped) are worse.
        let collapsed = Tensor(shape: simplex.shape, values: (0..<simplex.count).map { $0 % batch == 0 ? 1 : 0 })
        #expect(best < total(collapsed, collapsed))
        let shifted = Tensor(shape: simplex.shape, values: Array(simplex.array[batch...] + simplex.array[..<batch]))
        #expect(best < total(simplex, shifted))
    }
}
