// Adaptive Distribution Calibration as a constraining part that adds to any method: DCM (weight
// ν) and LPM (weight υ) on each view's unit projections, with the same input-space prior for both
// views (π and the anchor weights depend only on the images). The two views' terms are averaged.
//
// Each term also reports the norm of its weighted gradient with respect to the projections z
// (through the normalisation), so the trainer can say what share of the method's gradient ADC
// adds: the sign that a term is alive (method.md §3).
import Neural

public struct ADCPart: LossPart {
    public var calibration: AdaptiveDistributionCalibration

    public init(_ calibration: AdaptiveDistributionCalibration = AdaptiveDistributionCalibration()) {
        self.calibration = calibration
    }

    public func apply(to t: StepTensors, weight: Float) -> [LossValue] {
        let prior = t.prior.map { calibration.prior(from: $0) }
        let z = t.unitProjections
        // Each term into a gradient of its own [2B, D], measured, then added to dL/dẑ.
        let (dcmGradient, lpmGradient) = (Tensor(zeros: z.shape), Tensor(zeros: z.shape))
        var dcm: Float = 0, lpm: Float = 0
        for v in 0..<2 {
            let report = calibration.loss(projections: t.view(v, of: z), prior: prior, gradientScale: weight / 2,
                                          gradients: (t.view(v, of: dcmGradient), t.view(v, of: lpmGradient)))
            dcm += report.dcm / 2
            lpm += report.lpm / 2
        }
        let unitGradient = t.unitProjectionGradient
        var values = [LossValue(name: "adc.dcm", kind: .constraining, value: dcm, weight: weight * calibration.dcmWeight,
                                gradientNorm: t.projectionGradientNorm(ofUnitGradient: dcmGradient))]
        BLAS.axpy(count: z.count, alpha: 1, x: dcmGradient.data, y: unitGradient.data)
        if prior != nil {
            values.append(LossValue(name: "adc.lpm", kind: .constraining, value: lpm, weight: weight * calibration.lpmWeight,
                                    gradientNorm: t.projectionGradientNorm(ofUnitGradient: lpmGradient)))
            BLAS.axpy(count: z.count, alpha: 1, x: lpmGradient.data, y: unitGradient.data)
        }
        return values
    }
}
