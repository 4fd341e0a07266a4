// Adaptive Distribution Calibration (ADC): a constraining part added to any method, in our
// formulation (method.md §3, revised; the paper's full text was not available to us):
//
//   z [B, D]  one view's projections, L2-normalised by the caller      — receives a gradient
//   u [B, P]  the prior representation of the same B images            — no gradient
//
//   for each anchor i, over the other samples j ≠ i:
//     d_ij = ‖z_i − z_j‖²                                  (from norms and the Gram matrix z zᵀ;
//                                                          unit rows are not assumed)
//     σ_i                                                  the anchor's bandwidth, recomputed every
//                                                          call without gradient (`ADCBandwidth`):
//                                                          fixed, by perplexity (bisection), or
//                                                          from the anchor's mean distance
//     p_ij = softmax_j(−d_ij / 2σ_i²)                      DCM target: stop-gradient
//     q_ij ∝ (1 + κ_i d_ij)^(−(ρ+1)/2)                     model, Student-t with ρ degrees of freedom
//                                                          and scale s_i: κ_i = 1/(ρ s_i²); the
//                                                          tied scale s_i² = σ_i²(ρ−2)/ρ gives the t
//                                                          the Gaussian's spread (ρ > 2), untied s = 1
//     π_ij = softmax_j(−‖u_i − u_j‖² / τ_in)               LPM prior: stop-gradient
//     w_i  = (1 / max(H(π_i), floor)) normalised to mean 1 over the batch, on the terms chosen
//   L_DCM = mean_i w_i KL(p_i ‖ q_i)
//   L_LPM = mean_i w_i KL(π_i ‖ q_i)   or, model first, mean_i w_i KL(q_i ‖ π_i)
//
// Gradient. Every term is a function of the rows of d through log q, and with σ_i (so κ_i) held
// fixed ∂ log t_ij/∂d_ij = −a_ij, a_ij = (ρ+1)κ_i / (2(1 + κ_i d_ij)), where t is q unnormalised.
//   KL(T_i ‖ q_i), T fixed (Σ_j T_ij = 1):   ∂/∂d_ij = (T_ij − q_ij) · a_ij
//   KL(q_i ‖ π_i):                            ∂/∂d_ij = −a_ij q_ij (log q_ij − log π_ij − KL_i)
// (the second: ∂KL/∂ log t_ik = q_ik (log q_ik − log π_ik − KL_i), since ∂q_j/∂ log t_k = q_j(δ_jk − q_k)).
// The first is method.md's expression, (T − q)(ρ+1)/(2(ρ s_i² + d_ij)). Each d_ij = d_ji appears in
// the rows of both i and j, and ∂d_ij/∂z_i = 2(z_i − z_j), so with the coupling
// g_ij = (scale·w_i/B)·∂KL_i/∂d_ij (g_ii = 0) and S = g + gᵀ:
//     ∂L/∂z_i = 2 Σ_j S_ij (z_i − z_j) = 2 (Σ_j S_ij) z_i − 2 (S z)_i
// — one B×B pass plus two gemms per term (z zᵀ and S z): O(B²·D).
//
// Why: the Gaussian target is sharper than the heavy-tailed model, so minimising KL(p ‖ q) pulls
// each anchor's nearest neighbours in (p > q) and pushes far samples out (p < q): compactness and
// separability without labels (the t-SNE mechanism). LPM ties the neighbourhoods to the input space.
// Why σ_i must adapt: on unit vectors d ∈ [0, 4], so at σ = 1 both p and the ρ = 1 t are nearly
// uniform over B − 1 neighbours and KL(p ‖ q) ≈ 0.003 — DCM did nothing (method.md §3). A σ_i that
// gives p a set perplexity makes the target as sharp as asked, wherever the data are.
//
// Our choices (method.md is silent or leaves them open):
// - Scale of the prior: the "identity" prior (`PixelPrior`) returns rows of zero mean and unit
//   L2 norm (unit variance divided by √P), so ‖u_i − u_j‖² = 2(1 − corr_ij) ∈ [0, 4], the scale of
//   unit projections. With plain unit variance distances would be ≈ 2P(1 − corr) (hundreds for
//   P = 192) and τ_in = 0.5 would make every π row one-hot, every entropy ≈ 0 and the 1/H weights
//   meaningless. A frozen encoder's embeddings ("previous" prior) should be L2-normalised by the
//   caller for the same reason; `NeighbourhoodPrior` accepts any [B, P] tensor.
// - The terms work on one view: a method calls them once per view, with the same prior (π and w
//   depend only on the images, so build `NeighbourhoodPrior` once per step).
// - The anchor weights need a prior; without one every w_i is 1.
// - Fewer than two rows: there is no j ≠ i; the terms return 0 and add nothing.
// - d_ij is clamped at 0 (z zᵀ cancellation can make it −1e-7 for near-duplicates).
import Foundation
import Neural

// MARK: - Input-space prior

/// The "identity" prior: down-sampled, standardised pixels of the un-augmented images.
public enum PixelPrior {
    /// images [B, H, W, C] (NHWC, any value range) → u [B, side·side·C].
    ///
    /// Average-pools each image to side × side cells (cell r covers rows ⌊rH/side⌋ ..< ⌊(r+1)H/side⌋,
    /// at least one; likewise columns; colour is kept), then gives each row zero mean and unit L2
    /// norm (unit variance / √P, see the file header). A constant image gives a zero row.
    /// Default side 8: 8·8·3 = 192 values for CIFAR, coarse enough that small shifts barely change it.
    public static func representation(of images: Tensor, side: Int = 8) -> Tensor {
        precondition(images.shape.count == 4 && side > 0, "PixelPrior: images \(images.shape) must be [B, H, W, C], side \(side) > 0")
        let (batch, height, width, channels) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        let features = side * side * channels
        let u = Tensor(zeros: [batch, features])
        guard batch > 0, height > 0, width > 0, channels > 0 else { return u }
        func cell(_ r: Int, _ extent: Int) -> Range<Int> {
            let start = r * extent / side
            return start ..< max(start + 1, (r + 1) * extent / side)
        }
        for b in 0..<batch {
            let image = images.data + b * height * width * channels
            let row = u.data + b * features
            for cy in 0..<side {
                let rows = cell(cy, height)
                for cx in 0..<side {
                    let columns = cell(cx, width)
                    let out = row + (cy * side + cx) * channels
                    for y in rows {
                        for x in columns {
                            let pixel = image + (y * width + x) * channels
                            for c in 0..<channels { out[c] += pixel[c] }
                        }
                    }
                    let inverseArea = 1 / Float(rows.count * columns.count)
                    for c in 0..<channels { out[c] *= inverseArea }
                }
            }
            var mean = 0.0
            for k in 0..<features { mean += Double(row[k]) }
            mean /= Double(features)
            var squares = 0.0
            for k in 0..<features { let v = Double(row[k]) - mean; squares += v * v }
            // A (numerically) constant image has no pattern to compare: a zero row, equally far from all.
            let inverseNorm = squares > 1e-12 * Double(features) * max(mean * mean, 1) ? 1 / squares.squareRoot() : 0
            for k in 0..<features { row[k] = Float((Double(row[k]) - mean) * inverseNorm) }
        }
        return u
    }
}

/// π (the input-space neighbourhoods) and the anchor weights w of one batch, from a prior u [B, P].
/// Depends only on the images: build once per step and reuse for both views and both terms.
public struct NeighbourhoodPrior: Sendable {
    public let batch: Int
    /// τ_in: smaller concentrates π on the nearest inputs.
    public let temperature: Float
    /// w_i = (1/max(H(π_i), entropyFloor)) normalised to mean 1: an anchor with a flat input
    /// neighbourhood (an outlier) counts less. All 1 when batch < 2.
    public let anchorWeights: [Float]
    /// H(π_i) in nats, ≤ log(B − 1).
    public let entropies: [Float]
    /// π_ij and log π_ij, row-major [B, B]; the diagonal (j = i) is 0 and −∞.
    let probabilities: [Float]
    let logProbabilities: [Float]

    public var meanEntropy: Float { entropies.isEmpty ? 0 : entropies.reduce(0, +) / Float(entropies.count) }

    /// u [B, P], no gradient. `entropyFloor` (nats) guards H = 0 (a one-hot row, or B = 2).
    public init(representation u: Tensor, temperature: Float = 0.5, entropyFloor: Float = 1e-3) {
        precondition(u.shape.count == 2, "NeighbourhoodPrior: u \(u.shape) must be [B, P]")
        let batch = u.shape[0]
        self.batch = batch
        self.temperature = temperature
        guard batch >= 2 else {
            anchorWeights = Array(repeating: 1, count: batch)
            entropies = Array(repeating: 0, count: batch)
            probabilities = Array(repeating: 0, count: batch * batch)
            logProbabilities = Array(repeating: -.infinity, count: batch * batch)
            return
        }
        let gram = adcGram(u)
        var entropies = [Float](repeating: 0, count: batch)
        var pi = [Float](repeating: 0, count: batch * batch), logPi = [Float](repeating: -.infinity, count: batch * batch)
        let logits = UnsafeMutablePointer<Double>.allocate(capacity: batch), row = UnsafeMutablePointer<Double>.allocate(capacity: batch)
        defer { logits.deallocate(); row.deallocate() }
        let inverseTemperature = 1 / Double(temperature)
        for i in 0..<batch {
            adcSquaredDistances(gram, batch: batch, row: i, into: logits)
            for j in 0..<batch { logits[j] *= -inverseTemperature }
            entropies[i] = Float(max(adcLogSoftmax(logits, probabilities: row, count: batch, skipping: i), 0))
            for j in 0..<batch where j != i {
                pi[i * batch + j] = Float(row[j])
                logPi[i * batch + j] = Float(logits[j])
            }
        }
        let inverse = entropies.map { 1 / Double(max($0, entropyFloor)) }
        let mean = inverse.reduce(0, +) / Double(batch)
        self.anchorWeights = inverse.map { Float($0 / mean) }
        self.entropies = entropies
        self.probabilities = pi
        self.logProbabilities = logPi
    }
}

// MARK: - The anchor's bandwidth

/// How σ_i, the width of anchor i's Gaussian target, is chosen. Recomputed every call from the
/// current (stop-gradient) distances; the gradient treats it as a constant.
public enum ADCBandwidth: String, Sendable, Codable, CaseIterable {
    /// σ_i = `sigma` for every anchor and step (the first version: DCM ≈ 0 on unit vectors at σ = 1).
    case fixed
    /// σ_i by bisection so that p_i has perplexity exp H(p_i) = `perplexity` (t-SNE's calibration).
    case perplexity
    /// σ_i² = `distanceScale` · mean_{j≠i} d_ij: the anchor's own distance scale in this batch.
    case distanceScale = "distance-scale"
}

/// t-SNE's calibration of one anchor: the precision β = 1/2σ² at which softmax_j(−β d_j) over
/// j ≠ anchor has a given entropy.
public enum PerplexityCalibration {
    /// Bisection steps on log β; each halves the bracket, so 100 reach Double's resolution.
    static let maximumSteps = 100
    /// Entropy tolerance, nats: far below the 1e-3 the checks ask for.
    static let tolerance = 1e-7

    /// β ≥ 0 and the entropy reached. H(β) falls monotonically from log(n) at β = 0 (uniform over
    /// the n others) towards log(m), m the number of others at the smallest distance; a target
    /// outside that range gives its nearest end (uniform: β = 0; as sharp as allowed: the largest
    /// β tried, ≈ 1e12 / the spread of the distances). Never NaN: distances are shifted by their
    /// minimum, so at least one weight is exp(0) = 1.
    public static func precision(squaredDistances d: [Double], anchor: Int, targetEntropy: Double) -> (precision: Double, entropy: Double) {
        d.withUnsafeBufferPointer { precision(d: $0.baseAddress!, count: d.count, anchor: anchor, targetEntropy: targetEntropy) }
    }

    static func precision(d: UnsafePointer<Double>, count: Int, anchor: Int, targetEntropy: Double) -> (precision: Double, entropy: Double) {
        var nearest = Double.infinity, farthest = -Double.infinity, others = 0
        for j in 0..<count where j != anchor {
            nearest = min(nearest, d[j])
            farthest = max(farthest, d[j])
            others += 1
        }
        guard others > 1, farthest - nearest > 0 else { return (0, others > 1 ? log(Double(others)) : 0) }
        /// H(β) = log Σ_j e^{−β d'_j} + β E_p[d'], d' = d − nearest.
        func entropy(_ beta: Double) -> Double {
            var sum = 0.0, weighted = 0.0
            for j in 0..<count where j != anchor {
                let shifted = d[j] - nearest
                let e = exp(-beta * shifted)
                sum += e
                weighted += e * shifted
            }
            return log(sum) + beta * weighted / sum
        }
        let uniform = log(Double(others))
        guard targetEntropy < uniform - tolerance else { return (0, uniform) }
        let spread = farthest - nearest
        // Bracket on log β: H(1e-6/spread) ≈ uniform, H(1e12/spread) is as sharp as the data allow.
        var (low, high) = (log(1e-6 / spread), log(1e12 / spread))
        var (beta, reached) = (exp(high), entropy(exp(high)))
        guard reached < targetEntropy else { return (beta, reached) }
        for _ in 0..<maximumSteps {
            let middle = (low + high) / 2
            (beta, reached) = (exp(middle), entropy(exp(middle)))
            if abs(reached - targetEntropy) < tolerance { break }
            if reached > targetEntropy { low = middle } else { high = middle }
        }
        return (beta, reached)
    }
}

// MARK: - The two terms

/// Which terms the anchor weights w_i = 1/H(π_i) (normalised) multiply.
public enum ADCEntropyWeighting: String, Sendable, Codable, CaseIterable {
    case none, dcm, lpm, both
    var onDCM: Bool { self == .dcm || self == .both }
    var onLPM: Bool { self == .lpm || self == .both }
}

/// The direction of LPM's divergence between the prior π and the model q.
public enum LPMDirection: String, Sendable, Codable, CaseIterable {
    /// KL(π ‖ q): q must cover every input-space neighbour (the first version).
    case priorFirst = "prior-first"
    /// KL(q ‖ π), D(P^data ‖ P^pre) in the secondary source: q must not put mass where π has none.
    case modelFirst = "model-first"
}

/// DCM: mean_i w_i KL(p_i ‖ q_i), p the sharp Gaussian target on the current distances.
public struct DistributionCalibrationLoss: Sendable {
    public var calibration: AdaptiveDistributionCalibration

    public init(_ calibration: AdaptiveDistributionCalibration = AdaptiveDistributionCalibration()) {
        self.calibration = calibration
    }

    /// Returns L_DCM and adds gradientScale · ∂L_DCM/∂z into `gradient` [B, D].
    /// - target: the projections p and σ_i are computed from, stop-gradient; nil means z itself
    ///   (the formulation). Pass a fixed copy to hold p and σ still (the finite-difference check does).
    /// - prior: supplies the anchor weights w when the weighting includes DCM; nil means w = 1.
    public func loss(_ z: Tensor, target: Tensor? = nil, prior: NeighbourhoodPrior? = nil,
                     gradientScale: Float, gradient: Tensor) -> Float {
        let pieces = adcCalibrate(z: z, target: target ?? z, settings: calibration, prior: prior,
                                  dcm: (gradientScale, gradient), lpm: nil)
        return Float(pieces.dcm)
    }
}

/// LPM: mean_i w_i D(π_i, q_i), π the input-space neighbourhoods, in the configured direction.
public struct LocalPreservingLoss: Sendable {
    public var calibration: AdaptiveDistributionCalibration

    public init(_ calibration: AdaptiveDistributionCalibration = AdaptiveDistributionCalibration()) {
        self.calibration = calibration
    }

    /// Returns L_LPM and adds gradientScale · ∂L_LPM/∂z into `gradient` [B, D]. τ_in lives in
    /// `prior`; `target` (default z) sets σ_i, which a tied t-scale follows.
    public func loss(_ z: Tensor, target: Tensor? = nil, prior: NeighbourhoodPrior, gradientScale: Float, gradient: Tensor) -> Float {
        let pieces = adcCalibrate(z: z, target: target ?? z, settings: calibration, prior: prior,
                                  dcm: nil, lpm: (gradientScale, gradient))
        return Float(pieces.lpm)
    }
}

// MARK: - Both terms in one pass, with what the trainer logs

/// What one call of ADC reports (unscaled term values; entropies in nats, ≤ log(B − 1)).
public struct ADCReport: Sendable {
    public var dcm: Float = 0
    public var lpm: Float = 0
    /// ν·dcm + υ·lpm: what the call added to the loss (before the caller's gradientScale).
    public var weightedTotal: Float = 0
    /// Mean H(π_i); 0 without a prior. Near log(B − 1): the prior is flat (τ_in too large).
    public var meanPriorEntropy: Float = 0
    /// Mean H(p_i) and H(q_i). Both reach log(B − 1) when the projections collapse (all d equal):
    /// log them beside the collapse monitor.
    public var meanTargetEntropy: Float = 0
    public var meanModelEntropy: Float = 0
    /// Mean σ_i over the anchors (∞ counts as 0: an anchor whose target is uniform).
    public var meanBandwidth: Float = 0

    public init() {}
}

/// A configuration error a user can act on (constants come from config files).
public struct ADCConfigurationError: Error, Sendable, CustomStringConvertible {
    public let code: String
    public let message: String
    public var description: String { "\(code): \(message)" }
}

/// ADC with all its settings. DCM and LPM share one pass over the pairs.
///
/// The defaults are the best measured (README, "Quality"; SimCLR, 800 steps): LPM against a model
/// whose Student-t follows each anchor's perplexity-30 bandwidth (+1.6 points), and DCM off
/// (ν = 0): in every form tried it cost SimCLR accuracy in proportion to its gradient share
/// (ν 1: −6.0 against LPM alone, share 24%; ν 0.1: −1.5, 2.5%; ν 0.03: −0.9, 0.7%).
///
/// Decoding a file written before a setting existed gives that setting the behaviour the file was
/// trained with (fixed σ, untied scale, weights on both terms, KL(π ‖ q)), so a resumed run goes on
/// as it began; a new value takes the defaults below.
public struct AdaptiveDistributionCalibration: Sendable, Codable, Equatable {
    public var bandwidth: ADCBandwidth
    /// σ for `.fixed`.
    public var sigma: Float
    /// The target perplexity for `.perplexity` (> 1, below the batch size to have an effect).
    public var perplexity: Float
    /// The factor for `.distanceScale`.
    public var distanceScale: Float
    /// ρ: degrees of freedom of the Student-t model (1 = Cauchy, t-SNE's choice).
    public var rho: Float
    /// s_i² = σ_i²(ρ − 2)/ρ (needs ρ > 2); false: s = 1.
    public var tiedScale: Bool
    public var entropyWeights: ADCEntropyWeighting
    public var lpmDirection: LPMDirection
    /// τ_in of the LPM prior.
    public var inputTemperature: Float
    /// Floor on H(π_i) in the anchor weights (nats).
    public var entropyFloor: Float
    /// ν (DCM) and υ (LPM), reported stable from 0.1 to 10.
    public var dcmWeight: Float
    public var lpmWeight: Float

    public init(bandwidth: ADCBandwidth = .perplexity, sigma: Float = 1, perplexity: Float = 30, distanceScale: Float = 0.25,
                rho: Float = 3, tiedScale: Bool = true, entropyWeights: ADCEntropyWeighting = .dcm,
                lpmDirection: LPMDirection = .priorFirst, inputTemperature: Float = 0.5, entropyFloor: Float = 1e-3,
                dcmWeight: Float = 0, lpmWeight: Float = 1) {
        self.bandwidth = bandwidth
        self.sigma = sigma
        self.perplexity = perplexity
        self.distanceScale = distanceScale
        self.rho = rho
        self.tiedScale = tiedScale
        self.entropyWeights = entropyWeights
        self.lpmDirection = lpmDirection
        self.inputTemperature = inputTemperature
        self.entropyFloor = entropyFloor
        self.dcmWeight = dcmWeight
        self.lpmWeight = lpmWeight
    }

    /// The first version's ADC (fixed σ = 1, ρ = 1 untied, weights on both, KL(π ‖ q)): what a
    /// file without the newer settings was trained with.
    public static let firstVersion = AdaptiveDistributionCalibration(bandwidth: .fixed, sigma: 1, rho: 1, tiedScale: false,
                                                                     entropyWeights: .both, lpmDirection: .priorFirst, dcmWeight: 1)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let (d, old) = (AdaptiveDistributionCalibration(), AdaptiveDistributionCalibration.firstVersion)
        // A file that predates `bandwidth` describes the first version in full.
        let base = c.contains(.bandwidth) ? d : old
        self.init(bandwidth: try c.decodeIfPresent(ADCBandwidth.self, forKey: .bandwidth) ?? base.bandwidth,
                  sigma: try c.decodeIfPresent(Float.self, forKey: .sigma) ?? base.sigma,
                  perplexity: try c.decodeIfPresent(Float.self, forKey: .perplexity) ?? base.perplexity,
                  distanceScale: try c.decodeIfPresent(Float.self, forKey: .distanceScale) ?? base.distanceScale,
                  rho: try c.decodeIfPresent(Float.self, forKey: .rho) ?? base.rho,
                  tiedScale: try c.decodeIfPresent(Bool.self, forKey: .tiedScale) ?? base.tiedScale,
                  entropyWeights: try c.decodeIfPresent(ADCEntropyWeighting.self, forKey: .entropyWeights) ?? base.entropyWeights,
                  lpmDirection: try c.decodeIfPresent(LPMDirection.self, forKey: .lpmDirection) ?? base.lpmDirection,
                  inputTemperature: try c.decodeIfPresent(Float.self, forKey: .inputTemperature) ?? base.inputTemperature,
                  entropyFloor: try c.decodeIfPresent(Float.self, forKey: .entropyFloor) ?? base.entropyFloor,
                  dcmWeight: try c.decodeIfPresent(Float.self, forKey: .dcmWeight) ?? base.dcmWeight,
                  lpmWeight: try c.decodeIfPresent(Float.self, forKey: .lpmWeight) ?? base.lpmWeight)
        try validate()
    }

    /// Checks the constants (decoding calls it; the loss itself never throws).
    public func validate() throws(ADCConfigurationError) {
        for (name, value) in [("sigma", sigma), ("distanceScale", distanceScale), ("rho", rho),
                              ("inputTemperature", inputTemperature), ("entropyFloor", entropyFloor)]
        where !(value.isFinite && value > 0) {
            throw ADCConfigurationError(code: "adc.\(name)", message: "ADC \(name) must be a finite number > 0, got \(value)")
        }
        guard perplexity.isFinite && perplexity > 1 else {
            throw ADCConfigurationError(code: "adc.perplexity", message: "ADC perplexity must be a finite number > 1, got \(perplexity)")
        }
        guard !tiedScale || rho > 2 else {
            throw ADCConfigurationError(code: "adc.rho",
                                        message: "a t-scale tied to σ needs ρ > 2 (s² = σ²(ρ−2)/ρ), got ρ = \(rho); untie it or raise ρ")
        }
        for (name, value) in [("dcmWeight", dcmWeight), ("lpmWeight", lpmWeight)] where !(value.isFinite && value >= 0) {
            throw ADCConfigurationError(code: "adc.\(name)", message: "ADC \(name) must be a finite number ≥ 0, got \(value)")
        }
    }

    /// Checks the settings against the batch they will see: a perplexity of B − 1 or more makes
    /// every target uniform (β = 0), and with a tied scale every model row too, so ADC would add
    /// nothing at all, silently.
    public func validate(batch: Int) throws(ADCConfigurationError) {
        try validate()
        if bandwidth == .perplexity && perplexity >= Float(batch - 1) {
            throw ADCConfigurationError(code: "adc.perplexity",
                                        message: "ADC perplexity \(perplexity) must be below batch − 1 = \(batch - 1): at or above it every target is uniform and ADC adds nothing")
        }
    }

    public var distributionCalibration: DistributionCalibrationLoss { DistributionCalibrationLoss(self) }
    public var localPreserving: LocalPreservingLoss { LocalPreservingLoss(self) }

    /// π and w for a prior u [B, P] (`PixelPrior.representation(of:)` or frozen-encoder embeddings).
    public func prior(from u: Tensor) -> NeighbourhoodPrior {
        NeighbourhoodPrior(representation: u, temperature: inputTemperature, entropyFloor: entropyFloor)
    }

    /// Both terms on one view z [B, D]: adds gradientScale·ν·∂L_DCM/∂z into `gradients.dcm` and
    /// gradientScale·υ·∂L_LPM/∂z into `gradients.lpm` (they may be the same tensor). Without a
    /// prior LPM is skipped and every anchor weight is 1.
    public func loss(projections z: Tensor, prior: NeighbourhoodPrior?, gradientScale: Float,
                     gradients: (dcm: Tensor, lpm: Tensor)) -> ADCReport {
        let pieces = adcCalibrate(z: z, target: z, settings: self, prior: prior,
                                  dcm: (gradientScale * dcmWeight, gradients.dcm),
                                  lpm: prior.map { _ in (gradientScale * lpmWeight, gradients.lpm) })
        var report = ADCReport()
        report.dcm = Float(pieces.dcm)
        report.lpm = Float(pieces.lpm)
        report.weightedTotal = dcmWeight * report.dcm + (prior == nil ? 0 : lpmWeight * report.lpm)
        report.meanPriorEntropy = prior?.meanEntropy ?? 0
        report.meanTargetEntropy = Float(pieces.targetEntropy)
        report.meanModelEntropy = Float(pieces.modelEntropy)
        report.meanBandwidth = Float(pieces.bandwidth)
        return report
    }

    /// Both terms into one gradient tensor.
    public func loss(projections z: Tensor, prior: NeighbourhoodPrior?, gradientScale: Float, gradient: Tensor) -> ADCReport {
        loss(projections: z, prior: prior, gradientScale: gradientScale, gradients: (gradient, gradient))
    }

    /// The precision β_i = 1/2σ_i² of an anchor's target from its row of squared distances.
    func precision(_ d: UnsafePointer<Double>, count: Int, anchor: Int) -> Double {
        switch bandwidth {
        case .fixed:
            return 1 / (2 * Double(sigma) * Double(sigma))
        case .perplexity:
            return PerplexityCalibration.precision(d: d, count: count, anchor: anchor, targetEntropy: log(Double(perplexity))).precision
        case .distanceScale:
            var sum = 0.0
            for j in 0..<count where j != anchor { sum += d[j] }
            let variance = Double(distanceScale) * sum / Double(max(count - 1, 1))
            return variance > 0 ? 1 / (2 * variance) : 0      // all at one distance: a uniform target
        }
    }

    /// κ_i = 1/(ρ s_i²) of the anchor's Student-t: tied, ρ s_i² = σ_i²(ρ − 2) = (ρ − 2)/2β_i.
    func inverseScale(precision beta: Double) -> Double {
        tiedScale ? 2 * beta / (Double(rho) - 2) : 1 / Double(rho)
    }
}

// MARK: - The shared pass

private struct ADCPieces {
    var dcm = 0.0, lpm = 0.0, targetEntropy = 0.0, modelEntropy = 0.0, bandwidth = 0.0
}

/// One pass over the B×B pairs for either or both terms (see the file header for the algebra).
///   z [B, D]; target [B, D], the stop-gradient projections p and σ_i come from; each term's
///   (scale, gradient [B, D]) or nil to skip it; prior: π and w (LPM needs it).
private func adcCalibrate(z: Tensor, target: Tensor, settings: AdaptiveDistributionCalibration, prior: NeighbourhoodPrior?,
                          dcm: (scale: Float, gradient: Tensor)?, lpm: (scale: Float, gradient: Tensor)?) -> ADCPieces {
    precondition(z.shape.count == 2, "ADC: projections \(z.shape) must be [B, D]")
    precondition(target.shape == z.shape, "ADC: target \(target.shape) vs projections \(z.shape)")
    for term in [dcm, lpm].compactMap({ $0 }) {
        precondition(term.gradient.shape == z.shape, "ADC: gradient \(term.gradient.shape) vs projections \(z.shape)")
    }
    precondition(lpm == nil || prior != nil, "ADC: LPM needs a prior")
    let batch = z.shape[0]
    if let prior { precondition(prior.batch == batch, "ADC: prior of \(prior.batch) rows vs \(batch) projections") }
    var pieces = ADCPieces()
    guard batch >= 2 else { return pieces }

    let modelGram = adcGram(z)
    let targetGram = target === z ? modelGram : adcGram(target)
    let weights = prior?.anchorWeights
    let dcmWeights = settings.entropyWeights.onDCM ? weights : nil
    let lpmWeights = settings.entropyWeights.onLPM ? weights : nil

    // Row buffers [B] (Double: the KL of nearly equal rows is a small difference of logs).
    let buffers = UnsafeMutablePointer<Double>.allocate(capacity: 6 * batch)
    defer { buffers.deallocate() }
    let (logQ, q, slope, logT, t, targetDistances) = (buffers, buffers + batch, buffers + 2 * batch, buffers + 3 * batch,
                                                      buffers + 4 * batch, buffers + 5 * batch)
    // Each term's coupling g, then S = g + gᵀ.
    var dcmCoupling = [Float](repeating: 0, count: dcm == nil ? 0 : batch * batch)
    var lpmCoupling = [Float](repeating: 0, count: lpm == nil ? 0 : batch * batch)
    let exponent = Double(settings.rho + 1) / 2
    let needsBandwidth = dcm != nil || settings.tiedScale
    for i in 0..<batch {
        // σ_i from the target's distances (stop-gradient).
        var beta = 0.0
        if needsBandwidth {
            adcSquaredDistances(targetGram, batch: batch, row: i, into: targetDistances)
            beta = settings.precision(targetDistances, count: batch, anchor: i)
            if beta > 0 { pieces.bandwidth += (1 / (2 * beta)).squareRoot() }
        }
        // Model row: log t_ij = −(ρ+1)/2 · log(1 + κ_i d_ij), q_i = softmax(log t_i), a_ij = (ρ+1)κ_i/(2(1 + κ_i d_ij)).
        let kappa = settings.inverseScale(precision: beta)
        adcSquaredDistances(modelGram, batch: batch, row: i, into: slope)
        for j in 0..<batch {
            logQ[j] = -exponent * log1p(kappa * slope[j])
            slope[j] = exponent * kappa / (1 + kappa * slope[j])
        }
        pieces.modelEntropy += adcLogSoftmax(logQ, probabilities: q, count: batch, skipping: i)

        if let dcm {
            // Target row: p_i = softmax_j(−β_i d_ij) on the target's distances; ∂KL(p‖q)/∂d = (p − q)a.
            for j in 0..<batch { logT[j] = -beta * targetDistances[j] }
            pieces.targetEntropy += adcLogSoftmax(logT, probabilities: t, count: batch, skipping: i)
            let anchorWeight = Double(dcmWeights?[i] ?? 1) / Double(batch)
            var kl = 0.0
            let rowScale = Double(dcm.scale) * anchorWeight
            for j in 0..<batch where j != i {
                if t[j] > 0 { kl += t[j] * (logT[j] - logQ[j]) }
                dcmCoupling[i * batch + j] = Float(rowScale * (t[j] - q[j]) * slope[j])
            }
            pieces.dcm += max(kl, 0) * anchorWeight
        }
        if let lpm, let prior {
            let anchorWeight = Double(lpmWeights?[i] ?? 1) / Double(batch)
            let rowScale = Double(lpm.scale) * anchorWeight
            for j in 0..<batch where j != i {
                t[j] = Double(prior.probabilities[i * batch + j])
                logT[j] = Double(prior.logProbabilities[i * batch + j])
            }
            var kl = 0.0
            switch settings.lpmDirection {
            case .priorFirst:           // KL(π ‖ q): (π − q)a
                for j in 0..<batch where j != i {
                    if t[j] > 0 { kl += t[j] * (logT[j] - logQ[j]) }
                    lpmCoupling[i * batch + j] = Float(rowScale * (t[j] - q[j]) * slope[j])
                }
            case .modelFirst:           // KL(q ‖ π): −a q (log q − log π − KL)
                for j in 0..<batch where j != i && q[j] > 0 { kl += q[j] * (logQ[j] - logT[j]) }
                for j in 0..<batch where j != i {
                    lpmCoupling[i * batch + j] = Float(-rowScale * slope[j] * q[j] * (logQ[j] - logT[j] - kl))
                }
            }
            pieces.lpm += max(kl, 0) * anchorWeight
        }
    }
    pieces.targetEntropy /= Double(batch)
    pieces.modelEntropy /= Double(batch)
    pieces.bandwidth /= Double(batch)

    if let dcm { adcAddGradient(coupling: &dcmCoupling, z: z, scale: dcm.scale, into: dcm.gradient) }
    if let lpm { adcAddGradient(coupling: &lpmCoupling, z: z, scale: lpm.scale, into: lpm.gradient) }
    return pieces
}

/// ∂L/∂z_i = 2 (Σ_j S_ij) z_i − 2 (S z)_i with S = g + gᵀ, added into `gradient`.
private func adcAddGradient(coupling g: inout [Float], z: Tensor, scale: Float, into gradient: Tensor) {
    let (batch, width) = (z.shape[0], z.shape[1])
    guard width > 0, scale != 0 else { return }
    var rowSums = [Float](repeating: 0, count: batch)
    for i in 0..<batch {
        for j in (i + 1)..<batch {
            let s = g[i * batch + j] + g[j * batch + i]
            g[i * batch + j] = s
            g[j * batch + i] = s
            rowSums[i] += s
            rowSums[j] += s
        }
    }
    g.withUnsafeBufferPointer { s in
        BLAS.gemm(m: batch, n: width, k: batch, alpha: -2, a: s.baseAddress!, lda: batch, b: z.data, ldb: width,
                  beta: 1, c: gradient.data, ldc: width)
    }
    for i in 0..<batch {
        BLAS.axpy(count: width, alpha: 2 * rowSums[i], x: z.data + i * width, y: gradient.data + i * width)
    }
}

/// x [B, W] → x xᵀ [B, B] (one sgemm).
private func adcGram(_ x: Tensor) -> [Float] {
    let (rows, width) = (x.shape[0], x.count / max(x.shape[0], 1))
    var gram = [Float](repeating: 0, count: rows * rows)
    guard rows > 0, width > 0 else { return gram }                  // (BLAS rejects lda = 0)
    gram.withUnsafeMutableBufferPointer { out in
        BLAS.gemm(transposeB: true, m: rows, n: rows, k: width, a: x.data, lda: width, b: x.data, ldb: width,
                  c: out.baseAddress!, ldc: rows)
    }
    return gram
}

/// Row i of the squared distances ‖x_i − x_j‖² = G_ii + G_jj − 2 G_ij, clamped at 0.
@inline(__always)
private func adcSquaredDistances(_ gram: [Float], batch: Int, row i: Int, into d: UnsafeMutablePointer<Double>) {
    gram.withUnsafeBufferPointer { g in
        let gii = Double(g[i * batch + i])
        for j in 0..<batch { d[j] = max(0, gii + Double(g[j * batch + j]) - 2 * Double(g[i * batch + j])) }
    }
}

/// Over j ≠ i: logits → log-softmax in place, probabilities filled; returns the entropy (nats).
/// Entries at j = i are left unspecified.
@inline(__always)
private func adcLogSoftmax(_ logits: UnsafeMutablePointer<Double>, probabilities: UnsafeMutablePointer<Double>,
                           count: Int, skipping i: Int) -> Double {
    var largest = -Double.infinity
    for j in 0..<count where j != i { largest = max(largest, logits[j]) }
    var sum = 0.0
    for j in 0..<count where j != i {
        probabilities[j] = exp(logits[j] - largest)
        sum += probabilities[j]
    }
    let (logNormaliser, inverse) = (largest + log(sum), 1 / sum)
    var entropy = 0.0
    for j in 0..<count where j != i {
        logits[j] -= logNormaliser
        probabilities[j] *= inverse
        if probabilities[j] > 0 { entropy -= probabilities[j] * logits[j] }
    }
    return entropy
}

extension AdaptiveDistributionCalibration {
    /// One line for logs: every setting that shapes the terms.
    public var summary: String {
        let width = switch bandwidth {
        case .fixed: "σ \(sigma)"
        case .perplexity: "perplexity \(perplexity)"
        case .distanceScale: "σ² = \(distanceScale)·mean d"
        }
        return "ν \(dcmWeight) υ \(lpmWeight), \(width), ρ \(rho) \(tiedScale ? "tied" : "unit") scale, "
            + "weights on \(entropyWeights.rawValue), LPM \(lpmDirection.rawValue), τ_in \(inputTemperature)"
    }
}
