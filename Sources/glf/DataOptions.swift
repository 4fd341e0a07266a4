// Where `glf train`, `glf eval` and `glf embed` read labelled images from.
import ArgumentParser
import Datasets
import Foundation

struct DataOptions: ParsableArguments {
    @Option(help: "An image folder: DIR/<class>/<file>.jpg|png (class folders are ignored by training).")
    var data: String?

    @Option(name: .customLong("idx-images"), help: "IDX images file (Fashion-MNIST; .gz is fine), with --idx-labels.")
    var idxImages: String?

    @Option(name: .customLong("idx-labels"), help: "IDX labels file matching --idx-images.")
    var idxLabels: String?

    @Option(name: .customLong("limit-per-class"), help: "Use only the first N files of each class folder.")
    var limitPerClass: Int?

    func validate() throws {
        guard (data == nil) != (idxImages == nil) else { throw ValidationError("give either --data or --idx-images") }
        guard (idxImages == nil) == (idxLabels == nil) else { throw ValidationError("--idx-images and --idx-labels go together") }
    }

    /// Images at `side` × `side` (folders are resized; IDX files keep their size).
    func load(side: Int) throws -> LabelledImages {
        if let data { return try LabelledImages.imageFolder(data, side: side, limitPerClass: limitPerClass) }
        return try LabelledImages.idx(images: idxImages!, labels: idxLabels!)
    }
}

/// Prints to standard error (progress, warnings), keeping standard output for results.
func note(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }
