// glf eval knn: solo-learn's kNN protocol on a trained (or random) encoder, and the raw-pixel floor.
import ArgumentParser
import Datasets
import Foundation
import GLF
import Neural

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate an encoder.", subcommands: [EvalKNN.self])
}

struct EvalKNN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "knn",
        abstract: "kNN top-1: a labelled train folder is the memory bank, a labelled test folder the queries.",
        discussion: "Backbone features, L2-normalised; k nearest by cosine similarity vote with weight exp(sim/T) (solo-learn: k 20, T 0.07).")

    @Option(help: "A model directory (glf train's --out). Omit with --random-init or --raw-pixels.") var model: String?
    @Flag(name: .customLong("random-init"), help: "Evaluate the encoder at initialisation (the floor training must beat).") var randomInit = false
    @Flag(name: .customLong("raw-pixels"), help: "kNN on the normalised pixels themselves.") var rawPixels = false
    @Option(help: "Memory bank: an image folder.") var train: String
    @Option(help: "Queries: an image folder.") var test: String
    @Option(name: .customLong("limit-per-class")) var limitPerClass: Int?
    @Option(help: "Neighbours.") var k = 20
    @Option(help: "Vote temperature.") var temperature: Float = 0.07
    @Option(help: "Encoder width for --random-init.") var width = 32
    @Option(help: "Image side (for --random-init and --raw-pixels; a model uses its own).") var size = 32
    @Option(help: "Cores.") var threads = 2
    @Option(help: "Seed for --random-init.") var seed: UInt64 = 0

    func validate() throws {
        guard [model != nil, randomInit, rawPixels].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --model, --random-init, --raw-pixels")
        }
    }

    func run() throws {
        BLAS.setThreads(1)
        let embedder: Embedder?
        if let model {
            embedder = try Embedder.load(modelDirectory: URL(fileURLWithPath: model), workers: threads)
        } else if randomInit {
            let config = EncoderConfig(imageSize: size, width: width)
            embedder = Embedder(workers: threads, normalization: ImageNormalization(AugmentationRecipe.cifar)) { arena in
                var rng = SeededGenerator(seed: seed)
                return ResNetEncoder(config, in: arena, rng: &rng)
            }
        } else {
            embedder = nil
        }
        let side = embedder?.encoderConfig.imageSize ?? size
        let memory = try LabelledImages.imageFolder(train, side: side, limitPerClass: limitPerClass)
        let queries = try LabelledImages.imageFolder(test, side: side, limitPerClass: limitPerClass)
        let started = Date()
        let (bank, asked): (Tensor, Tensor)
        if let embedder {
            bank = embedder.embed(memory.pixels, count: memory.count, height: memory.height, width: memory.width, channels: memory.channels)
            asked = embedder.embed(queries.pixels, count: queries.count, height: queries.height, width: queries.width, channels: queries.channels)
        } else {
            let normalization = ImageNormalization(AugmentationRecipe.cifar)
            (bank, asked) = (pixelFeatures(memory, normalization), pixelFeatures(queries, normalization))
        }
        let accuracy = KNNClassifier(neighbours: k, temperature: temperature)
            .accuracy(memory: bank, memoryLabels: memory.labels, queries: asked, queryLabels: queries.labels,
                      classes: max(memory.classNames.count, queries.classNames.count))
        let what = model ?? (randomInit ? "random init (width \(width), seed \(seed))" : "raw pixels")
        print(String(format: "kNN top-1 %.2f%%  (%@; k %d, T %.2f; %d memory, %d queries; %.1f s)",
                     accuracy * 100, what, k, temperature, memory.count, queries.count, Date().timeIntervalSince(started)))
    }

    private func pixelFeatures(_ images: LabelledImages, _ normalization: ImageNormalization) -> Tensor {
        let t = Tensor(zeros: [0])
        images.pixels.withUnsafeBufferPointer {
            normalization.write($0, images: images.count, height: images.height, width: images.width, channels: images.channels, into: t)
        }
        t.reshape(to: [images.count, t.count / images.count])   // same count: the values stay
        return t
    }
}
