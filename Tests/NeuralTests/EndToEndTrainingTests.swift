// The whole chain at once: encoder → linear classifier → cross-entropy, backward through all of
// it, SGD on the arena. If any backward or the optimiser were wrong, the loss would not fall.
import Foundation
import Testing
import Neural

/// Four classes of 8×8 RGB images that differ in structure, not in mean colour: horizontal
/// stripes, vertical stripes, a checkerboard (each with a random phase, so that no single pixel
/// tells the class) and a centred blob, under heavy noise, a random brightness offset and a
/// random contrast.
func synthetic(batch: Int, using rng: inout SeededGenerator) -> (images: Tensor, labels: [Int]) {
    let (size, channels) = (8, 3)
    let images = Tensor(zeros: [batch, size, size, channels])
    var labels: [Int] = []
    for b in 0..<batch {
        let label = Int(rng.next() % 4)
        labels.append(label)
        let offset = rng.nextNormal() * 0.5, contrast = 0.5 + rng.nextUniform(), phase = Int(rng.next() % 2)
        for y in 0..<size { for x in 0..<size {
            let pattern: Float
            switch label {
            case 0: pattern = (y + phase) % 2 == 0 ? 1 : -1
            case 1: pattern = (x + phase) % 2 == 0 ? 1 : -1
            case 2: pattern = (x + y + phase) % 2 == 0 ? 1 : -1
            default:
                let d = Float((x - 4) * (x - 4) + (y - 4) * (y - 4))
                pattern = d < 6 ? 1 : -1
            }
            for c in 0..<channels {
                images[((b * size + y) * size + x) * channels + c] = contrast * pattern + offset + rng.nextNormal() * 1.5
            }
        }}
    }
    return (images, labels)
}

@Suite struct EndToEndTrainingTests {
    @Test func supervisedTrainingDrivesTheLossDown() {
        var rng = SeededGenerator(seed: 2026)
        let arena = ParameterArena()
        let encoder = ResNetEncoder(EncoderConfig(inputChannels: 3, imageSize: 8, width: 8, blocksPerStage: [1, 1]),
                                    in: arena, rng: &rng)
        let classifier = Linear("classifier", in: arena, inFeatures: encoder.config.featureDimension, outFeatures: 4, rng: &rng)
        arena.seal()
        let model = Sequential([encoder, classifier])
        let optimiser = SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4)
        let gradient = Tensor(zeros: [0])

        var losses: [Float] = []
        let started = Date()
        for _ in 0..<300 {
            let (images, labels) = synthetic(batch: 32, using: &rng)
            arena.zeroGradients()
            let logits = model.forward(images, mode: .training)
            losses.append(SoftmaxCrossEntropy.loss(logits: logits, labels: labels, gradient: gradient))
            _ = model.backward(gradient)
            optimiser.step(arena)
        }
        let seconds = Date().timeIntervalSince(started)

        // Held-out accuracy with running statistics (inference mode).
        let (images, labels) = synthetic(batch: 256, using: &rng)
        let logits = model.forward(images, mode: .inference)
        let correct = (0..<256).filter { r in
            let row = (0..<4).map { logits[r * 4 + $0] }
            return row.firstIndex(of: row.max()!) == labels[r]
        }.count
        let first = losses.prefix(20).reduce(0, +) / 20, last = losses.suffix(20).reduce(0, +) / 20
        print("end-to-end: loss \(first) → \(last), held-out accuracy \(correct)/256, \(seconds) s")
        #expect(abs(losses[0] - log(4)) < 0.3, "an untrained classifier starts near ln 4")
        #expect(last < 0.3 * first)
        #expect(correct >= 220)
    }
}
