// The ingest path from client bytes: real CIFAR-10 JPEGs and PNGs become canonical items (RGB or
// gray, resized), raw pixels are taken as declared, and bad bytes are a typed `badImage` error.
import Foundation
import Imaging
import Store
import Testing

@Suite struct IngestDecoderTests {
    @Test func realJPEGsBecomeCanonicalItems() throws {
        let files = try cifarJPEGs(perClass: 1)
        let rgb = IngestDecoder(canonical: CanonicalShape(side: 32, channels: 3))
        let gray = IngestDecoder(canonical: CanonicalShape(side: 16, channels: 1))
        for file in files {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
            let item = try rgb.item(encoded: bytes, source: "cam-1", metadata: [1, 2])
            #expect(item.image.width == 32 && item.image.channels == 3)
            #expect(item.originalWidth == 32 && item.originalHeight == 32 && item.originalFormat == .jpeg)
            #expect(item.source == "cam-1" && item.metadata == [1, 2])
            let small = try gray.item(encoded: bytes)
            #expect(small.image.width == 16 && small.image.height == 16 && small.image.channels == 1)
        }
    }

    @Test func aLargePNGIsResizedAndKeepsItsOriginalSize() throws {
        // 200×120 gradient: after area resizing to 32×32 the mean brightness is kept.
        var pixels: [UInt8] = []
        for y in 0..<120 { for x in 0..<200 { pixels += [UInt8(x), UInt8(y * 2), 128] } }
        let png = try ImageEncoder.png(DecodedImage(width: 200, height: 120, channels: 3, pixels: pixels))
        let item = try IngestDecoder(canonical: CanonicalShape()).item(encoded: png)
        #expect(item.originalWidth == 200 && item.originalHeight == 120 && item.originalFormat == .png)
        let red = stride(from: 0, to: item.image.pixels.count, by: 3).map { Double(item.image.pixels[$0]) }
        #expect(abs(red.reduce(0, +) / Double(red.count) - 99.5) < 1.5)
    }

    @Test func rawPixelsAreTakenAsDeclared() throws {
        let decoder = IngestDecoder(canonical: CanonicalShape(side: 4, channels: 3))
        let item = try decoder.item(raw: [UInt8](repeating: 9, count: 8 * 8 * 4), width: 8, height: 8, channels: 4)
        #expect(item.image.pixels == [UInt8](repeating: 9, count: 4 * 4 * 3))
        #expect(item.originalFormat == .raw)
        #expect(throws: StoreError.self) { _ = try decoder.item(raw: [1, 2, 3], width: 8, height: 8, channels: 3) }
    }

    @Test func badBytesAreATypedError() {
        let decoder = IngestDecoder(canonical: CanonicalShape())
        for bytes: [UInt8] in [[], Array("not an image".utf8), [0xFF, 0xD8, 0xFF, 0xE0, 0, 16], [0x89, 0x50, 0x4E, 0x47]] {
            do {
                _ = try decoder.item(encoded: bytes)
                Issue.record("\(bytes) decoded")
            } catch {
                guard case .badImage(let imageError) = error else {
                    Issue.record("\(bytes): \(error) is not badImage")
                    continue
                }
                #expect(!imageError.message.isEmpty)
            }
        }
    }
}
