// A labelled image collection in memory, at one size: what `glf train` draws batches from and
// what `glf eval knn` embeds. Pixels are UInt8 HWC, image after image.
//
// Sources: an image folder (`root/<class>/<file>.jpg|png`; the class is the folder name, classes
// in sorted order, so CIFAR-10's folders give its usual label indices) or a pair of IDX files
// (Fashion-MNIST).
import Foundation
import Imaging

public struct LabelledImages: Sendable {
    public var height: Int, width: Int, channels: Int
    public var pixels: [UInt8]
    public var labels: [Int]
    public var classNames: [String]
    /// Where each image came from (a path, or "file.idx#index").
    public var sources: [String]

    public var count: Int { labels.count }
    public var bytesPerImage: Int { height * width * channels }

    public init(height: Int, width: Int, channels: Int, pixels: [UInt8], labels: [Int], classNames: [String], sources: [String]) {
        precondition(pixels.count == labels.count * height * width * channels && sources.count == labels.count)
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
        self.labels = labels
        self.classNames = classNames
        self.sources = sources
    }
}

extension LabelledImages {
    /// The images at `indices`, in that order.
    public func subset(_ indices: some Sequence<Int>) -> LabelledImages {
        var pixels: [UInt8] = [], labels: [Int] = [], sources: [String] = []
        for index in indices {
            pixels += self.pixels[index * bytesPerImage ..< (index + 1) * bytesPerImage]
            labels.append(self.labels[index])
            sources.append(self.sources[index])
        }
        return LabelledImages(height: height, width: width, channels: channels, pixels: pixels, labels: labels,
                              classNames: classNames, sources: sources)
    }
}

public struct DatasetError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
}

extension LabelledImages {
    /// Decodes every JPEG or PNG under `root/<class>/` to `side`×`side` in `color`. A file that does
    /// not decode is an error naming it (a training set should not silently shrink).
    /// `limitPerClass` takes the first files of each class in name order.
    public static func imageFolder(_ root: String, side: Int, color: ColorMode = .rgb,
                                   limitPerClass: Int? = nil) throws -> LabelledImages {
        let manager = FileManager.default
        let classes = try manager.contentsOfDirectory(atPath: root).filter { name in
            var isDirectory: ObjCBool = false
            return !name.hasPrefix(".") && manager.fileExists(atPath: "\(root)/\(name)", isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
        guard !classes.isEmpty else { throw DatasetError(message: "\(root): no class folders") }
        let decoder = ImageDecoder()
        var pixels: [UInt8] = [], labels: [Int] = [], sources: [String] = []
        for (label, name) in classes.enumerated() {
            var files = try manager.contentsOfDirectory(atPath: "\(root)/\(name)")
                .filter(isImageFileName)
                .sorted()
            if let limitPerClass { files = Array(files.prefix(limitPerClass)) }
            for file in files {
                let path = "\(root)/\(name)/\(file)"
                guard let data = manager.contents(atPath: path) else { throw DatasetError(message: "\(path): unreadable") }
                let image: DecodedImage
                do {
                    image = try decoder.decode([UInt8](data), to: color)
                } catch {
                    throw DatasetError(message: "\(path): \(error.message)")
                }
                let sized = image.width == side && image.height == side ? image : image.resized(side: side)
                pixels.append(contentsOf: sized.pixels)
                labels.append(label)
                sources.append(path)
            }
        }
        // Class folders without a JPEG or PNG in them (one level too high, say) are no data set.
        guard !labels.isEmpty else {
            throw DatasetError(message: "\(root): no .jpg, .jpeg or .png files in its class folders (\(classes.joined(separator: ", ")))")
        }
        return LabelledImages(height: side, width: side, channels: color.channels, pixels: pixels, labels: labels,
                              classNames: classes, sources: sources)
    }

    /// Images [N, rows, columns] and labels [N] from IDX files (gray).
    public static func idx(images imagesPath: String, labels labelsPath: String) throws -> LabelledImages {
        let images = try IDXFile.read(imagesPath), labels = try IDXFile.read(labelsPath)
        guard images.shape.count == 3, labels.shape.count == 1, images.shape[0] == labels.shape[0] else {
            throw DatasetError(message: "\(imagesPath) \(images.shape) and \(labelsPath) \(labels.shape) do not pair up")
        }
        let classes = Int(labels.bytes.max() ?? 0) + 1
        return LabelledImages(height: images.shape[1], width: images.shape[2], channels: 1, pixels: images.bytes,
                              labels: labels.bytes.map(Int.init), classNames: (0..<classes).map(String.init),
                              sources: (0..<labels.shape[0]).map { "\(imagesPath)#\($0)" })
    }
}
