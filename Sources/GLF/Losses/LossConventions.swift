// How every loss term in GLF is written (solo-learn's `solo/losses/<method>.py`, in llm.c's style):
//
//   a term is a small value type with the constants it needs (λ, τ, ε, ...) and one method
//       func loss(<inputs as Tensors>, gradientScale: Float, <one gradient Tensor per input that
//                 receives a gradient>) -> Float
//   that returns the term's value (unscaled) and ADDS gradientScale · ∂L/∂input into each given
//   gradient tensor (same shape as its input; the caller shapes and zeroes them once per step).
//   Accumulating lets a method sum its aligning part, its constraining part and ADC's terms into
//   one gradient without temporaries, exactly as layers accumulate parameter gradients.
//
// Inputs are [B, D] matrices (one row per image of one view) unless a term says otherwise;
// "stop-gradient" inputs simply have no gradient argument. Every term has a finite-difference
// check of its gradient and a property test in Tests/GLFTests.

/// The values of a loss computed in one pass but split the GLF way (Barlow Twins, NT-Xent), each
/// already multiplied by the loss's own constants.
public struct SplitLoss: Sendable, Equatable {
    public var aligning: Float
    public var constraining: Float
    public var total: Float { aligning + constraining }

    public init(aligning: Float, constraining: Float) {
        self.aligning = aligning
        self.constraining = constraining
    }
}
