// A tap between two layers, so that a loss can read an inner representation and send its
// gradient back from there: glfd serves the encoder's features, not the projector's outputs, and
// the compatibility term (GLF's TargetInfoNCE) works on those.
//   forward:  y = x [N, F]; the tap keeps x (valid until the next forward) and forgets any
//             extra gradient set for an earlier pass
//   backward: dx = dy + extra, extra set by the caller between forward and backward (or none)
public final class FeatureTap: Layer {
    /// x of the last forward.
    public private(set) var features = Tensor(zeros: [0])
    /// ∂(loss on the features)/∂x for this pass, shaped like `features`; nil adds nothing.
    public var extraGradient: Tensor?
    private let inputGradient = Tensor(zeros: [0])

    public init() {}

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        features = x
        extraGradient = nil
        return x
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let extra = extraGradient else { return dy }
        precondition(extra.count == dy.count, "tap: extra gradient \(extra.shape) vs \(dy.shape)")
        inputGradient.reshape(to: dy.shape)
        inputGradient.copy(from: dy)
        BLAS.axpy(count: extra.count, alpha: 1, x: extra.data, y: inputGradient.data)
        return inputGradient
    }
}
