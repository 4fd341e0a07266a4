import Foundation
import GLFDTesting
import Neural
import Testing

/// A layer wrapper so the gradient checker can drive a loss: y = [loss] for fixed labels.
final class CrossEntropyProbe: Layer {
    let labels: [Int]
    let gradient = Tensor(zeros: [0])
    init(labels: [Int]) { self.labels = labels }
    func forward(_ logits: Tensor, mode: ForwardMode) -> Tensor {
        Tensor(shape: [1], values: [SoftmaxCrossEntropy.loss(logits: logits, labels: labels, gradient: gradient)])
    }
    func backward(_ dy: Tensor) -> Tensor {
        let dx = Tensor(zeros: gradient.shape)
        for i in 0..<dx.count { dx[i] = gradient[i] * dy[0] }
        return dx
    }
}

@Suite struct SoftmaxCrossEntropyTests {
    @Test func gradientMatchesFiniteDifferences() {
        let report = GradientCheck().run(CrossEntropyProbe(labels: [0, 3, 2, 3, 1]), arena: sealedEmptyArena(),
                                         input: randomTensor([5, 4], seed: 1, std: 2))
        #expect(report.worstError < 1e-2, "\(report)")
    }

    @Test func uniformLogitsGiveLogK() {
        let g = Tensor(zeros: [0])
        let loss = SoftmaxCrossEntropy.loss(logits: Tensor(zeros: [3, 10]), labels: [0, 4, 9], gradient: g)
        #expect(abs(loss - log(10)) < 1e-6)
    }

    @Test func lossIsNonNegativeAndShiftInvariant() {
        let g = Tensor(zeros: [0])
        let logits = randomTensor([6, 5], seed: 2, std: 4)
        let labels = [0, 1, 2, 3, 4, 0]
        let loss = SoftmaxCrossEntropy.loss(logits: logits, labels: labels, gradient: g)
        for i in 0..<logits.count { logits[i] += 100 }
        let shifted = SoftmaxCrossEntropy.loss(logits: logits, labels: labels, gradient: g)
        #expect(loss >= 0)
        #expect(abs(loss - shifted) < 1e-4)
    }
}
