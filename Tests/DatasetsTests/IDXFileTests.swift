import Foundation
import Testing
import Datasets

@Suite struct IDXFileTests {
    static let directory = "/usr/share/datasets/fashion-mnist"

    @Test(.enabled(if: FileManager.default.fileExists(atPath: directory)))
    func readsFashionMNIST() throws {
        let images = try IDXFile.read("\(Self.directory)/t10k-images-idx3-ubyte.gz")
        let labels = try IDXFile.read("\(Self.directory)/t10k-labels-idx1-ubyte.gz")
        #expect(images.shape == [10000, 28, 28])
        #expect(labels.shape == [10000])
        #expect(labels.bytes.allSatisfy { $0 < 10 })
        #expect(Set(labels.bytes).count == 10)
        let mean = images.bytes.reduce(0.0) { $0 + Double($1) } / Double(images.bytes.count) / 255
        #expect(abs(mean - 0.286) < 0.01, "Fashion-MNIST's pixel mean is 0.286, got \(mean)")
    }

    @Test func plainFilesAndBadOnes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("idx-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func write(_ bytes: [UInt8], _ name: String) -> String {
            let path = directory.appendingPathComponent(name).path
            #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            return path
        }
        let good = try IDXFile.read(write([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6], "good"))
        #expect(good.shape == [2, 3] && good.bytes == [1, 2, 3, 4, 5, 6])
        for (bytes, name) in [([UInt8](), "empty"), ([1, 2, 8, 1, 0, 0, 0, 1, 7], "magic"), ([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0], "float"),
                              ([0, 0, 8, 1, 0, 0, 0, 9, 1], "short"), ([0, 0, 8, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], "huge")] {
            #expect(throws: IDXError.self) { try IDXFile.read(write(bytes, name)) }
        }
        #expect(throws: IDXError.self) { try IDXFile.read(directory.appendingPathComponent("missing").path) }
    }
}
