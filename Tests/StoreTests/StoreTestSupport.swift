// Shared by the store tests: temporary stores, items whose pixels are a function of a number (so a
// reader can tell a whole item from a torn one), and real CIFAR-10 JPEGs from ../shared.
import Foundation
import Imaging
import Store

func temporaryStoreDirectory(_ name: String = #function) -> String {
    NSTemporaryDirectory() + "glfd-store-\(name.filter(\.isLetter))-\(UUID().uuidString)"
}

/// An 8×8 RGB item whose pixels and metadata both derive from `tag`.
func patternItem(_ tag: Int, side: Int = 8, source: String = "test") -> NewItem {
    let pixels = (0..<side * side * 3).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ tag &* 13) }
    return NewItem(image: DecodedImage(width: side, height: side, channels: 3, pixels: pixels),
                   originalWidth: side * 4, originalHeight: side * 3, originalFormat: .png,
                   source: source, metadata: Array("tag=\(tag)".utf8))
}

/// The tag a pattern item was made from, if its pixels agree with its metadata (it is whole).
func wholePatternTag(_ item: StoredItem) -> Int? {
    let text = String(decoding: item.metadata, as: UTF8.self)
    guard text.hasPrefix("tag="), let tag = Int(text.dropFirst(4)) else { return nil }
    return patternItem(tag, side: item.image.width, source: item.source).image == item.image ? tag : nil
}

func smallConfiguration(_ directory: String, side: Int = 8) -> StoreConfiguration {
    StoreConfiguration(directory: directory, canonical: CanonicalShape(side: side, channels: 3))
}

/// `perClass` CIFAR-10 test JPEGs per class unpacked into a fresh directory; returns their paths.
func cifarJPEGs(perClass: Int) throws -> [String] {
    let archive = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/data/cifar10/test.tar.gz").standardized.path
    let directory = NSTemporaryDirectory() + "glfd-store-cifar-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    let members = classes.flatMap { c in (1...perClass).map { String(format: "test/\(c)/%04d.jpg", $0) } }
    let tar = Process()
    tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
    tar.arguments = ["-xzf", archive, "-C", directory] + members
    try tar.run()
    tar.waitUntilExit()
    guard tar.terminationStatus == 0 else { throw CocoaError(.fileReadNoSuchFile) }
    return members.map { directory + "/" + $0 }
}
