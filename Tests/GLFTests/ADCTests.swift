// ADC (method.md §3): gradients against finite differences, the properties of the two KL terms,
// the compactness / separability mechanism, the anchor weights and the pixel prior.
import Foundation
import GLF
import GLFDTesting
import Neural
import Testing

/// The first version's ADC with a given σ and ρ (fixed bandwidth, unit t-scale, weights on both).
func fixedADC(sigma: Float = 1, rho: Float = 1) -> AdaptiveDistributionCalibration {
    var c = AdaptiveDistributionCalibration.firstVersion
    c.sigma = sigma
    c.rho = rho
    return c
}

@Suite struct ADCTests {
    // MARK: Gradients

    /// DCM's gradient treats p as a constant (stop-gradient), so the finite differences hold p at
    /// its value for z0 (`target:` a frozen copy) while z moves.
    func dcmReport(sigma: Float, rho: Float, z: Tensor, prior: NeighbourhoodPrior?,
                   corrupt: (Tensor) -> Void = { _ in }) -> GradientReport {
        dcmReport(fixedADC(sigma: sigma, rho: rho), z: z, prior: prior, corrupt: corrupt)
    }

    func dcmReport(_ settings: AdaptiveDistributionCalibration, z: Tensor, prior: NeighbourhoodPrior?,
                   corrupt: (Tensor) -> Void = { _ in }) -> GradientReport {
        let term = DistributionCalibrationLoss(settings)
        let frozen = adcCopy(z)
        let analytic = Tensor(zeros: z.shape)
        _ = term.loss(z, prior: prior, gradientScale: 1, gradient: analytic)
        corrupt(analytic)
        let scratch = Tensor(zeros: z.shape)
        return GradientCheck(samplesPerTensor: .max).run([("z", z, analytic)]) {
            term.loss(z, target: frozen, prior: prior, gradientScale: 0, gradient: scratch)
        }
    }

    func lpmReport(rho: Float, z: Tensor, prior: NeighbourhoodPrior, corrupt: (Tensor) -> Void = { _ in }) -> GradientReport {
        lpmReport(fixedADC(rho: rho), z: z, prior: prior, corrupt: corrupt)
    }

    /// A tied t-scale follows σ_i, which the stop-gradient holds fixed: the finite differences
    /// compute σ_i from a frozen copy of z (`target:`).
    func lpmReport(_ settings: AdaptiveDistributionCalibration, z: Tensor, prior: NeighbourhoodPrior,
                   corrupt: (Tensor) -> Void = { _ in }) -> GradientReport {
        let term = LocalPreservingLoss(settings)
        let frozen = adcCopy(z)
        let analytic = Tensor(zeros: z.shape)
        _ = term.loss(z, prior: prior, gradientScale: 1, gradient: analytic)
        corrupt(analytic)
        let scratch = Tensor(zeros: z.shape)
        return GradientCheck(samplesPerTensor: .max).run([("z", z, analytic)]) {
            term.loss(z, target: frozen, prior: prior, gradientScale: 0, gradient: scratch)
        }
    }

    @Test(arguments: [(Float(1), Float(1)), (0.4, 1), (0.25, 3), (2, 0.5)])
    func dcmGradientMatchesFiniteDifferences(sigma: Float, rho: Float) {
        let z = randomUnitRows([7, 5], seed: 11)
        let prior = NeighbourhoodPrior(representation: randomUnitRows([7, 9], seed: 12), temperature: 0.3)
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
        let z = randomUnitRows([8, 4], seed: 21)
        let prior = NeighbourhoodPrior(representation: randomUnitRows([8, 6], seed: 22), temperature: temperature)
        let report = lpmReport(rho: rho, z: z, prior: prior)
        #expect(report.worstError < 1e-2, "τ_in \(temperature) ρ \(rho): \(report)")
    }

    /// The revised forms (method.md §3): σ_i per anchor (perplexity or distance scale), the t's
    /// scale tied to it, the weights on either term; σ_i held fixed as the stop-gradient makes it.
    static let revisedSettings: [AdaptiveDistributionCalibration] = [
        AdaptiveDistributionCalibration(perplexity: 3, rho: 3),
        AdaptiveDistributionCalibration(perplexity: 4.5, rho: 2.5, entropyWeights: .both),
        AdaptiveDistributionCalibration(bandwidth: .distanceScale, distanceScale: 0.5, rho: 6, entropyWeights: .lpm),
        AdaptiveDistributionCalibration(perplexity: 2, rho: 1, tiedScale: false, entropyWeights: .none),
    ]

    @Test(arguments: revisedSettings)
    func revisedDCMGradientMatchesFiniteDifferences(settings: AdaptiveDistributionCalibration) {
        let z = randomUnitRows([7, 5], seed: 13)
        let prior = NeighbourhoodPrior(representation: randomUnitRows([7, 9], seed: 14), temperature: 0.3)
        for weights in [nil, prior] {
            let report = dcmReport(settings, z: z, prior: weights)
            #expect(report.worstError < 1e-2, "\(settings) weighted \(weights != nil): \(report)")
        }
    }

    @Test(arguments: revisedSettings)
    func revisedLPMGradientMatchesFiniteDifferences(settings: AdaptiveDistributionCalibration) {
        let z = randomUnitRows([8, 4], seed: 23)
        let prior = NeighbourhoodPrior(representation: randomUnitRows([8, 6], seed: 24), temperature: 0.4)
        for direction in LPMDirection.allCases {
            var s = settings
            s.lpmDirection = direction
            let report = lpmReport(s, z: z, prior: prior)
            #expect(report.worstError < 1e-2, "\(s): \(report)")
        }
    }

    @Test func wrongRevisedGradientsFailTheCheck() {
        let z = randomUnitRows([7, 5], seed: 33)
        let prior = NeighbourhoodPrior(representation: randomUnitRows([7, 6], seed: 34))
        let halved = { (g: Tensor) in for i in 0..<g.count { g[i] *= 0.5 } }
        let settings = AdaptiveDistributionCalibration(perplexity: 3, lpmDirection: .modelFirst)
        #expect(dcmReport(settings, z: z, prior: prior, corrupt: halved).worstError > 0.1)
        #expect(lpmReport(settings, z: z, prior: prior, corrupt: halved).worstError > 0.1)
    }

    // MARK: The bandwidth

    /// Squared distances of unit rows from an anchor, as ADC computes them.
    func distances(_ z: Tensor, anchor i: Int) -> [Double] {
        let d = z.lastDimension
        return (0..<z.rows).map { j in (0..<d).reduce(0.0) { $0 + Double((z[i * d + $1] - z[j * d + $1]) * (z[i * d + $1] - z[j * d + $1])) } }
    }

    @Test(arguments: [Float(2), 5, 30, 100])
    func perplexityCalibrationReachesItsTarget(perplexity: Float) {
        // A batch like the trainer's: 256 unit rows in 3 loose clusters of dimension 64.
        let z = randomUnitRows([256, 64], seed: 81)
        for r in 0..<256 { z[r * 64 + r % 3] += 1.5 }
        normaliseRows(z)
        let target = log(Double(perplexity))
        for anchor in stride(from: 0, to: 256, by: 17) {
            let (beta, entropy) = PerplexityCalibration.precision(squaredDistances: distances(z, anchor: anchor), anchor: anchor,
                                                                  targetEntropy: target)
            #expect(beta.isFinite && beta > 0)
            #expect(abs(entropy - target) < 1e-3, "anchor \(anchor): H \(entropy) for target \(target)")
        }
    }

    @Test func perplexityCalibrationOnDegenerateBatches() {
        // Duplicates: the anchor has 3 exact copies, so H ≥ log 3; a target above that is reached.
        let z = randomUnitRows([20, 8], seed: 91)
        for copy in 1...3 { for k in 0..<8 { z[copy * 8 + k] = z[k] } }
        let d = distances(z, anchor: 0)
        let reached = PerplexityCalibration.precision(squaredDistances: d, anchor: 0, targetEntropy: log(5))
        #expect(abs(reached.entropy - log(5)) < 1e-3 && reached.precision.isFinite)
        // Below log 3 the nearest reachable entropy is log 3 (all mass on the copies), never NaN.
        let floor = PerplexityCalibration.precision(squaredDistances: d, anchor: 0, targetEntropy: log(1.5))
        #expect(abs(floor.entropy - log(3)) < 1e-3 && floor.precision.isFinite)
        // A constant batch: every distance is 0, p is uniform whatever σ: H = log(B − 1), β = 0.
        let constant = PerplexityCalibration.precision(squaredDistances: [Double](repeating: 0, count: 12), anchor: 4,
                                                       targetEntropy: log(3))
        #expect(constant.precision == 0 && abs(constant.entropy - log(11)) < 1e-9)
        // A target above log(B − 1): uniform.
        let wide = PerplexityCalibration.precision(squaredDistances: d, anchor: 0, targetEntropy: log(50))
        #expect(wide.precision == 0 && abs(wide.entropy - log(19)) < 1e-9)
        // Two rows: one neighbour, entropy 0.
        #expect(PerplexityCalibration.precision(squaredDistances: [0, 2], anchor: 0, targetEntropy: log(30)).entropy == 0)

        // Through the loss: no NaN on duplicates, a constant batch, or a single pair.
        for batch in [z, Tensor(shape: [6, 2], values: Array(repeating: [0.6, 0.8], count: 6).flatMap { $0 }), randomUnitRows([2, 3], seed: 1)] {
            let g = Tensor(zeros: batch.shape)
            let prior = NeighbourhoodPrior(representation: adcCopy(batch))
            for settings in [AdaptiveDistributionCalibration(perplexity: 2), AdaptiveDistributionCalibration(bandwidth: .distanceScale)] {
                let report = settings.loss(projections: batch, prior: prior, gradientScale: 1, gradient: g)
                #expect(report.dcm.isFinite && report.lpm.isFinite && report.meanBandwidth.isFinite)
                #expect(g.array.allSatisfy { $0.isFinite })
            }
        }
    }

    /// At σ = 1 on unit vectors DCM is ≈ 0 (the first version's flaw); a calibrated σ_i makes it
    /// a visible term on the same projections.
    @Test func calibratedBandwidthWakesDCM() {
        let z = randomUnitRows([256, 32], seed: 95)
        for r in 0..<256 { z[r * 32 + r % 8] += 2 }
        normaliseRows(z)
        let g = Tensor(zeros: z.shape)
        let old = fixedADC().loss(projections: z, prior: nil, gradientScale: 0, gradient: g)
        let new = AdaptiveDistributionCalibration().loss(projections: z, prior: nil, gradientScale: 0, gradient: g)
        #expect(old.dcm < 0.01, "σ = 1: \(old.dcm)")
        #expect(new.dcm > 10 * old.dcm && new.dcm > 0.05, "perplexity 30: \(new.dcm) against \(old.dcm)")
        #expect(abs(Double(new.meanTargetEntropy) - log(30)) < 1e-3)
    }

    @Test func entropyWeightsGoWhereTheyAreAsked() {
        let z = randomUnitRows([9, 5], seed: 97)
        let prior = NeighbourhoodPrior(representation: randomUnitRows([9, 7], seed: 98), temperature: 0.2)
        #expect(Set(prior.anchorWeights).count > 1)
        let g = Tensor(zeros: z.shape)
        func terms(_ weights: ADCEntropyWeighting, prior: NeighbourhoodPrior?) -> ADCReport {
            AdaptiveDistributionCalibration(perplexity: 3, entropyWeights: weights)
                .loss(projections: z, prior: prior, gradientScale: 0, gradient: g)
        }
        let unweighted = terms(.none, prior: prior), dcmOnly = terms(.dcm, prior: prior)
        let lpmOnly = terms(.lpm, prior: prior), both = terms(.both, prior: prior)
        #expect(unweighted.dcm == terms(.none, prior: nil).dcm)
        #expect(dcmOnly.dcm == both.dcm && dcmOnly.dcm != unweighted.dcm && dcmOnly.lpm == unweighted.lpm)
        #expect(lpmOnly.lpm == both.lpm && lpmOnly.lpm != unweighted.lpm && lpmOnly.dcm == unweighted.dcm)
    }

    @Test func wrongGradientsFailTheCheck() {
        let z = randomUnitRows([7, 5], seed: 31)
        let prior = NeighbourhoodPrior(representation: randomUnitRows([7, 6], seed: 32))
        // Half the gradient is what forgetting that d_ij also moves z_j roughly gives.
        let halved = { (g: Tensor) in for i in 0..<g.count { g[i] *= 0.5 } }
        let oneSignFlipped = { (g: Tensor) in g[3] = -g[3] + 0.3 * abs(g[3]) + 1e-3 }
        #expect(dcmReport(sigma: 0.5, rho: 1, z: z, prior: prior, corrupt: halved).worstError > 0.1)
        #expect(dcmReport(sigma: 0.5, rho: 1, z: z, prior: prior, corrupt: oneSignFlipped).worstError > 0.1)
        #expect(lpmReport(rho: 1, z: z, prior: prior, corrupt: halved).worstError > 0.1)
        #expect(lpmReport(rho: 1, z: z, prior: prior, corrupt: oneSignFlipped).worstError > 0.1)
    }

    @Test func gradientsAccumulateWithTheirScale() {
        let z = randomUnitRows([6, 4], seed: 41)
        let prior = NeighbourhoodPrior(representation: randomUnitRows([6, 5], seed: 42))
        let dcm = DistributionCalibrationLoss(fixedADC(sigma: 0.5)), lpm = LocalPreservingLoss(fixedADC())
        let (gd, gl) = (Tensor(zeros: z.shape), Tensor(zeros: z.shape))
        let dcmValue = dcm.loss(z, prior: prior, gradientScale: 1, gradient: gd)
        let lpmValue = lpm.loss(z, prior: prior, gradientScale: 1, gradient: gl)

        let accumulated = Tensor(zeros: z.shape)
        accumulated.fill(1)
        _ = dcm.loss(z, prior: prior, gradientScale: 2, gradient: accumulated)
        for i in 0..<z.count { #expect(abs(accumulated[i] - (1 + 2 * gd[i])) < 1e-5) }

        // The combined pass equals ν·DCM + υ·LPM.
        var adc = fixedADC(sigma: 0.5)
        (adc.dcmWeight, adc.lpmWeight) = (0.3, 2)
        let combined = Tensor(zeros: z.shape)
        let report = adc.loss(projections: z, prior: prior, gradientScale: 1.5, gradient: combined)
        #expect(abs(report.dcm - dcmValue) < 1e-6 && abs(report.lpm - lpmValue) < 1e-6)
        #expect(abs(report.weightedTotal - (0.3 * dcmValue + 2 * lpmValue)) < 1e-5)
        for i in 0..<z.count { #expect(abs(combined[i] - 1.5 * (0.3 * gd[i] + 2 * gl[i])) < 1e-5) }
    }

    // MARK: The KL terms

    @Test func termsAreNonNegative() {
        for seed in UInt64(0)..<6 {
            let z = randomUnitRows([10, 6], seed: 50 + seed)
            let prior = NeighbourhoodPrior(representation: randomUnitRows([10, 12], seed: 60 + seed), temperature: [0.1, 0.5, 3][Int(seed % 3)])
            let g = Tensor(zeros: z.shape)
            var settings = [(Float(0.2), Float(1)), (1, 1), (3, 0.5), (1, 4)].map { fixedADC(sigma: $0.0, rho: $0.1) }
            settings += Self.revisedSettings + [AdaptiveDistributionCalibration(lpmDirection: .modelFirst)]
            for adc in settings {
                let report = adc.loss(projections: z, prior: prior, gradientScale: 0, gradient: g)
                #expect(report.dcm >= 0 && report.lpm >= 0, "seed \(seed) \(adc): \(report)")
                #expect(report.dcm.isFinite && report.lpm.isFinite)
            }
        }
    }

    /// When all pairwise distances are equal, p, q and π are all uniform: both terms and their
    /// gradients vanish. (This tests KL = 0 at agreement only with uniform distributions.)
    @Test func bothTermsVanishOnARegularSimplex() {
        let z = adcCircle([0, 2 * .pi / 3, 4 * .pi / 3])
        let u = Tensor(shape: [3, 3], values: [1, 0, 0, 0, 1, 0, 0, 0, 1])   // equidistant inputs
        let g = Tensor(zeros: z.shape)
        for adc in [fixedADC(sigma: 0.3), AdaptiveDistributionCalibration(),
                    AdaptiveDistributionCalibration(bandwidth: .distanceScale, lpmDirection: .modelFirst)] {
            g.fill(0)
            let report = adc.loss(projections: z, prior: adc.prior(from: u), gradientScale: 1, gradient: g)
            #expect(abs(report.dcm) < 1e-6 && abs(report.lpm) < 1e-6, "\(report)")
            #expect(g.array.allSatisfy { abs($0) < 1e-5 }, "\(g.array)")
        }
    }

    @Test func bothTermsVanishOnARegularSimplexAtTheFirstVersion() {
        let z = adcCircle([0, 2 * .pi / 3, 4 * .pi / 3])
        let u = Tensor(shape: [3, 3], values: [1, 0, 0, 0, 1, 0, 0, 0, 1])
        let adc = fixedADC(sigma: 0.3)
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
        // Both directions of the divergence vanish where π = q.
        for direction in LPMDirection.allCases {
            var settings = fixedADC(rho: rho)
            settings.lpmDirection = direction
            g.fill(0)
            let lpm = LocalPreservingLoss(settings).loss(z, prior: prior, gradientScale: 1, gradient: g)
            #expect(abs(lpm) < 1e-5, "LPM \(direction) \(lpm)")
            #expect(g.array.allSatisfy { abs($0) < 1e-4 }, "\(direction) \(g.array)")
        }
        // The geometry is not trivial: DCM's sharper target still disagrees with q here.
        let dcm = DistributionCalibrationLoss(fixedADC(sigma: 0.3)).loss(z, gradientScale: 0, gradient: g)
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

        let term = DistributionCalibrationLoss(fixedADC(sigma: sigma))
        let before = adcCopy(z)
        let g = Tensor(zeros: z.shape)
        let lossBefore = term.loss(z, gradientScale: 1, gradient: g)
        for i in 0..<z.count { z[i] -= 0.2 * g[i] }
        normaliseRows(z)
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
        let z = randomUnitRows([1, 4], seed: 71)
        let prior = NeighbourhoodPrior(representation: randomUnitRows([1, 3], seed: 72))
        let g = Tensor(zeros: z.shape)
        let report = AdaptiveDistributionCalibration().loss(projections: z, prior: prior, gradientScale: 1, gradient: g)
        #expect(report.dcm == 0 && report.lpm == 0 && prior.anchorWeights == [1])
        #expect(g.array.allSatisfy { $0 == 0 })
    }

    @Test func collapsedProjectionsReachTheUniformEntropy() {
        let z = Tensor(shape: [5, 3], values: Array(repeating: [0.6, 0.8, 0], count: 5).flatMap { $0 })
        let g = Tensor(zeros: z.shape)
        for adc in [AdaptiveDistributionCalibration(), fixedADC()] {
            let report = adc.loss(projections: z, prior: nil, gradientScale: 1, gradient: g)
            #expect(abs(report.meanModelEntropy - log(4)) < 1e-5 && abs(report.meanTargetEntropy - log(4)) < 1e-5)
            #expect(report.lpm == 0 && report.meanPriorEntropy == 0)
            #expect(report.dcm.isFinite && g.array.allSatisfy { $0.isFinite && abs($0) < 1e-6 })
        }
    }

    @Test func badConstantsAreTypedErrors() throws {
        #expect(throws: Never.self) { try AdaptiveDistributionCalibration().validate() }
        do {
            try AdaptiveDistributionCalibration(sigma: 0).validate()
            Issue.record("σ = 0 was accepted")
        } catch { #expect(error.code == "adc.sigma") }
        #expect(throws: ADCConfigurationError.self) { try AdaptiveDistributionCalibration(inputTemperature: -1).validate() }
        #expect(throws: ADCConfigurationError.self) { try AdaptiveDistributionCalibration(lpmWeight: .nan).validate() }
        #expect(throws: ADCConfigurationError.self) { try AdaptiveDistributionCalibration(perplexity: 1).validate() }
        // A tied scale needs ρ > 2; an untied one takes any ρ > 0.
        #expect(throws: ADCConfigurationError.self) { try AdaptiveDistributionCalibration(rho: 2).validate() }
        #expect(throws: Never.self) { try AdaptiveDistributionCalibration(rho: 1, tiedScale: false).validate() }
        // A perplexity the batch cannot reach would silence ADC.
        #expect(throws: ADCConfigurationError.self) { try AdaptiveDistributionCalibration(perplexity: 30).validate(batch: 16) }
        #expect(throws: Never.self) { try AdaptiveDistributionCalibration(perplexity: 30).validate(batch: 256) }
        #expect(throws: Never.self) { try AdaptiveDistributionCalibration(bandwidth: .fixed, perplexity: 30).validate(batch: 16) }
    }
}

@Suite struct ADCConfigurationTests {
    @Test func decodesWithDefaultsAndRejectsBadConstants() throws {
        // A file from before the adaptive bandwidth describes the first version: a resumed run goes on as it began.
        let old = try JSONDecoder().decode(AdaptiveDistributionCalibration.self, from: Data(#"{"sigma": 0.5, "lpmWeight": 2}"#.utf8))
        var expected = fixedADC(sigma: 0.5)
        expected.lpmWeight = 2
        #expect(old == expected)
        let decoded = try JSONDecoder().decode(AdaptiveDistributionCalibration.self,
                                               from: Data(#"{"bandwidth": "perplexity", "perplexity": 12, "lpmDirection": "model-first"}"#.utf8))
        #expect(decoded == AdaptiveDistributionCalibration(perplexity: 12, lpmDirection: .modelFirst))
        let roundTrip = try JSONDecoder().decode(AdaptiveDistributionCalibration.self, from: JSONEncoder().encode(decoded))
        #expect(roundTrip == decoded)
        #expect(throws: ADCConfigurationError.self) {
            try JSONDecoder().decode(AdaptiveDistributionCalibration.self, from: Data(#"{"rho": -1}"#.utf8))
        }
    }
}
