// The Generalized Learning Framework (Si, Wang, Qiang 2025): every self-supervised method's loss
// is an aligning part (pull the two views of an image together) plus a constraining part (keep
// the space from collapsing and give it structure):
//
//     L = L_align + Σ weight_c · L_constrain,c
//
// Both kinds are `LossPart`s: values that read the step's tensors (`StepTensors`) and add their
// weighted gradient into the step's gradient tensors. A method (Methods/) is a named choice of
// one aligning part, its constraining parts and the heads that produce what they read; ADC is one
// more constraining part, added to any method with its weights ν (DCM) and υ (LPM).

public enum PartKind: String, Sendable, Codable { case aligning, constraining }

public protocol LossPart: Sendable {
    /// Shown in progress lines and logs ("byol", "barlow.redundancy", "adc.dcm").
    var name: String { get }
    var kind: PartKind { get }
    /// Returns the part's value and adds `weight` · its gradient into `tensors`' gradient fields.
    func apply(to tensors: StepTensors, weight: Float) -> Float
}

/// A part with the weight the method gives it.
public struct WeightedPart: Sendable {
    public var part: any LossPart
    public var weight: Float

    public init(_ part: any LossPart, weight: Float = 1) {
        self.part = part
        self.weight = weight
    }
}
