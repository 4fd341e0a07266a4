// The Generalized Learning Framework (Si, Wang, Qiang 2025): every self-supervised method's loss
// is an aligning part (pull the two views of an image together) plus a constraining part (keep
// the space from collapsing and give it structure):
//
//     L = L_align + Σ weight_c · L_constrain,c
//
// Both kinds are `LossPart`s: values that read the step's tensors (`StepTensors`) and add their
// weighted gradient into the step's gradient tensors. A method (Methods/) is a named choice of
// its parts and of the heads that produce what they read; ADC is one more constraining part,
// added to any method with its weights ν (DCM) and υ (LPM).
//
// A part reports one value per term it computes: Barlow Twins' two terms share one
// cross-correlation matrix, so one part computes both and reports each under its own kind.

public enum PartKind: String, Sendable, Codable { case aligning, constraining }

/// One term's value in a step, unweighted.
public struct LossValue: Sendable, Equatable {
    public var name: String
    public var kind: PartKind
    public var value: Float
    /// What the term adds to the total (value × the part's weight).
    public var weighted: Float
    /// ‖∂(weighted term)/∂z‖ over the batch, z the projections, when the part measures it (ADC's
    /// terms do): the trainer divides it by the method's to report the term's gradient share.
    public var gradientNorm: Float?

    public init(name: String, kind: PartKind, value: Float, weight: Float = 1, gradientNorm: Float? = nil) {
        self.name = name
        self.kind = kind
        self.value = value
        self.weighted = value * weight
        self.gradientNorm = gradientNorm
    }
}

public protocol LossPart: Sendable {
    /// Returns the values of the part's terms and adds `weight` · their gradient into `tensors`.
    func apply(to tensors: StepTensors, weight: Float) -> [LossValue]
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
