// Adaptive Distribution Calibration as a constraining part that adds to any method: DCM (weight
// ν) and LPM (weight υ) on each view's unit projections, with the same input-space prior for both
// views (π and the anchor weights depend only on the images). The two views' terms are averaged.
import Neural

public struct ADCPart: LossPart {
    public var calibration: AdaptiveDistributionCalibration

    public init(_ calibration: AdaptiveDistributionCalibration = AdaptiveDistributionCalibration()) {
        self.calibration = calibration
    }

    public func apply(to t: StepTensors, weight: Float) -> [LossValue] {
        let prior = t.prior.map { calibration.prior(from: $0) }
        let (z, g) = (t.unitProjections, t.unitProjectionGradient)
        var dcm: Float = 0, lpm: Float = 0
        for v in 0..<2 {
            let report = calibration.loss(projections: t.view(v, of: z), prior: prior, gradientScale: weight / 2,
                                          gradient: t.view(v, of: g))
            dcm += report.dcm / 2
            lpm += report.lpm / 2
        }
        var values = [LossValue(name: "adc.dcm", kind: .constraining, value: dcm, weight: weight * calibration.dcmWeight)]
        if prior != nil {
            values.append(LossValue(name: "adc.lpm", kind: .constraining, value: lpm, weight: weight * calibration.lpmWeight))
        }
        return values
    }
}
