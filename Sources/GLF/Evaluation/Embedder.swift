// Features of un-augmented images: what kNN evaluation, `glf embed` and (later) the daemon's
// index use, and the "frozen encoder" prior of ADC's LPM. Pixels are normalised exactly as the
// augmentation normalises its views (the recipe's per-channel mean and std), then the encoder runs
// in inference mode, one replica per worker, a batch at a time.
import Foundation
import Neural

public struct ImageNormalization: Sendable, Equatable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == std.count && !mean.isEmpty)
        self.mean = mean
        self.std = std
    }

    public init(_ recipe: AugmentationRecipe) { self.init(mean: recipe.view1.mean, std: recipe.view1.std) }

    /// UInt8 HWC images (1 or `mean.count` channels; 1-channel sources are replicated) →
    /// [N, H, W, mean.count] floats (p/255 − mean)/std, written into `output`.
    public func write(_ pixels: UnsafeBufferPointer<UInt8>, images: Int, height: Int, width: Int, channels: Int, into output: Tensor) {
        let c = mean.count
        precondition(channels == c || channels == 1, "\(channels)-channel images for a \(c)-channel model")
        precondition(pixels.count == images * height * width * channels)
        output.reshape(to: [images, height, width, c])
        let scale = std.map { 1 / (255 * $0) }, shift = zip(mean, std).map { -$0 / $1 }
        for p in 0..<(images * height * width) {
            for j in 0..<c {
                let value = Float(pixels[p * channels + (channels == 1 ? 0 : j)])
                output.data[p * c + j] = value * scale[j] + shift[j]
            }
        }
    }
}

public final class Embedder {
    public let model: ReplicatedModel
    public let normalization: ImageNormalization
    public let batch: Int
    private let images = Tensor(zeros: [0])

    /// `build` makes one encoder (into the arena it is given); `load` then fills replica 0's arena.
    public init(workers: Int, batch: Int = 256, normalization: ImageNormalization,
                build: (ParameterArena) -> Layer) {
        precondition(batch % workers == 0, "batch \(batch) must split over \(workers) workers")
        model = ReplicatedModel(replicas: workers, workers: workers, build: build)
        self.normalization = normalization
        self.batch = batch
    }

    /// Features [N, F] of N UInt8 HWC images.
    /// `progress` hears the images embedded so far after each batch.
    public func embed(_ pixels: [UInt8], count: Int, height: Int, width: Int, channels: Int,
                      progress: (Int) -> Void = { _ in }) -> Tensor {
        var features: Tensor?
        let perImage = height * width * channels
        pixels.withUnsafeBufferPointer { all in
            for start in stride(from: 0, to: count, by: batch) {
                let n = min(batch, count - start)
                // Pad the last batch to a multiple of the replicas (inference rows are independent).
                let padded = (n + model.replicas.count - 1) / model.replicas.count * model.replicas.count
                let slice = UnsafeBufferPointer(rebasing: all[(start * perImage)..<((start + n) * perImage)])
                normalization.write(slice, images: n, height: height, width: width, channels: channels, into: images)
                if padded > n {
                    let filled = Tensor(zeros: [padded] + images.shape.dropFirst())
                    filled.data.update(from: images.data, count: images.count)
                    images.reshape(to: filled.shape)
                    images.copy(from: filled)
                }
                let y = model.forward(images, mode: .inference)
                let f = y.lastDimension
                if features == nil { features = Tensor(zeros: [count, f]) }
                features!.data.advanced(by: start * f).update(from: y.data, count: n * f)
                progress(start + n)
            }
        }
        return features ?? Tensor(zeros: [0, 0])
    }
}

extension Embedder {
    /// An embedder for the encoder saved in a model directory (`glf train --out`, or a published
    /// version): its config, its weights (the projector's are skipped) and, when the directory holds
    /// a training state, the normalisation its views were trained with (else CIFAR-10's).
    public static func load(modelDirectory directory: URL, workers: Int, batch: Int = 256) throws -> Embedder {
        let config = try ModelDirectory.readConfig(from: directory).encoder
        var normalization = ImageNormalization(AugmentationRecipe.cifar)
        if let data = try? Data(contentsOf: directory.appendingPathComponent(Trainer.stateFileName)),
           let state = try? JSONDecoder().decode(TrainingState.self, from: data) {
            normalization = ImageNormalization(state.config.augmentation)
        }
        let embedder = Embedder(workers: workers, batch: batch, normalization: normalization) { arena in
            var rng = SeededGenerator(seed: 0)
            return ResNetEncoder(config, in: arena, rng: &rng)
        }
        let contents = try SafeTensors.read(from: directory.appendingPathComponent(ModelDirectory.weightsFileName))
        let own = Set(embedder.model.arena.parameters.map(\.name))
        try WeightFile.load(into: embedder.model.arena, from: SafeTensorsContents(tensors: contents.tensors.filter { own.contains($0.name) }))
        return embedder
    }

    /// The encoder's input size and channels.
    public var encoderConfig: EncoderConfig { (model.replicas[0] as! ResNetEncoder).config }
}
