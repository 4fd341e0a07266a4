// The daemon's training defaults are the engine's: the `training.adc_*` keys' defaults describe
// AdaptiveDistributionCalibration() exactly, so glfd on its defaults trains the ADC the quality
// report measured (the key table cannot import GLF, so the two are compared here).
import Configuration
import GLF
import Testing

@Suite struct TrainingDefaultsTests {
    @Test func adcKeysDefaultToTheEnginesADC() {
        let t = GLFDConfiguration.defaults().training
        let adc = AdaptiveDistributionCalibration()
        #expect(t.adc)
        #expect(t.adcBandwidth.rawValue == adc.bandwidth.rawValue)
        #expect(Float(t.adcPerplexity) == adc.perplexity && Float(t.adcDistanceScale) == adc.distanceScale)
        #expect(Float(t.adcSigma) == adc.sigma && Float(t.adcRho) == adc.rho)
        #expect((t.adcScale == .tied) == adc.tiedScale)
        #expect(t.adcEntropyWeights.rawValue == adc.entropyWeights.rawValue)
        #expect(t.lpmDirection.rawValue == adc.lpmDirection.rawValue)
        #expect(Float(t.adcInputTemperature) == adc.inputTemperature)
        #expect(Float(t.adcDCMWeight) == adc.dcmWeight && Float(t.adcLPMWeight) == adc.lpmWeight)
        // Every choice the keys offer is one the engine knows.
        #expect(Set(GLFDConfiguration.Training.ADCBandwidth.allCases.map(\.rawValue)) == Set(ADCBandwidth.allCases.map(\.rawValue)))
        #expect(Set(GLFDConfiguration.Training.ADCEntropyWeights.allCases.map(\.rawValue)) == Set(ADCEntropyWeighting.allCases.map(\.rawValue)))
        #expect(Set(GLFDConfiguration.Training.LPMDirection.allCases.map(\.rawValue)) == Set(LPMDirection.allCases.map(\.rawValue)))
    }
}
