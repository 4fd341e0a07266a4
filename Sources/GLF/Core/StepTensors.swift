// What the loss parts of one training step read and write. Every batch holds view 1's rows, then
// view 2's ([2B, ·]); `view(_:of:)` gives one view's rows without copying.
//
//   projections   z   [2B, D]  the projector's outputs (what ADC and most methods compare)
//   unitProjections ẑ [2B, D]  z with unit rows, for parts defined on the sphere (NT-Xent, ADC);
//                              their gradient flows back into z's through the normalisation
//   predictions   p   [2B, D]  BYOL's predictor outputs (p = q(z)); nil for other methods
//   targets       t   [2B, D]  the EMA target network's projections: no gradient
//   scores        s   [2B, K]  SwAV's prototype scores; nil for other methods
//   queueScores       [2][Q, K] SwAV: each view's queue of past projections, scored by the current
//                              prototypes (no gradient); nil until the queue is full
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
    public var queueScores: [Tensor]?
    public var prior: Tensor?
    private let normalize = L2Normalize()
    private var unitProjectionsCache: Tensor?
    private let unitGradient = Tensor(zeros: [0])
    /// Every term's value in this step's `applyParts` calls (for progress lines and logs).
    public internal(set) var values: [LossValue] = []

    public init(batch: Int, projections: Tensor = Tensor(zeros: [0])) {
        self.batch = batch
        self.projections = projections
    }

    /// Starts a step: new projections, nothing else yet.
    public func begin(projections: Tensor) {
        self.projections = projections
        predictions = nil
        targets = nil
        scores = nil
        queueScores = nil
        prior = nil
        unitProjectionsCache = nil
        values = []
    }

    /// ẑ = z / ‖z‖ per row, computed on first use in a step.
    public var unitProjections: Tensor {
        if let cached = unitProjectionsCache { return cached }
        let unit = normalize.forward(projections, mode: .training)
        unitProjectionsCache = unit
        unitGradient.reshape(to: unit.shape)
        unitGradient.fill(0)
        return unit
    }

    /// Where parts add dL/dẑ; folded into `projectionGradient` when the parts are done.
    public var unitProjectionGradient: Tensor {
        _ = unitProjections
        return unitGradient
    }

    /// Moves dL/dẑ, back through the normalisation, into dL/dz (dL/dẑ is zero afterwards, so a
    /// second fold adds only what parts added since). The trainer folds once the method's parts
    /// and the heads that read ẑ (SwAV's prototypes) have added their gradients, and again after ADC.
    public func foldUnitGradient() {
        guard unitProjectionsCache != nil else { return }
        let dz = normalize.backward(unitGradient)
        BLAS.axpy(count: dz.count, alpha: 1, x: dz.data, y: projectionGradient.data)
        unitGradient.fill(0)
    }

    /// ‖dL/dz‖ for a gradient g [2B, D] with respect to ẑ, taken back through the normalisation.
    public func projectionGradientNorm(ofUnitGradient g: Tensor) -> Float {
        _ = unitProjections
        return BLAS.norm(count: g.count, normalize.backward(g).data)
    }

    /// Shapes every gradient like its tensor and zeroes it (dL/dẑ is zeroed when ẑ is computed).
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

/// Applies weighted parts in order and records their terms in `values`; returns the sum of their
/// weighted values. Gradients are added into `tensors`' gradient fields (call `resetGradients()`
/// once per step first); dL/dẑ is not yet folded into dL/dz.
public func applyParts(_ parts: [WeightedPart], to tensors: StepTensors) -> Float {
    let values = parts.flatMap { $0.part.apply(to: tensors, weight: $0.weight) }
    tensors.values += values
    return values.reduce(0) { $0 + $1.weighted }
}
