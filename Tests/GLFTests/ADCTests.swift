// ADC (method.md §3): gradients against finite differences, the properties of the two KL terms,
// the compactness / separability mechanism, the anchor weights and the pixel prior.
import Foundation
import Testing
import GLF
import Neural

@Suite struct ADCTests {
    // MARK: Gradients

    /// DCM's gradient treats p as a constant (stop-gradient), so the finite differences hold p at
    /// its value for z0 (`target:` a frozen copy) while z moves.
    func dcmReport(sigma: Float, rho: Float, z: Tensor, prior: NeighbourhoodPrior?,
                   corrupt: (Tensor) -> Void = { _ in }) -> ADCGradientReport {
        let term = DistributionCalibrationLoss(sigma: sigma, rho: rho)
        let frozen = adcCopy(z)
        let analytic = Tensor(zeros: z.shape)
        _ = term.loss(z, prior: prior, gradientScale: 1, gradient: analytic)
        corrupt(analytic)
        let scratch = Tensor(zeros: z.shape)
        return adcGradientCheck(at: z, analytic: analytic) {
            term.loss($0, target: frozen, prior: prior, gradientScale: 0, gradient: scratch)
        }
    }

    func lpmReport(rho: Float, z: Tensor, prior: NeighbourhoodPrior, corrupt: (Tensor) -> Void = { _ in }) -> ADCGradientReport {
        let term = LocalPreservingLoss(rho: rho)
        let analytic = Tensor(zeros: z.shape)
        _ = term.loss(z, prior: prior, gradientScale: 1, gradient: analytic)
        corrupt(analytic)
        let scratch = Tensor(zeros: z.shape)
        return adcGradientCheck(at: z, analytic: analytic) { term.loss($0, prior: prior, gradientScale: 0, gradient: scratch) }
    }

    @Test(arguments: [(Float(1), Float(1)), (0.4, 1), (0.25, 3), (2, 0.5)])
    func dcmGradientMatchesFiniteDifferences(sigma: Float, rho: Float) {
        let z = adcUnitRows(7, 5, seed: 11)
        let prior = NeighbourhoodPrior(representation: adcUnitRows(7, 9, seed: 12), temperature: 0.3)
        for weights in [nil, prior] {
            let report = dcmReport(sigma: sigma, rho: rho, z: z, prior: weights)
            #expect(report.worstError < 1e-2, "σ \(sigma) ρ \(rho) weighted \(weights != nil): \(report)")
        }
        // d is computed from norms and the Gram matrix, so rows need not be unit.
        for i in 0..<z.count { z[i] *= 0.6 + 0.1 * Float(i % 7) }
        let report = dcmReport(sigma: sigma, rho: rho, z: z, prior: prior)
        #expect(report.worstError < 1e-2, "σ \(sigma) ρ \(rho) non-unit rows: \(report)")
    }

    @Test(arguments: [(Float(0.5), Float(1)), (0.1, 1), (2, 2.5), (0.5, 0.3)])
    func lpmGradientMatchesFiniteDifferences(temperature: Float, rho: Float) {
        let z = adcUnitRows(8, 4, seed: 21)
        let prior = NeighbourhoodPrior(representation: adcUnitRows(8, 6, seed: 22), temperature: temperature)
        let report = lpmReport(rho: rho, z: z, prior: prior)
        #expect(report.worstError < 1e-2, "τ_in \(temperature) ρ \(rho): \(report)")
    }

    @Test func wrongGradientsFailTheCheck() {
        let z = adcUnitRows(7, 5, seed: 31)
        let prior = NeighbourhoodPrior(representation: adcUnitRows(7, 6, seed: 32))
        // Half the gradient is what forgetting that d_ij also moves z_j roughly gives.
        let halved = { (g: Tensor) in for i in 0..<g.count { g[i] *= 0.5 } }
        let oneSignFlipped = { (g: Tensor) in g[3] = -g[3] + 0.3 * abs(g[3]) + 1e-3 }
        #expect(dcmReport(sigma: 0.5, rho: 1, z: z, prior: prior, corrupt: halved).worstError > 0.1)
        #expect(dcmReport(sigma: 0.5, rho: 1, z: z, prior: prior, corrupt: oneSignFlipped).worstError > 0.1)
        #expect(lpmReport(rho: 1, z: z, prior: prior, corrupt: halved).worstError > 0.1)
        #expect(lpmReport(rho: 1, z: z, prior: prior, corrupt: oneSignFlipped).worstError > 0.1)
    }

    @Test func gradientsAccumulateWithTheirScale() {
        let z = adcUnitRows(6, 4, seed: 41)
        let prior = NeighbourhoodPrior(representation: adcUnitRows(6, 5, seed: 42))
        let dcm = DistributionCalibrationLoss(sigma: 0.5), lpm = LocalPreservingLoss()
        let (gd, gl) = (Tensor(zeros: z.shape), Tensor(zeros: z.shape))
        let dcmValue = dcm.loss(z, prior: prior, gradientScale: 1, gradient: gd)
        let lpmValue = lpm.loss(z, prior: prior, gradientScale: 1, gradient: gl)

        let accumulated = Tensor(zeros: z.shape)
        accumulated.fill(1)
        _ = dcm.loss(z, prior: prior, gradientScale: 2, gradient: accumulated)
        for i in 0..<z.count { #expect(abs(accumulated[i] - (1 + 2 * gd[i])) < 1e-5) }

        // The combined pass equals ν·DCM + υ·LPM.
        let adc = AdaptiveDistributionCalibration(sigma: 0.5, dcmWeight: 0.3, lpmWeight: 2)
        let combined = Tensor(zeros: z.shape)
        let report = adc.loss(projections: z, prior: prior, gradientScale: 1.5, gradient: combined)
        #expect(abs(report.dcm - dcmValue) < 1e-6 && abs(report.lpm - lpmValue) < 1e-6)
        #expect(abs(report.weightedTotal - (0.3 * dcmValue + 2 * lpmValue)) < 1e-5)
        for i in 0..<z.count { #expect(abs(combined[i] - 1.5 * (0.3 * gd[i] + 2 * gl[i])) < 1e-5) }
    }

    // MARK: The KL terms

    @Test func termsAreNonNegative() {
        for seed in UInt64(0)..<6 {
            let z = adcUnitRows(10, 6, seed: 50 + seed)
            let prior = NeighbourhoodPrior(representation: adcUnitRows(10, 12, seed: 60 + seed), temperature: [0.1, 0.5, 3][Int(seed % 3)])
            let g = Tensor(zeros: z.shape)
            for (sigma, rho) in [(Float(0.2), Float(1)), (1, 1), (3, 0.5), (1, 4)] {
                let adc = AdaptiveDistributionCalibration(sigma: sigma, rho: rho)
                let report = adc.loss(projections: z, prior: prior, gradientScale: 0, gradient: g)
                #expect(report.dcm >= 0 && report.lpm >= 0, "seed \(seed) σ \(sigma) ρ \(rho): \(report)")
                #expect(report.dcm.isFinite && report.lpm.isFinite)
            }
        }
    }

    /// When all pairwise distances are equal, p, q and π are all uniform: both terms and their
    /// gradients vanish. (This tests KL = 0 at agreement only with uniform distributions.)
    @Test func bothTermsVanishOnARegularSimplex() {
        let z = adcCircle([0, 2 * .pi / 3, 4 * .pi / 3])
        let u = Tensor(shape: [3, 3], values: [1, 0, 0, 0, 1, 0, 0, 0, 1])   // equidistant inputs
        let adc = AdaptiveDistributionCalibration(sigma: 0.3)
        let g = Tensor(zeros: z.shape)
        let report = adc.loss(projections: z, prior: adc.prior(from: u), gradientScale: 1, gradient: g)
        #expect(abs(report.dcm) < 1e-6 && abs(report.lpm) < 1e-6, "\(report)")
        #expect(g.array.allSatisfy { abs($0) < 1e-5 }, "\(g.array)")
    }

    /// A non-uniform agreement for LPM: for three points on the circle choose input distances
    /// D_ij = τ_in·(ρ+1)/2·log(1 + d_ij/ρ) + c, which makes π_i = q_i in every row (the constant
    /// c cancels in each softmax), and realise them as a triangle in the plane.
    @Test func lpmVanishesWhenThePriorEqualsTheModel() {
        let (temperature, rho, shift): (Float, Float, Float) = (0.5, 1, 1)
        let z = adcCircle([0, 0.7, 2.0])
        func squared(_ i: Int, _ j: Int) -> Float {
            let (dx, dy) = (z[2 * i] - z[2 * j], z[2 * i + 1] - z[2 * j + 1])
            return dx * dx + dy * dy
        }
        func inputDistance(_ i: Int, _ j: Int) -> Float { temperature * (rho + 1) / 2 * log(1 + squared(i, j) / rho) + shift }
        let (d01, d02, d12) = (inputDistance(0, 1), inputDistance(0, 2), inputDistance(1, 2))
        let x = (d01 + d02 - d12) / (2 * d01.squareRoot())
        let u = Tensor(shape: [3, 2], values: [0, 0, d01.squareRoot(), 0, x, (d02 - x * x).squareRoot()])

        let prior = NeighbourhoodPrior(representation: u, temperature: temperature)
        let g = Tensor(zeros: z.shape)
        let lpm = LocalPreservingLoss(rho: rho).loss(z, prior: prior, gradientScale: 1, gradient: g)
        #expect(abs(lpm) < 1e-5, "LPM \(lpm)")
        #expect(g.array.allSatisfy { abs($0) < 1e-4 }, "\(g.array)")
        // The geometry is not trivial: DCM's sharper target still disagrees with q here.
        let dcm = DistributionCalibrationLoss(sigma: 0.3).loss(z, gradientScale: 0, gradient: g)
        #expect(dcm > 1e-2)
    }

    // MARK: Mechanism

    /// With a small σ one descent step on DCM (z ← normalise(z − η∇)) pulls the anchor's nearest
    /// neighbour in and pushes its farthest sample out. Points on the unit sphere: the anchor at the
    /// north pole with three neighbours around it (nearest: 1), a cluster of three in the south and,
    /// beyond it, the anchor's farthest sample (7). (The net motion of a pair comes from every row:
    /// a far sample inside a cluster that lies between it and the anchor can be pulled toward the
    /// anchor by its own neighbours, so the example keeps the farthest sample outside its cluster.)
    @Test(arguments: [Float(0.2), 0.3, 0.5])
    func oneDCMStepTightensNeighboursAndSeparatesFarSamples(sigma: Float) {
        let polar: [Float] = [0, 0.25, 0.4, 0.4, 2.1, 2.1, 2.1, 2.4]
        let azimuth: [Float] = [0, 0, 2.1, 4.2, 0, 2.1, 4.2, 1.0]
        let z = Tensor(shape: [8, 3], values: zip(polar, azimuth).flatMap { [sin($0) * cos($1), sin($0) * sin($1), cos($0)] })
        func squared(_ t: Tensor, _ i: Int, _ j: Int) -> Float {
            (0..<3).reduce(0) { $0 + (t[3 * i + $1] - t[3 * j + $1]) * (t[3 * i + $1] - t[3 * j + $1]) }
        }
        let distances = (1..<8).map { squared(z, 0, $0) }
        #expect(distances.firstIndex(of: distances.min()!)! + 1 == 1 && distances.firstIndex(of: distances.max()!)! + 1 == 7)

        let term = DistributionCalibrationLoss(sigma: sigma)
        let before = adcCopy(z)
        let g = Tensor(zeros: z.shape)
        let lossBefore = term.loss(z, gradientScale: 1, gradient: g)
        for i in 0..<z.count { z[i] -= 0.2 * g[i] }
        adcNormaliseRows(z)
        #expect(squared(z, 0, 1) < squared(before, 0, 1), "nearest: \(squared(before, 0, 1)) → \(squared(z, 0, 1))")
        #expect(squared(z, 0, 7) > squared(before, 0, 7), "farthest: \(squared(before, 0, 7)) → \(squared(z, 0, 7))")
        // The step descends the stop-gradient objective (p held at its value before the step).
        // With p recomputed the loss need not fall: the gradient deliberately ignores p's motion.
        #expect(term.loss(z, target: before, gradientScale: 0, gradient: g) < lossBefore)
    }

    // MARK: Anchor weights and the prior

    @Test func anchorWeightsHaveMeanOneAndFavourClusteredAnchors() {
        // Two tight pairs and one outlier far from both (its neighbourhood is flat).
        let u = Tensor(shape: [5, 2], values: [0, 0, 0.1, 0, 1, 0, 1.1, 0, 0.5, 1.5])
        let prior = NeighbourhoodPrior(representation: u, temperature: 0.5)
        let w = prior.anchorWeights
        #expect(abs(w.reduce(0, +) / 5 - 1) < 1e-5)
        #expect(prior.entropies[4] > prior.entropies[0])
        for clustered in 0..<4 { #expect(w[4] < w[clustered], "\(w)") }
        #expect(prior.entropies.allSatisfy { $0 >= 0 && $0 <= log(4) + 1e-5 })
    }

    @Test func pixelPriorPoolsAndStandardisesRows() {
        // Image 0: value = 10·cellY + cellX + 100·c on 2×2 cells of a 16×16 image; image 1: constant.
        let (side, size, channels) = (8, 16, 3)
        let images = Tensor(zeros: [2, size, size, channels])
        for y in 0..<size { for x in 0..<size { for c in 0..<channels {
            images[(y * size + x) * channels + c] = Float(10 * (y / 2) + x / 2 + 100 * c)
            images[size * size * channels + (y * size + x) * channels + c] = 7
        } } }
        let u = PixelPrior.representation(of: images, side: side)
        #expect(u.shape == [2, side * side * channels])
        var expected = (0..<side * side * channels).map { k -> Double in
            let (cell, c) = (k / channels, k % channels)
            return Double(10 * (cell / side) + cell % side + 100 * c)
        }
        let mean = expected.reduce(0, +) / Double(expected.count)
        let norm = expected.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }.squareRoot()
        expected = expected.map { ($0 - mean) / norm }
        let width = side * side * channels
        for k in 0..<width { #expect(abs(Double(u[k]) - expected[k]) < 1e-5) }
        for k in 0..<width { #expect(u[width + k] == 0) }   // a constant image has no pattern

        // Sizes that do not divide (or are smaller than) the grid still give finite unit rows.
        let odd = randomImages([3, 5, 13, 1], seed: 3)
        let v = PixelPrior.representation(of: odd)
        #expect(v.shape == [3, 64])
        for r in 0..<3 {
            let row = (0..<64).map { v[r * 64 + $0] }
            #expect(abs(row.reduce(0, +)) < 1e-4)
            #expect(abs(row.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
        }
    }

    func randomImages(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        let t = Tensor(zeros: shape)
        t.fillUniform(bound: 1, using: &rng)
        return t
    }

    // MARK: Edges

    @Test func aBatchOfOneAddsNothing() {
        let z = adcUnitRows(1, 4, seed: 71)
        let prior = NeighbourhoodPrior(representation: adcUnitRows(1, 3, seed: 72))
        let g = Tensor(zeros: z.shape)
        let report = AdaptiveDistributionCalibration().loss(projections: z, prior: prior, gradientScale: 1, gradient: g)
        #expect(report.dcm == 0 && report.lpm == 0 && prior.anchorWeights == [1])
        #expect(g.array.allSatisfy { $0 == 0 })
    }

    @Test func collapsedProjectionsReachTheUniformEntropy() {
        let z = Tensor(shape: [5, 3], values: Array(repeating: [0.6, 0.8, 0], count: 5).flatMap { $0 })
        let g = Tensor(zeros: z.shape)
        let report = AdaptiveDistributionCalibration().loss(projections: z, prior: nil, gradientScale: 1, gradient: g)
        #expect(abs(report.meanModelEntropy - log(4)) < 1e-5 && abs(report.meanTargetEntropy - log(4)) < 1e-5)
        #expect(report.lpm == 0 && report.meanPriorEntropy == 0)
    }

    @Test func badConstantsAreTypedErrors() throws {
        #expect(throws: Never.self) { try AdaptiveDistributionCalibration().validate() }
        do {
            try AdaptiveDistributionCalibration(sigma: 0).validate()
            Issue.record("σ = 0 was accepted")
        } catch { #expect(error.code == "adc.sigma") }
        #expect(throws: ADCConfigurationError.self) { try AdaptiveDistributionCalibration(inputTemperature: -1).validate() }
        #expect(throws: ADCConfigurationError.self) { try AdaptiveDistributionCalibration(lpmWeight: .nan).validate() }
    }
}

@Suite struct ADCConfigurationTests {
    @Test func decodesWithDefaultsAndRejectsBadConstants() throws {
        let decoded = try JSONDecoder().decode(AdaptiveDistributionCalibration.self, from: Data(#"{"sigma": 0.5, "lpmWeight": 2}"#.utf8))
        #expect(decoded == AdaptiveDistributionCalibration(sigma: 0.5, lpmWeight: 2))
        let roundTrip = try JSONDecoder().decode(AdaptiveDistributionCalibration.self, from: JSONEncoder().encode(decoded))
        #expect(roundTrip == decoded)
        #expect(throws: ADCConfigurationError.self) {
            try JSONDecoder().decode(AdaptiveDistributionCalibration.self, from: Data(#"{"rho": -1}"#.utf8))
        }
    }
}
