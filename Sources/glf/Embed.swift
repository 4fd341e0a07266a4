// glf embed: a folder's embeddings as .npy, with the list of files beside it.
import ArgumentParser
import Datasets
import Foundation
import GLF
import Neural
import TerminalProgress

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the encoder features of every image in a folder to OUT.npy ([N, F] float32) and OUT.txt (one file per line, same order).")

    @Option(help: "A model directory (glf train's --out).") var model: String
    @Option(help: "An image folder DIR/<class>/<file>.") var data: String
    @Option(help: "Output path without extension.") var out: String
    @Option(help: "Cores.") var threads = 2

    func run() throws {
        BLAS.setThreads(1)
        let embedder = try Embedder.load(modelDirectory: URL(fileURLWithPath: model), workers: threads)
        let images = try LabelledImages.imageFolder(data, side: embedder.encoderConfig.imageSize)
        let line = ProgressLine("embed", total: images.count, unit: "images")
        let features = embedder.embed(images.pixels, count: images.count, height: images.height, width: images.width,
                                      channels: images.channels, progress: line.update)
        line.finish()
        try NumpyFile.write(features, to: URL(fileURLWithPath: out + ".npy"))
        try (images.sources.joined(separator: "\n") + "\n").write(toFile: out + ".txt", atomically: true, encoding: .utf8)
        note("wrote \(images.count) × \(features.lastDimension) features to \(out).npy and the file list to \(out).txt")
    }
}
