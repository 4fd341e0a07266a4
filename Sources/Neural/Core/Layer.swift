// The layer contract, in llm.c's spirit: `forward` keeps what `backward` needs; `backward` takes
// the gradient of the loss with respect to the output, returns the gradient with respect to the
// input, and *accumulates* (+=) into its parameters' gradients in the arena.
//
// Outputs and input gradients live in buffers the layer owns and reuses from step to step: a
// tensor returned by `forward` is valid until the next `forward` of the same layer. Two views of
// one image therefore travel through the network as one batch of 2·B rows (one sgemm per layer,
// not two), with `ForwardMode.views` keeping batch-norm statistics per view.

public struct ForwardMode: Sendable, Equatable {
    /// Training: batch statistics, caches for backward. Inference: running statistics.
    public var isTraining: Bool
    /// Batch-norm statistics are computed over each of this many equal slices of the batch
    /// separately, as if each view had gone through the network on its own.
    public var views: Int

    public static let inference = ForwardMode(isTraining: false, views: 1)
    public static let training = ForwardMode(isTraining: true, views: 1)
    public static func training(views: Int) -> ForwardMode { ForwardMode(isTraining: true, views: views) }
}

public protocol Layer: AnyObject {
    /// x → y.
    func forward(_ input: Tensor, mode: ForwardMode) -> Tensor
    /// dL/dy → dL/dx, accumulating dL/dθ into the arena's gradients.
    func backward(_ outputGradient: Tensor) -> Tensor
}

/// Layers applied one after the other.
public final class Sequential: Layer {
    public let layers: [Layer]

    public init(_ layers: [Layer]) { self.layers = layers }

    public func forward(_ input: Tensor, mode: ForwardMode) -> Tensor {
        layers.reduce(input) { x, layer in layer.forward(x, mode: mode) }
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        layers.reversed().reduce(outputGradient) { dy, layer in layer.backward(dy) }
    }
}
