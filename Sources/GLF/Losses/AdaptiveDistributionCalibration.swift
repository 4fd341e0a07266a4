// Adaptive Distribution Calibration (ADC): a constraining part added to any method, in our
// formulation (method.md §3; the paper's full text was not available to us):
//
//   z [B, D]  one view's projections, L2-normalised by the caller      — receives a gradient
//   u [B, P]  the prior representation of the same B images            — no gradient
//
//   for each anchor i, over the other samples j ≠ i:
//     d_ij = ‖z_i − z_j‖²                                  (from norms and the Gram matrix z zᵀ;
//                                                          unit rows are not assumed)
//     q_ij ∝ (1 + d_ij/ρ)^(−(ρ+1)/2)                      model, Student-t with ρ degrees of freedom
//     p_ij = softmax_j(−d_ij / 2σ²)                        DCM target: stop-gradient, recomputed each call
//     π_ij = softmax_j(−‖u_i − u_j‖² / τ_in)               LPM prior: stop-gradient
//     w_i  = (1 / max(H(π_i), floor)) normalised to mean 1 over the batch
//   L_DCM = mean_i w_i KL(p_i ‖ q_i),   L_LPM = mean_i w_i KL(π_i ‖ q_i)
//
// Gradient. With a target row T_i (p_i or π_i, Σ_j T_ij = 1, no gradient) and t_ij the
// un-normalised Student-t kernel, KL(T_i ‖ q_i) = Σ_j T_ij log T_ij − Σ_j T_ij log t_ij + log Σ_k t_ik,
// and ∂ log t_ij/∂d_ij = −a_ij with a_ij = (ρ+1) / (2(ρ + d_ij)). The normaliser contributes
// ∂ log Σ_k t_ik/∂d_ij = −q_ij a_ij, so, with the normalisation of q included,
//     ∂KL(T_i ‖ q_i)/∂d_ij = (T_ij − q_ij) · a_ij = (T_ij − q_ij)·(ρ+1)/(2ρ(1 + d_ij/ρ))
// exactly method.md's expression (it holds because Σ_j T_ij = 1). Each d_ij = d_ji appears in the
// rows of both i and j, and ∂d_ij/∂z_i = 2(z_i − z_j), so with g_ij = (scale·w_i/B)(T_ij − q_ij)a_ij
// (g_ii = 0) and the symmetric coupling S = g + gᵀ:
//     ∂L/∂z_i = 2 Σ_j S_ij (z_i − z_j) = 2 (Σ_j S_ij) z_i − 2 (S z)_i
// — one B×B pass plus two gemms (z zᵀ and S z): O(B²·D).
//
// Why: the Gaussian target is sharper than the heavy-tailed model, so minimising KL(p ‖ q) pulls
// each anchor's nearest neighbours in (p > q) and pushes far samples out (p < q): compactness and
// separability without labels (the t-SNE mechanism). LPM ties the neighbourhoods to the input space.
//
// Our choices (method.md is silent or leaves them open):
// - DCM uses the same anchor weights w as LPM when a prior is given, else uniform weights (w = 1).
// - Scale of the prior: the "identity" prior (`PixelPrior`) returns rows of zero mean and unit
//   L2 norm (unit variance divided by √P), so ‖u_i − u_j‖² = 2(1 − corr_ij) ∈ [0, 4], the scale of
//   unit projections. With plain unit variance distances would be ≈ 2P(1 − corr) (hundreds for
//   P = 192) and τ_in = 0.5 would make every π row one-hot, every entropy ≈ 0 and the 1/H weights
//   meaningless. A frozen encoder's embeddings ("previous" prior) should be L2-normalised by the
//   caller for the same reason; `NeighbourhoodPrior` accepts any [B, P] tensor.
// - The terms work on one view: a method calls them once per view, with the same prior (π and w
//   depend only on the images, so build `NeighbourhoodPrior` once per step).
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

// MARK: - The two terms

/// DCM: mean_i w_i KL(p_i ‖ q_i), p the sharp Gaussian target on the current distances.
public struct DistributionCalibrationLoss: Sendable {
    /// σ: width of the Gaussian target on squared distances (unit vectors: d ∈ [0, 4]); small σ
    /// concentrates p on the nearest neighbours, σ = 1 is broad.
    public var sigma: Float
    /// ρ: degrees of freedom of the Student-t model (1 = Cauchy, t-SNE's choice).
    public var rho: Float

    public init(sigma: Float = 1, rho: Float = 1) {
        self.sigma = sigma
        self.rho = rho
    }

    /// Returns L_DCM and adds gradientScale · ∂L_DCM/∂z into `gradient` [B, D].
    /// - target: the projections p is computed from, stop-gradient; nil means z itself (the
    ///   formulation). Pass a fixed copy to hold p still (the finite-difference check does).
    /// - prior: supplies the anchor weights w; nil means w = 1.
    public func loss(_ z: Tensor, target: Tensor? = nil, prior: NeighbourhoodPrior? = nil,
                     gradientScale: Float, gradient: Tensor) -> Float {
        let pieces = adcCalibrate(z: z, rho: rho, dcm: (sigma, target ?? z, gradientScale), lpm: nil,
                                  weights: prior?.anchorWeights, gradient: gradient)
        return Float(pieces.dcm)
    }
}

/// LPM: mean_i w_i KL(π_i ‖ q_i), π the input-space neighbourhoods.
public struct LocalPreservingLoss: Sendable {
    /// ρ: degrees of freedom of the Student-t model (shared with DCM in `AdaptiveDistributionCalibration`).
    public var rho: Float

    public init(rho: Float = 1) { self.rho = rho }

    /// Returns L_LPM and adds gradientScale · ∂L_LPM/∂z into `gradient` [B, D]. τ_in lives in `prior`.
    public func loss(_ z: Tensor, prior: NeighbourhoodPrior, gradientScale: Float, gradient: Tensor) -> Float {
        let pieces = adcCalibrate(z: z, rho: rho, dcm: nil, lpm: (prior, gradientScale),
                                  weights: prior.anchorWeights, gradient: gradient)
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

    public init() {}
}

/// A configuration error a user can act on (constants come from config files).
public struct ADCConfigurationError: Error, Sendable, CustomStringConvertible {
    public let code: String
    public let message: String
    public var description: String { "\(code): \(message)" }
}

/// ADC with all its constants (method.md §3 defaults). DCM and LPM share one pass over the pairs.
public struct AdaptiveDistributionCalibration: Sendable, Codable, Equatable {
    public var sigma: Float
    public var rho: Float
    /// τ_in of the LPM prior.
    public var inputTemperature: Float
    /// Floor on H(π_i) in the anchor weights (nats).
    public var entropyFloor: Float
    /// ν (DCM) and υ (LPM), reported stable from 0.1 to 10.
    public var dcmWeight: Float
    public var lpmWeight: Float

    public init(sigma: Float = 1, rho: Float = 1, inputTemperature: Float = 0.5, entropyFloor: Float = 1e-3,
                dcmWeight: Float = 1, lpmWeight: Float = 1) {
        self.sigma = sigma
        self.rho = rho
        self.inputTemperature = inputTemperature
        self.entropyFloor = entropyFloor
        self.dcmWeight = dcmWeight
        self.lpmWeight = lpmWeight
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AdaptiveDistributionCalibration()
        self.init(sigma: try c.decodeIfPresent(Float.self, forKey: .sigma) ?? d.sigma,
                  rho: try c.decodeIfPresent(Float.self, forKey: .rho) ?? d.rho,
                  inputTemperature: try c.decodeIfPresent(Float.self, forKey: .inputTemperature) ?? d.inputTemperature,
                  entropyFloor: try c.decodeIfPresent(Float.self, forKey: .entropyFloor) ?? d.entropyFloor,
                  dcmWeight: try c.decodeIfPresent(Float.self, forKey: .dcmWeight) ?? d.dcmWeight,
                  lpmWeight: try c.decodeIfPresent(Float.self, forKey: .lpmWeight) ?? d.lpmWeight)
        try validate()
    }

    /// Checks the constants (decoding calls it; the loss itself never throws).
    public func validate() throws(ADCConfigurationError) {
        for (name, value) in [("sigma", sigma), ("rho", rho), ("inputTemperature", inputTemperature), ("entropyFloor", entropyFloor)]
        where !(value.isFinite && value > 0) {
            throw ADCConfigurationError(code: "adc.\(name)", message: "ADC \(name) must be a finite number > 0, got \(value)")
        }
        for (name, value) in [("dcmWeight", dcmWeight), ("lpmWeight", lpmWeight)] where !(value.isFinite && value >= 0) {
            throw ADCConfigurationError(code: "adc.\(name)", message: "ADC \(name) must be a finite number ≥ 0, got \(value)")
        }
    }

    public var distributionCalibration: DistributionCalibrationLoss { DistributionCalibrationLoss(sigma: sigma, rho: rho) }
    public var localPreserving: LocalPreservingLoss { LocalPreservingLoss(rho: rho) }

    /// π and w for a prior u [B, P] (`PixelPrior.representation(of:)` or frozen-encoder embeddings).
    public func prior(from u: Tensor) -> NeighbourhoodPrior {
        NeighbourhoodPrior(representation: u, temperature: inputTemperature, entropyFloor: entropyFloor)
    }

    /// Both terms on one view z [B, D]: adds gradientScale·(ν ∂L_DCM/∂z + υ ∂L_LPM/∂z) into
    /// `gradient`. Without a prior, LPM is skipped and DCM uses uniform weights.
    public func loss(projections z: Tensor, prior: NeighbourhoodPrior?, gradientScale: Float, gradient: Tensor) -> ADCReport {
        let pieces = adcCalibrate(z: z, rho: rho, dcm: (sigma, z, gradientScale * dcmWeight),
                                  lpm: prior.map { ($0, gradientScale * lpmWeight) },
                                  weights: prior?.anchorWeights, gradient: gradient)
        var report = ADCReport()
        report.dcm = Float(pieces.dcm)
        report.lpm = Float(pieces.lpm)
        report.weightedTotal = dcmWeight * report.dcm + (prior == nil ? 0 : lpmWeight * report.lpm)
        report.meanPriorEntropy = prior?.meanEntropy ?? 0
        report.meanTargetEntropy = Float(pieces.targetEntropy)
        report.meanModelEntropy = Float(pieces.modelEntropy)
        return report
    }
}

// MARK: - The shared pass

private struct ADCPieces {
    var dcm = 0.0, lpm = 0.0, targetEntropy = 0.0, modelEntropy = 0.0
}

/// One pass over the B×B pairs for either or both terms (see the file header for the algebra).
///   z [B, D], dcm.target [B, D] (p's distances), weights [B] or nil (= 1), gradient [B, D]
private func adcCalibrate(z: Tensor, rho: Float,
                          dcm: (sigma: Float, target: Tensor, scale: Float)?,
                          lpm: (prior: NeighbourhoodPrior, scale: Float)?,
                          weights: [Float]?, gradient: Tensor) -> ADCPieces {
    precondition(z.shape.count == 2, "ADC: projections \(z.shape) must be [B, D]")
    precondition(gradient.shape == z.shape, "ADC: gradient \(gradient.shape) vs projections \(z.shape)")
    let (batch, width) = (z.shape[0], z.shape[1])
    if let dcm { precondition(dcm.target.shape == z.shape, "ADC: DCM target \(dcm.target.shape) vs projections \(z.shape)") }
    if let lpm { precondition(lpm.prior.batch == batch, "ADC: prior of \(lpm.prior.batch) rows vs \(batch) projections") }
    if let weights { precondition(weights.count == batch, "ADC: \(weights.count) anchor weights vs \(batch) projections") }
    var pieces = ADCPieces()
    guard batch >= 2 else { return pieces }

    let modelGram = adcGram(z)
    let targetGram: [Float]? = dcm.map { $0.target === z ? modelGram : adcGram($0.target) }

    // Row buffers [B] (Double: the KL of nearly equal rows is a small difference of logs).
    let buffers = UnsafeMutablePointer<Double>.allocate(capacity: 5 * batch)
    defer { buffers.deallocate() }
    let (logQ, q, slope, logT, t) = (buffers, buffers + batch, buffers + 2 * batch, buffers + 3 * batch, buffers + 4 * batch)
    var coupling = [Float](repeating: 0, count: batch * batch)        // g, then S = g + gᵀ
    let (rhoD, exponent) = (Double(rho), Double(rho + 1) / 2)
    coupling.withUnsafeMutableBufferPointer { couplingBuffer in
        let g = couplingBuffer.baseAddress!
        for i in 0..<batch {
            let anchorWeight = Double(weights?[i] ?? 1) / Double(batch)
            // Model row: log t_ij = −(ρ+1)/2 · log(1 + d_ij/ρ), q_i = softmax(log t_i), a_ij = (ρ+1)/(2(ρ + d_ij)).
            adcSquaredDistances(modelGram, batch: batch, row: i, into: slope)
            for j in 0..<batch {
                logQ[j] = -exponent * log1p(slope[j] / rhoD)
                slope[j] = exponent / (rhoD + slope[j])
            }
            pieces.modelEntropy += adcLogSoftmax(logQ, probabilities: q, count: batch, skipping: i)

            // Adds w_i/B · KL(T_i ‖ q_i) to the value and scale·w_i/B·(T_ij − q_ij)·a_ij into row i of g.
            func accumulate(scale: Float) -> Double {
                var kl = 0.0
                let rowScale = Double(scale) * anchorWeight
                for j in 0..<batch where j != i {
                    if t[j] > 0 { kl += t[j] * (logT[j] - logQ[j]) }
                    g[i * batch + j] += Float(rowScale * (t[j] - q[j]) * slope[j])
                }
                return max(kl, 0) * anchorWeight
            }
            if let dcm, let targetGram {
                // Target row: p_i = softmax_j(−d_ij / 2σ²) on the target's distances.
                adcSquaredDistances(targetGram, batch: batch, row: i, into: logT)
                let inverseWidth = 1 / (2 * Double(dcm.sigma) * Double(dcm.sigma))
                for j in 0..<batch { logT[j] *= -inverseWidth }
                pieces.targetEntropy += adcLogSoftmax(logT, probabilities: t, count: batch, skipping: i)
                pieces.dcm += accumulate(scale: dcm.scale)
            }
            if let lpm {
                for j in 0..<batch where j != i {
                    t[j] = Double(lpm.prior.probabilities[i * batch + j])
                    logT[j] = Double(lpm.prior.logProbabilities[i * batch + j])
                }
                pieces.lpm += accumulate(scale: lpm.scale)
            }
        }
    }
    pieces.targetEntropy /= Double(batch)
    pieces.modelEntropy /= Double(batch)

    // ∂L/∂z_i = 2 (Σ_j S_ij) z_i − 2 (S z)_i with S = g + gᵀ.
    guard width > 0, (dcm?.scale ?? 0) != 0 || (lpm?.scale ?? 0) != 0 else { return pieces }
    var rowSums = [Float](repeating: 0, count: batch)
    for i in 0..<batch {
        for j in (i + 1)..<batch {
            let s = coupling[i * batch + j] + coupling[j * batch + i]
            coupling[i * batch + j] = s
            coupling[j * batch + i] = s
            rowSums[i] += s
            rowSums[j] += s
        }
    }
    coupling.withUnsafeBufferPointer { s in
        BLAS.gemm(m: batch, n: width, k: batch, alpha: -2, a: s.baseAddress!, lda: batch, b: z.data, ldb: width,
                  beta: 1, c: gradient.data, ldc: width)
    }
    for i in 0..<batch {
        BLAS.axpy(count: width, alpha: 2 * rowSums[i], x: z.data + i * width, y: gradient.data + i * width)
    }
    return pieces
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
