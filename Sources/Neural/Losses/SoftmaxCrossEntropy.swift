// Softmax cross-entropy for supervised heads (the engine's end-to-end check, linear probes).
//   logits [N, K], labels [N] in 0..<K
//   loss = mean_n [ logsumexp(logits_n) − logits_n[label_n] ]
//   dlogits = (softmax(logits) − onehot(label)) / N
import Foundation

public enum SoftmaxCrossEntropy {
    /// Returns the mean loss and writes dL/dlogits into `gradient` (reshaped to the logits' shape).
    public static func loss(logits: Tensor, labels: [Int], gradient: Tensor) -> Float {
        precondition(logits.shape.count == 2 && logits.shape[0] == labels.count, "logits \(logits.shape) vs \(labels.count) labels")
        let (n, k) = (logits.shape[0], logits.shape[1])
        gradient.reshape(to: logits.shape)
        var total = 0.0
        for r in 0..<n {
            precondition(labels[r] >= 0 && labels[r] < k, "label \(labels[r]) outside 0..<\(k)")
            let z = logits.data + r * k, g = gradient.data + r * k
            var largest = -Float.infinity
            for j in 0..<k { largest = max(largest, z[j]) }
            var sum: Float = 0
            for j in 0..<k { g[j] = exp(z[j] - largest); sum += g[j] }
            total += Double(log(sum) + largest - z[labels[r]])
            for j in 0..<k { g[j] = g[j] / sum / Float(n) }
            g[labels[r]] -= 1 / Float(n)
        }
        return Float(total / Double(n))
    }
}
