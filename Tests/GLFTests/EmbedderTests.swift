import Testing
import GLF
import Neural

@Suite struct EmbedderTests {
    @Test(arguments: [5, 8, 11])
    func embeddingsAreTheEncodersInferenceOutput(count: Int) {
        let config = EncoderConfig(inputChannels: 3, imageSize: 8, width: 4, blocksPerStage: [1, 1])
        let normalization = ImageNormalization(mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3])
        func build(_ arena: ParameterArena) -> Layer {
            var rng = SeededGenerator(seed: 3)
            return ResNetEncoder(config, in: arena, rng: &rng)
        }
        // Batches of 4 over 2 workers: counts that fill, split and pad the last batch.
        let embedder = Embedder(workers: 2, batch: 4, normalization: normalization, build: build)
        var rng = SeededGenerator(seed: 9)
        let pixels = (0..<(count * 8 * 8 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let features = embedder.embed(pixels, count: count, height: 8, width: 8, channels: 3)

        let arena = ParameterArena()
        let encoder = build(arena)
        arena.seal()
        let images = Tensor(zeros: [0])
        pixels.withUnsafeBufferPointer { normalization.write($0, images: count, height: 8, width: 8, channels: 3, into: images) }
        #expect(abs(images[1] - (Float(pixels[1]) / 255 - 0.4) / 0.25) < 1e-6)
        let reference = encoder.forward(images, mode: .inference)
        #expect(features.shape == reference.shape)
        #expect(zip(features.array, reference.array).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
    }
}
