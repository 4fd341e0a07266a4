// glf weights: model directories (model.safetensors + config.json) on the command line.
//
//   glf weights init  --out DIR [--width 32 --blocks 1,1,1,1 --size 32 --channels 3 --seed 0 --warmup-batches 3]
//   glf weights embed --model DIR --images X.npy --out Y.npy     X: float32 [N, H, W, C], Y: [N, D]
//   glf weights show  --model DIR
//
// `init` + `embed` are what tools/python/crosscheck_torch.py compares with PyTorch.
import ArgumentParser
import Foundation
import Neural

struct Weights: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, inspect and run safetensors weight files.",
        subcommands: [Init.self, Embed.self, Show.self])
}

extension Weights {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Write a freshly initialised encoder as a model directory.",
            discussion: """
                Batch-norm running statistics start at mean 0, variance 1, which makes inference-mode \
                outputs a poor test of a reader. The warm-up forward passes (training mode, batches of \
                16 N(0,1) images) move them to the statistics of real activations.
                """)

        @Option(help: "The model directory to write (created if missing).")
        var out: String
        @Option(help: "Channels of the first stage; stage s has width·2^s.")
        var width = 32
        @Option(help: "Residual blocks per stage, comma-separated.")
        var blocks = "1,1,1,1"
        @Option(help: "Image side length in pixels.")
        var size = 32
        @Option(help: "Image channels.")
        var channels = 3
        @Option(help: "Seed of the initialisation and the warm-up images.")
        var seed: UInt64 = 0
        @Option(help: "Training-mode forward passes that set the batch-norm running statistics.")
        var warmupBatches = 3

        static let warmupBatchSize = 16

        func validate() throws {
            _ = try parsedBlocks()
            guard width >= 1, size >= 1, channels >= 1 else { throw ValidationError("--width, --size and --channels must be at least 1") }
            guard warmupBatches >= 0 else { throw ValidationError("--warmup-batches must be 0 or more") }
        }

        func parsedBlocks() throws -> [Int] {
            let blocks = self.blocks.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !blocks.isEmpty, blocks.allSatisfy({ ($0 ?? 0) >= 1 }) else {
                throw ValidationError("--blocks \(self.blocks): expected comma-separated block counts of at least 1, e.g. 1,1,1,1")
            }
            return blocks.map { $0! }
        }

        func run() throws {
            let encoderConfig = EncoderConfig(inputChannels: channels, imageSize: size, width: width, blocksPerStage: try parsedBlocks())
            let model = try EncoderModel(ModelConfig(encoder: encoderConfig), seed: seed)

            var rng = SeededGenerator(seed: seed &+ 1)
            let images = Tensor(zeros: [Self.warmupBatchSize, size, size, channels])
            for _ in 0..<warmupBatches {
                images.fillNormal(std: 1, using: &rng)
                _ = model.encoder.forward(images, mode: .training)
            }

            let directory = URL(fileURLWithPath: out)
            try ModelDirectory.save(model, to: directory, metadata: [
                "glfd.createdBy": "glf weights init",
                "glfd.seed": String(seed),
                "glfd.warmupBatches": String(warmupBatches),
            ])
            print("wrote \(directory.path): \(model.arena.parameters.count) tensors, \(model.arena.count) values, " +
                  "\(encoderConfig.featureDimension) features per \(size)×\(size)×\(channels) image")
        }
    }

    struct Embed: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode images with a model directory's encoder (inference mode).")

        @Option(help: "The model directory (model.safetensors + config.json).")
        var model: String
        @Option(help: "Images as a float32 .npy of shape [N, H, W, C] (NHWC).")
        var images: String
        @Option(help: "Where to write the features, a float32 .npy of shape [N, D].")
        var out: String
        @Option(help: "Images per forward pass (inference mode: the result does not depend on it).")
        var batchSize = 64

        func validate() throws {
            guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        }

        func run() throws {
            let (loaded, _) = try ModelDirectory.load(from: URL(fileURLWithPath: model))
            let config = loaded.config.encoder
            let input = try NumpyFile.read(from: URL(fileURLWithPath: images))
            guard input.shape.count == 4, input.shape[3] == config.inputChannels, input.shape[1] >= 1, input.shape[2] >= 1 else {
                throw WeightsCommandError("\(images) has shape \(input.shape); the model expects [N, H, W, \(config.inputChannels)] (NHWC)")
            }
            let (count, height, width) = (input.shape[0], input.shape[1], input.shape[2])
            let imageValues = height * width * config.inputChannels
            let features = config.featureDimension
            var output = [Float](repeating: 0, count: count * features)

            let batch = Tensor(zeros: [0])
            var start = 0
            while start < count {
                let n = min(batchSize, count - start)
                batch.reshape(to: [n, height, width, config.inputChannels])
                input.values.withUnsafeBufferPointer { batch.data.update(from: $0.baseAddress! + start * imageValues, count: n * imageValues) }
                let result = loaded.encoder.forward(batch, mode: .inference)   // [n, features]
                precondition(result.shape == [n, features], "encoder returned \(result.shape) for \(n) images")
                output.withUnsafeMutableBufferPointer { ($0.baseAddress! + start * features).update(from: result.data, count: n * features) }
                start += n
            }
            try NumpyFile.write(NumpyArray(shape: [count, features], values: output), to: URL(fileURLWithPath: out))
            print("wrote \(out): [\(count), \(features)]")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a model directory's configuration and parameter table.")

        @Option(help: "The model directory (model.safetensors + config.json).")
        var model: String

        func run() throws {
            let (loaded, metadata) = try ModelDirectory.load(from: URL(fileURLWithPath: model))
            let e = loaded.config.encoder
            print("model \(model) (format \(loaded.config.format) v\(loaded.config.formatVersion), \(loaded.config.layout))")
            print("encoder: \(e.imageSize)×\(e.imageSize)×\(e.inputChannels) images, width \(e.width), blocks \(e.blocksPerStage)"
                  + " → \(e.featureDimension) features, \(e.forwardMultiplyAdds) multiply-adds per image")
            for (name, head) in [("projector", loaded.config.projector), ("predictor", loaded.config.predictor)] {
                guard let head else { continue }
                print("\(name): \(head.inputDimension) → \(head.hiddenDimension) → \(head.outputDimension)"
                      + (head.finalBatchNorm ? " → BN" : ""))
            }
            print()

            let parameters = loaded.arena.parameters
            let nameWidth = max(4, parameters.map(\.name.count).max() ?? 0)
            let shapes = parameters.map { "[" + $0.shape.map(String.init).joined(separator: ", ") + "]" }
            let shapeWidth = max(5, shapes.map(\.count).max() ?? 0)
            func row(_ name: String, _ shape: String, _ role: String, _ count: String) -> String {
                name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                    + shape.padding(toLength: shapeWidth, withPad: " ", startingAt: 0) + "  "
                    + role.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(repeating: " ", count: max(0, 10 - count.count)) + count
            }
            print(row("name", "shape", "role", "count"))
            for (parameter, shape) in zip(parameters, shapes) {
                print(row(parameter.name, shape, parameter.role.rawValue, String(parameter.count)))
            }
            let statistics = parameters.filter { $0.role == .statistic }.reduce(0) { $0 + $1.count }
            print()
            print("total: \(parameters.count) tensors, \(loaded.arena.count) values "
                  + "(\(loaded.arena.count - statistics) learned, \(statistics) batch-norm statistics), "
                  + String(format: "%.2f MB as float32", Double(loaded.arena.count * 4) / 1e6))
            if !metadata.isEmpty {
                print("metadata: " + metadata.keys.sorted().map { "\($0)=\(metadata[$0]!)" }.joined(separator: ", "))
            }
        }
    }
}

/// A failure of a `glf weights` command that is not about its arguments' syntax (no usage text).
struct WeightsCommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
