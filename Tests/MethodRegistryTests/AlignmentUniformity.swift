// A method written only for the registry's test, as a new method is written: its loss file
// (AlignmentUniformityLoss.swift), this file, and one line, `MethodRegistry.register(...)`.
//   aligning:     alignment, mean ‖ẑ_i − ẑ_i'‖² over the pairs
//   constraining: uniformity, log mean exp(−2‖ẑ_i − ẑ_j‖²) over the batch
import GLF
import Neural

struct AlignmentUniformity: Method {
    static let name = MethodName(registering: "alignment-uniformity")
    var hiddenDimension = 64
    var projectionDimension = 32

    init(constants: MethodConstants) {
        hiddenDimension = constants.hidden ?? hiddenDimension
        projectionDimension = constants.projection ?? projectionDimension
    }

    func projector(featureDimension: Int) -> HeadConfig {
        HeadConfig(inputDimension: featureDimension, hiddenDimension: hiddenDimension, outputDimension: projectionDimension)
    }
    var parts: [WeightedPart] { [WeightedPart(Terms())] }

    struct Terms: LossPart {
        func apply(to t: StepTensors, weight: Float) -> [LossValue] {
            let values = AlignmentUniformityLoss().loss(t.unitProjections, aligningScale: weight, constrainingScale: weight,
                                                        gradient: t.unitProjectionGradient)
            return [LossValue(name: "alignment", kind: .aligning, value: values.aligning, weight: weight),
                    LossValue(name: "uniformity", kind: .constraining, value: values.constraining, weight: weight)]
        }
    }
}
