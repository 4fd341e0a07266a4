// SwAV's queue: per view, the unit projections of past steps, newest first. Once full, each view's
// queue is scored by the current prototypes before the parts run, and Sinkhorn-Knopp computes the
// codes over [batch; queue]. Saved in checkpoints (`queue.safetensors`), so a resumed run
// continues with the same queue.
//
//   prepare:  queueScores[v] = queue[v] · Cᵀ      [Q, K], no gradient (nil until the queue is full)
//   record:   queue[v] ← [ẑ_v; queue[v]] cut to Q rows
import Foundation
import Neural

public final class SwAVQueue: MethodState {
    let length: Int
    let batch: Int
    private(set) var queues: [Tensor]
    /// Rows filled so far (up to `length`).
    private(set) var filled = 0

    init(length: Int, batch: Int, dimension: Int) {
        (self.length, self.batch) = (length, batch)
        queues = [Tensor(zeros: [length, dimension]), Tensor(zeros: [length, dimension])]
    }

    public func prepare(_ tensors: StepTensors, heads: [MethodHead]) {
        guard filled >= length, let layer = heads.first(where: { $0.name == "prototypes" })?.model.replicas[0] as? Prototypes else { return }
        let (k, d) = (layer.linear.outFeatures, layer.linear.inFeatures)
        tensors.queueScores = queues.map { queue in
            let scores = Tensor(zeros: [length, k])
            BLAS.gemm(transposeB: true, m: length, n: k, k: d, a: queue.data, lda: d, b: layer.linear.weight.values, ldb: d,
                      c: scores.data, ldc: k)
            return scores
        }
    }

    public func record(_ tensors: StepTensors) {
        let unit = tensors.unitProjections
        let d = unit.lastDimension
        let kept = max(0, length - batch), fresh = min(batch, length)
        for v in 0..<2 {
            let q = queues[v].data
            memmove(q + fresh * d, q, kept * d * MemoryLayout<Float>.size)   // the regions overlap
            q.update(from: unit.data + v * batch * d, count: fresh * d)
        }
        filled = min(length, filled + batch)
    }

    public var fileName: String { "queue" }

    public func saved() -> (tensors: [NamedTensor], metadata: [String: String])? {
        (queues.enumerated().map { NamedTensor(name: "view\($0.offset + 1)", shape: $0.element.shape, values: $0.element.array) },
         ["filled": String(filled)])
    }

    public func restore(tensors: [NamedTensor], metadata: [String: String]) throws(WeightFileError) {
        guard tensors.count == 2, tensors.allSatisfy({ $0.shape == queues[0].shape }) else {
            throw WeightFileError(.invalidConfig, "the saved queue does not fit this method's queue of \(length) × \(queues[0].lastDimension)")
        }
        queues = tensors.map { Tensor(shape: $0.shape, values: $0.values) }
        filled = min(length, Int(metadata["filled"] ?? "") ?? 0)
    }
}
