// glf eval knn | linear: solo-learn's kNN protocol and the paper's linear probe on a trained (or
// random) encoder's frozen features, and the raw-pixel floor.
import ArgumentParser
import Datasets
import Foundation
import GLF
import Neural
import TerminalProgress

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate an encoder.", subcommands: [EvalKNN.self, EvalLinear.self])
}

/// Which features are evaluated, and on which labelled folders (both commands).
struct EvalFeatures: ParsableArguments {
    @Option(help: "A model directory (glf train's --out). Omit with --random-init or --raw-pixels.") var model: String?
    @Flag(name: .customLong("random-init"), help: "Evaluate the encoder at initialisation (the floor training must beat).") var randomInit = false
    @Flag(name: .customLong("raw-pixels"), help: "Evaluate the normalised pixels themselves.") var rawPixels = false
    @Option(help: "Train split (the kNN memory bank, the probe's training set): an image folder.") var train: String
    @Option(help: "Test split (the queries): an image folder.") var test: String
    @Option(name: .customLong("limit-per-class")) var limitPerClass: Int?
    @Option(help: "Encoder width for --random-init.") var width = 32
    @Option(help: "Image side (for --random-init and --raw-pixels; a model uses its own).") var size = 32
    @Option(help: "Cores.") var threads = 2
    @Option(help: "Seed for --random-init.") var seed: UInt64 = 0

    func validate() throws {
        guard [model != nil, randomInit, rawPixels].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --model, --random-init, --raw-pixels")
        }
    }

    var what: String { model ?? (randomInit ? "random init (width \(width), seed \(seed))" : "raw pixels") }

    /// Backbone features (or pixels) of both splits, with their labels.
    func load() throws -> (train: Tensor, trainLabels: [Int], test: Tensor, testLabels: [Int], classes: Int) {
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
        let train = try LabelledImages.imageFolder(self.train, side: side, limitPerClass: limitPerClass)
        let test = try LabelledImages.imageFolder(self.test, side: side, limitPerClass: limitPerClass)
        func features(_ images: LabelledImages, _ label: String) -> Tensor {
            if let embedder {
                let line = ProgressLine(label, total: images.count, unit: "images")
                defer { line.finish() }
                return embedder.embed(images.pixels, count: images.count, height: images.height, width: images.width,
                                      channels: images.channels, progress: line.update)
            }
            let t = Tensor(zeros: [0])
            images.pixels.withUnsafeBufferPointer {
                ImageNormalization(AugmentationRecipe.cifar)
                    .write($0, images: images.count, height: images.height, width: images.width, channels: images.channels, into: t)
            }
            t.reshape(to: [images.count, t.count / images.count])   // same count: the values stay
            return t
        }
        return (features(train, "embed train"), train.labels, features(test, "embed test"), test.labels,
                max(train.classNames.count, test.classNames.count))
    }
}

struct EvalKNN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "knn",
        abstract: "kNN top-1: a labelled train folder is the memory bank, a labelled test folder the queries.",
        discussion: "Backbone features, L2-normalised; k nearest by cosine similarity vote with weight exp(sim/T) (solo-learn: k 20, T 0.07).")

    @OptionGroup var source: EvalFeatures
    @Option(help: "Neighbours.") var k = 20
    @Option(help: "Vote temperature.") var temperature: Float = 0.07

    func run() throws {
        let started = Date()
        let data = try source.load()
        let accuracy = KNNClassifier(neighbours: k, temperature: temperature)
            .accuracy(memory: data.train, memoryLabels: data.trainLabels, queries: data.test, queryLabels: data.testLabels,
                      classes: data.classes)
        print(String(format: "kNN top-1 %.2f%%  (%@; k %d, T %.2f; %d memory, %d queries; %.1f s)",
                     accuracy * 100, source.what, k, temperature, data.trainLabels.count, data.testLabels.count,
                     Date().timeIntervalSince(started)))
    }
}

struct EvalLinear: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linear",
        abstract: "Linear probe top-1: a softmax classifier on the frozen train features, scored on the test split.",
        discussion: """
            The paper's protocol: backbone features, L2-normalised, then standardised with the train split's \
            statistics; multinomial logistic regression with an L2 penalty, solved to convergence by L-BFGS \
            (no learning rate or epochs to tune).
            """)

    @OptionGroup var source: EvalFeatures
    @Option(help: "λ, the L2 penalty on the weights.") var l2: Double = 1e-4
    @Option(name: .customLong("max-iterations"), help: "L-BFGS iterations at most.") var maxIterations = 500

    func run() throws {
        let started = Date()
        let data = try source.load()
        let model = LinearProbe(l2: l2, maxIterations: maxIterations).fit(data.train, labels: data.trainLabels, classes: data.classes)
        let trainAccuracy = model.accuracy(data.train, labels: data.trainLabels)
        let accuracy = model.accuracy(data.test, labels: data.testLabels)
        print(String(format: "linear top-1 %.2f%%  (%@; λ %g; train %.2f%%; %d L-BFGS iterations, loss %.4f, max |∇| %.1e; %d train, %d test; %.1f s)",
                     accuracy * 100, source.what, l2, trainAccuracy * 100, model.iterations, model.finalLoss, model.finalGradient,
                     data.trainLabels.count, data.testLabels.count, Date().timeIntervalSince(started)))
    }
}
