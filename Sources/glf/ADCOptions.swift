// ADC's settings as command-line options, shared by `glf train` and `glf loss`. Every option left
// out takes the recipe's (glfd's), so the defaults live in one place.
import ArgumentParser
import GLF

struct ADCOptions: ParsableArguments {
    @Option(name: .customLong("adc-dcm"), help: "ν, the weight of DCM.") var dcmWeight: Float?
    @Option(name: .customLong("adc-lpm"), help: "υ, the weight of LPM.") var lpmWeight: Float?
    @Option(name: .customLong("adc-bandwidth"),
            help: "How DCM's per-anchor σ_i is set each step: perplexity (bisection), distance-scale (σ_i² = factor · mean distance), or fixed.")
    var bandwidth: ADCBandwidth?
    @Option(name: .customLong("adc-perplexity"), help: "Target perplexity of each anchor's Gaussian (--adc-bandwidth perplexity).")
    var perplexity: Float?
    @Option(name: .customLong("adc-distance-scale"), help: "σ_i² over the anchor's mean squared distance (--adc-bandwidth distance-scale).")
    var distanceScale: Float?
    @Option(name: .customLong("adc-sigma"), help: "σ of DCM's Gaussian target (--adc-bandwidth fixed).") var sigma: Float?
    @Option(name: .customLong("adc-rho"), help: "ρ, the Student-t's degrees of freedom (> 2 with a tied scale).") var rho: Float?
    @Option(name: .customLong("adc-t-scale"), help: "tied (s_i² = σ_i²(ρ−2)/ρ) or unit (s = 1).") var scale: String?
    @Option(name: .customLong("adc-entropy-weights"), help: "Which terms the 1/H(π) anchor weights multiply.")
    var entropyWeights: ADCEntropyWeighting?
    @Option(name: .customLong("adc-lpm-direction"), help: "prior-first: KL(π ‖ q); model-first: KL(q ‖ π).") var lpmDirection: LPMDirection?
    @Option(name: .customLong("adc-tau-in"), help: "τ_in, the temperature of LPM's input-space neighbourhoods.") var inputTemperature: Float?

    func validate() throws { _ = try calibration() }

    /// The settings given, on top of the defaults; a bad value is a ValidationError naming it.
    func calibration() throws -> AdaptiveDistributionCalibration {
        var c = TrainingConfig().adc ?? AdaptiveDistributionCalibration()
        c.dcmWeight = dcmWeight ?? c.dcmWeight
        c.lpmWeight = lpmWeight ?? c.lpmWeight
        c.bandwidth = bandwidth ?? c.bandwidth
        c.perplexity = perplexity ?? c.perplexity
        c.distanceScale = distanceScale ?? c.distanceScale
        c.sigma = sigma ?? c.sigma
        c.rho = rho ?? c.rho
        if let scale {
            guard ["tied", "unit"].contains(scale) else { throw ValidationError("--adc-t-scale \(scale): tied or unit") }
            c.tiedScale = scale == "tied"
        }
        c.entropyWeights = entropyWeights ?? c.entropyWeights
        c.lpmDirection = lpmDirection ?? c.lpmDirection
        c.inputTemperature = inputTemperature ?? c.inputTemperature
        do { try c.validate() } catch { throw ValidationError(error.message) }
        return c
    }
}

// The engine's choices are the command line's: their cases are the values an option accepts and
// its help lists.
extension MethodName: ExpressibleByArgument {}
extension OptimiserConfig.Kind: ExpressibleByArgument {}
extension ADCBandwidth: ExpressibleByArgument {}
extension ADCEntropyWeighting: ExpressibleByArgument {}
extension LPMDirection: ExpressibleByArgument {}
