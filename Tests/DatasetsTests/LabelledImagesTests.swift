import Foundation
import Testing
import Datasets
import Imaging

@Suite struct LabelledImagesTests {
    /// A few real CIFAR-10 test JPEGs per class, unpacked from ../shared.
    static func cifarSubset(perClass: Int) throws -> String {
        let archive = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../shared/data/cifar10/test.tar.gz").standardized.path
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cifar-\(getpid())-\(perClass)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        let members = classes.flatMap { c in (1...perClass).map { String(format: "test/\(c)/%04d.jpg", $0) } }
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.arguments = ["-xzf", archive, "-C", directory] + members
        try tar.run()
        tar.waitUntilExit()
        guard tar.terminationStatus == 0 else { throw DatasetError(message: "tar failed on \(archive)") }
        return "\(directory)/test"
    }

    @Test func readsAnImageFolderOfRealJPEGs() throws {
        let root = try Self.cifarSubset(perClass: 3)
        defer { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }
        let images = try LabelledImages.imageFolder(root, side: 32)
        #expect(images.count == 30 && images.channels == 3 && images.pixels.count == 30 * 32 * 32 * 3)
        #expect(images.classNames.first == "airplane" && images.classNames.last == "truck")
        #expect(images.labels == (0..<10).flatMap { Array(repeating: $0, count: 3) })
        let gray = try LabelledImages.imageFolder(root, side: 16, color: .gray, limitPerClass: 1)
        #expect(gray.count == 10 && gray.pixels.count == 10 * 16 * 16)
    }

    @Test func aFileThatDoesNotDecodeIsNamed() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bad-folder-\(getpid())").path
        try FileManager.default.createDirectory(atPath: "\(root)/cats", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(FileManager.default.createFile(atPath: "\(root)/cats/broken.jpg", contents: Data([0xFF, 0xD8, 0xFF, 0x00])))
        #expect { try LabelledImages.imageFolder(root, side: 32) } throws: { error in
            (error as? DatasetError)?.message.contains("broken.jpg") == true
        }
    }

    @Test func classFoldersWithoutImagesAreAnErrorNotAnEmptyDataSet() throws {
        // A folder one level too high: its "classes" hold folders, not images.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("no-images-\(getpid())").path
        try FileManager.default.createDirectory(atPath: "\(root)/train/cats", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect {
            _ = try LabelledImages.imageFolder(root, side: 32)
        } throws: { error in
            (error as? DatasetError)?.message == "\(root): no .jpg, .jpeg or .png files in its class folders (train)"
        }
    }
}
