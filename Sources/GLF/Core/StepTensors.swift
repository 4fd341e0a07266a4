// What the loss parts of one training step read and write. Every batch holds view 1's rows, then
// view 2's ([2B, ·]); `view(_:of:)` gives one view's rows without copying.
//
//   projections   z   [2B, D]  the projector's outputs (what ADC and most methods compare)
//   predictions   p   [2B, D]  BYOL's predictor outputs (p = q(z)); nil for other methods
//   targets       t   [2B, D]  the EMA target network's projections: no gradient
//   scores        s   [2B, K]  SwAV's prototype scores; nil for other methods
//   prior         u   [B, P]   the input-space prior for ADC's LPM (one row per image): no gradient
//
// Each tensor that receives a gradient has a matching gradient tensor of its shape, zeroed by the
// trainer before the parts run; parts only add into it.
import Neural

public final class StepTensors {
    public let batch: Int
    public var projections: Tensor
    public let projectionGradient = Tensor(zeros: [0])
    public var predictions: Tensor?
    public let predictionGradient = Tensor(zeros: [0])
    public var targets: Tensor?
    public var scores: Tensor?
    public let scoreGradient = Tensor(zeros: [0])
    public var prior: Tensor?
    /// Values of every part in the last `LossParts.apply`, by name (for progress lines).
    public internal(set) var values: [(name: String, value: Float)] = []

    public init(batch: Int, projections: Tensor) {
        self.batch = batch
        self.projections = projections
    }

    /// Shapes every gradient like its tensor and zeroes it.
    public func resetGradients() {
        for (tensor, gradient) in [(projections, projectionGradient), (predictions, predictionGradient), (scores, scoreGradient)] {
            guard let tensor else { continue }
            gradient.reshape(to: tensor.shape)
            gradient.fill(0)
        }
    }

    /// Rows of view v (0 or 1) of a [2B, ·] tensor, as a view into its memory.
    public func view(_ v: Int, of tensor: Tensor) -> Tensor {
        precondition(tensor.shape[0] == 2 * batch, "\(tensor.shape) is not two views of \(batch)")
        let width = tensor.count / tensor.shape[0]
        return Tensor(viewing: tensor.data + v * batch * width, shape: [batch] + tensor.shape.dropFirst())
    }
}

/// Applies a method's weighted parts in order and records their values.
public func applyParts(_ parts: [WeightedPart], to tensors: StepTensors) -> Float {
    tensors.resetGradients()
    var total: Float = 0
    tensors.values = []
    for weighted in parts {
        let value = weighted.part.apply(to: tensors, weight: weighted.weight)
        tensors.values.append((weighted.part.name, value))
        total += weighted.weight * value
    }
    return total
}
