// ADC's settings as command-line options, shared by `glf train` and `glf loss`. Every option left
// out takes AdaptiveDistributionCalibration's default, so the defaults live in one place.
import ArgumentParser
import GLF

struct ADCOptions: ParsableArguments {
    @Option(name: .customLong("adc-dcm"), help: "ν, the weight of DCM.") var dcmWeight: Float?
    @Option(name: .customLong("adc-lpm"), help: "υ, the weight of LPM.") var lpmWeight: Float?
    @Option(name: .customLong("adc-bandwidth"),
            help: "How DCM's per-anchor σ_i is set each step: perplexity (bisection), distance-scale (σ_i² = factor · mean distance), or fixed.")
    var bandwidth: String?
    @Option(name: .customLong("adc-perplexity"), help: "Target perplexity of each anchor's Gaussian (--adc-bandwidth perplexity).")
    var perplexity: Float?
    @Option(name: .customLong("adc-distance-scale"), help: "σ_i² over the anchor's mean squared distance (--adc-bandwidth distance-scale).")
    var distanceScale: Float?
    @Option(name: .customLong("adc-sigma"), help: "σ of DCM's Gaussian target (--adc-bandwidth fixed).") var sigma: Float?
    @Option(name: .customLong("adc-rho"), help: "ρ, the Student-t's degrees of freedom (> 2 with a tied scale).") var rho: Float?
    @Option(name: .customLong("adc-t-scale"), help: "tied (s_i² = σ_i²(ρ−2)/ρ) or unit (s = 1).") var scale: String?
    @Option(name: .customLong("adc-entropy-weights"), help: "Which terms the 1/H(π) anchor weights multiply: none, dcm, lpm or both.")
    var entropyWeights: String?
    @Option(name: .customLong("adc-lpm-direction"), help: "prior-first: KL(π ‖ q); model-first: KL(q ‖ π).") var lpmDirection: String?
    @Option(name: .customLong("adc-tau-in"), help: "τ_in, the temperature of LPM's input-space neighbourhoods.") var inputTemperature: Float?

    func validate() throws { _ = try calibration() }

    /// The settings given, on top of the defaults; a bad value is a ValidationError naming it.
    func calibration() throws -> AdaptiveDistributionCalibration {
        func choice<T: RawRepresentable & CaseIterable>(_ raw: String?, _ option: String, _ fallback: T) throws -> T where T.RawValue == String {
            guard let raw else { return fallback }
            guard let value = T(rawValue: raw) else {
                throw ValidationError("--\(option) \(raw): one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return value
        }
        var c = AdaptiveDistributionCalibration()
        c.dcmWeight = dcmWeight ?? c.dcmWeight
        c.lpmWeight = lpmWeight ?? c.lpmWeight
        c.bandwidth = try choice(bandwidth, "adc-bandwidth", c.bandwidth)
        c.perplexity = perplexity ?? c.perplexity
        c.distanceScale = distanceScale ?? c.distanceScale
        c.sigma = sigma ?? c.sigma
        c.rho = rho ?? c.rho
        if let scale {
            guard ["tied", "unit"].contains(scale) else { throw ValidationError("--adc-t-scale \(scale): tied or unit") }
            c.tiedScale = scale == "tied"
        }
        c.entropyWeights = try choice(entropyWeights, "adc-entropy-weights", c.entropyWeights)
        c.lpmDirection = try choice(lpmDirection, "adc-lpm-direction", c.lpmDirection)
        c.inputTemperature = inputTemperature ?? c.inputTemperature
        do { try c.validate() } catch { throw ValidationError(error.message) }
        return c
    }
}

extension AdaptiveDistributionCalibration {
    /// One line for logs: every setting that shapes the terms.
    var summary: String {
        let width = switch bandwidth {
        case .fixed: "σ \(sigma)"
        case .perplexity: "perplexity \(perplexity)"
        case .distanceScale: "σ² = \(distanceScale)·mean d"
        }
        return "ν \(dcmWeight) υ \(lpmWeight), \(width), ρ \(rho) \(tiedScale ? "tied" : "unit") scale, "
            + "weights on \(entropyWeights.rawValue), LPM \(lpmDirection.rawValue), τ_in \(inputTemperature)"
    }
}
