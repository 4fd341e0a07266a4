// InfoNCE against fixed targets: each row's features should pick out, among the batch's target
// rows, the one of the same image. The targets receive no gradient. Two terms use it:
//   - compatibility with the previous model version (issue 14, after BCT: Shen et al., CVPR 2020,
//     "Towards backward-compatible representation learning"): the new encoder's features h of a
//     view against the previous version's features of the same view, so that queries embedded by
//     the new version can search a catalog the previous version embedded;
//   - small crops (multi-crop, after SwAV and DINO, whose small crops learn from targets the large
//     views give): the projections of a small crop against the large views' unit projections.
//
//   h [B, F]  the rows that learn, raw                        — receive a gradient
//   a [B, F]  the targets, unit rows                          — no gradient
//
//   ĥ_i  = h_i / ‖h_i‖                       (L2Normalize)
//   ℓ_ij = ĥ_i · a_j / τ            [B, B]   (one sgemm)
//   L    = mean_i −log softmax_j(ℓ_i·)_i     (each image its own class)
//
// For compatibility: BCT trains the new embedding under the old model's classifier. Without
// labels, the old features of the batch are that classifier, one class per image. The term asks
// the new features to pick out the old features of the same input, not to equal them, so the new
// model keeps room to learn (an L2 pull to the old features would hold it where it was). The same
// view through both models, not the view against the old features of the un-augmented image (what
// a catalog holds): that made the term a second contrastive task on the backbone's features, which
// cost accuracy and did not raise compatibility (README, "Serving speed").
//
// Backward: G = ∂L/∂ℓ = (softmax_j(ℓ_i·) − 1[j = i]) / B,  ∂L/∂ĥ = G a / τ (one sgemm), then back
// through the normalisation.
import Foundation
import Neural

public struct TargetInfoNCE: Sendable {
    public var temperature: Float

    public init(temperature: Float = 0.1) { self.temperature = temperature }

    /// Returns L and adds gradientScale · ∂L/∂h into `gradient` [B, F].
    public func loss(features h: Tensor, targets a: Tensor, gradientScale: Float, gradient: Tensor) -> Float {
        precondition(h.shape.count == 2 && h.shape == a.shape, "target InfoNCE: features \(h.shape) vs targets \(a.shape)")
        precondition(gradient.shape == h.shape, "target InfoNCE: gradient \(gradient.shape) vs features \(h.shape)")
        let (batch, width) = (h.shape[0], h.shape[1])
        guard batch > 0 else { return 0 }
        let normalize = L2Normalize()
        let unit = normalize.forward(h, mode: .inference)
        let logits = Tensor(zeros: [batch, batch])
        // ℓ [B, B] = ĥ aᵀ / τ
        BLAS.gemm(transposeB: true, m: batch, n: batch, k: width, alpha: 1 / temperature, a: unit.data, lda: width,
                  b: a.data, ldb: width, c: logits.data, ldc: batch)
        var total = 0.0
        for i in 0..<batch {
            // Row i becomes row i of G = (softmax − 1[j = i]) · scale / B, in place.
            let row = logits.data + i * batch
            var largest = -Float.infinity
            for j in 0..<batch { largest = max(largest, row[j]) }
            var sum = 0.0
            for j in 0..<batch {
                let e = exp(row[j] - largest)
                sum += Double(e)
                if j == i { total -= Double(row[j] - largest) }
                row[j] = e
            }
            total += log(sum)
            BLAS.scale(count: batch, alpha: gradientScale / Float(Double(batch) * sum), x: row)
            row[i] -= gradientScale / Float(batch)
        }
        guard gradientScale != 0 else { return Float(total / Double(batch)) }
        // ∂L/∂ĥ [B, F] = G a / τ, then ∂L/∂h through the normalisation.
        let unitGradient = Tensor(zeros: [batch, width])
        BLAS.gemm(m: batch, n: width, k: batch, alpha: 1 / temperature, a: logits.data, lda: batch, b: a.data, ldb: width,
                  c: unitGradient.data, ldc: width)
        let dh = normalize.backward(unitGradient)
        BLAS.axpy(count: dh.count, alpha: 1, x: dh.data, y: gradient.data)
        return Float(total / Double(batch))
    }
}
