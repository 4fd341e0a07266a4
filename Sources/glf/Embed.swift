// glf embed: a folder's embeddings as .npy, with the list of files beside it.
import ArgumentParser
import Datasets
import Foundation
import GLF
import Neural

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the encoder features of every image in a folder to OUT.npy ([N, F] float32) and OUT.txt (one file per line, same order).")

    @Option(help: "A model directory (glf train's --out).") var model: String
    @Option(help: "An image folder DIR/<class>/<file>.") var data: String
    @Option(help: "Output path without extension.") var out: String
    @Option(help: "Cores.") var threads = 2

    func run() throws {
        BLAS.setThreads(1)
        let directory = URL(fileURLWithPath: model)
        let config = try ModelDirectory.readConfig(from: directory).encoder
        var normalization = ImageNormalization(AugmentationRecipe.cifar)
        if let state = try? JSONDecoder().decode(TrainingState.self, from: Data(contentsOf: directory.appendingPathComponent(Trainer.stateFileName))) {
            normalization = ImageNormalization(state.config.augmentation)
        }
        let images = try LabelledImages.imageFolder(data, side: config.imageSize)
        let embedder = Embedder(workers: threads, normalization: normalization) { arena in
            var rng = SeededGenerator(seed: 0)
            return ResNetEncoder(config, in: arena, rng: &rng)
        }
        let contents = try SafeTensors.read(from: directory.appendingPathComponent(ModelDirectory.weightsFileName))
        let own = Set(embedder.model.arena.parameters.map(\.name))
        try WeightFile.load(into: embedder.model.arena, from: SafeTensorsContents(tensors: contents.tensors.filter { own.contains($0.name) }))
        let features = embedder.embed(images.pixels, count: images.count, height: images.height, width: images.width, channels: images.channels)
        try NumpyFile.write(features, to: URL(fileURLWithPath: out + ".npy"))
        try (images.sources.joined(separator: "\n") + "\n").write(toFile: out + ".txt", atomically: true, encoding: .utf8)
        note("wrote \(images.count) × \(features.lastDimension) features to \(out).npy and the file list to \(out).txt")
    }
}
