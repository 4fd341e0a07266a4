// SwAV's prototypes: K unit-norm vectors C [K, D]; the scores of unit projections ẑ [N, D] are
//   forward:  s = ẑ · Cᵀ                [N, K]
//   backward: dC += dsᵀ · ẑ;  dẑ = ds · C
// After every optimiser step the rows are renormalised (`normalize()`); for the first steps the
// trainer does not step them at all, as SwAV does.
import Neural

public final class Prototypes: Layer {
    public let linear: Linear

    public init(_ name: String, in arena: ParameterArena, dimension: Int, count: Int, rng: inout SeededGenerator) {
        linear = Linear(name, in: arena, inFeatures: dimension, outFeatures: count, bias: false, rng: &rng)
        normalize()
    }

    public func forward(_ input: Tensor, mode: ForwardMode) -> Tensor { linear.forward(input, mode: mode) }
    public func backward(_ outputGradient: Tensor) -> Tensor { linear.backward(outputGradient) }

    /// Gives every prototype unit length.
    public func normalize() {
        let (k, d) = (linear.outFeatures, linear.inFeatures)
        for r in 0..<k {
            let row = linear.weight.values + r * d
            let norm = max(BLAS.norm(count: d, row), 1e-12)
            BLAS.scale(count: d, alpha: 1 / norm, x: row)
        }
    }
}
