// Shared by the Imaging tests: real CIFAR-10 JPEGs from ../shared/data, a PNG builder that writes
// any chunk (valid or not) with correct CRCs, a seeded generator, and an error expectation.
import Foundation
import Imaging
import Testing

// MARK: - CIFAR-10 samples

struct CIFARSample: Sendable {
    let member: String  // e.g. "test/airplane/0000.jpg"
    let bytes: [UInt8]
}

/// ../shared beside the repository, as on the developers' machines and in CI.
let cifarArchive = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../../shared/data/cifar10/test.tar.gz").standardized.path
let cifarClasses = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

/// The first 20 test images of every class (200 JPEGs), extracted once per test process into a
/// temporary directory that is removed right after reading. Empty when the archive is missing.
let cifarSamples: [CIFARSample] = loadCIFARSamples(perClass: 20)

@discardableResult
func run(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "tar \(arguments) failed"])
    }
    return String(decoding: data, as: UTF8.self)
}

private func loadCIFARSamples(perClass: Int) -> [CIFARSample] {
    do {
        // List first: the member names are read from the archive, not guessed.
        let members = try run(["-tzf", cifarArchive]).split(separator: "\n").map(String.init)
        var chosen: [String] = []
        for name in cifarClasses {
            chosen += members.filter { $0.hasPrefix("test/\(name)/") && $0.hasSuffix(".jpg") }.sorted().prefix(perClass)
        }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("glfd-imaging-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try run(["-xzf", cifarArchive, "-C", directory.path] + chosen)
        return try chosen.map { member in
            CIFARSample(member: member, bytes: [UInt8](try Data(contentsOf: directory.appendingPathComponent(member))))
        }
    } catch {
        return []
    }
}

// MARK: - Errors

/// Runs `body`, expecting an ImageError with `code` and a non-empty message.
func expectImageError(
    _ code: ImageError.Code, _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("\(what): expected \(code), got an image", sourceLocation: sourceLocation)
    } catch let error as ImageError {
        #expect(error.code == code, "\(what): \(error)", sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(what): expected an ImageError, got \(error)", sourceLocation: sourceLocation)
    }
}

// MARK: - Random numbers

/// SplitMix64: the corpus of flipped bits is the same on every run.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomImage(width: Int, height: Int, channels: Int, seed: UInt64) -> DecodedImage {
    var rng = SplitMix(seed: seed)
    let pixels = (0..<(width * height * channels)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    return DecodedImage(width: width, height: height, channels: channels, pixels: pixels)
}

/// A smooth image (gradients), which JPEG reproduces closely.
func smoothImage(width: Int, height: Int) -> DecodedImage {
    var pixels: [UInt8] = []
    for y in 0..<height {
        for x in 0..<width {
            pixels += [UInt8(x * 255 / max(width - 1, 1)), UInt8(y * 255 / max(height - 1, 1)),
                       UInt8((x + y) * 255 / max(width + height - 2, 1))]
        }
    }
    return DecodedImage(width: width, height: height, channels: 3, pixels: pixels)
}

// MARK: - PNG by hand

/// Writes PNG files chunk by chunk, so tests can state exactly what a file declares: any colour
/// type, any IHDR, chunks with lying lengths. Image data is zlib with stored (uncompressed) blocks.
enum PNGBuilder {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    private static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    /// length ‖ type ‖ data ‖ CRC(type ‖ data); `declaredLength` overrides the length field.
    static func chunk(_ type: String, _ data: [UInt8], declaredLength: UInt32? = nil) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(declaredLength ?? UInt32(data.count)) + body + bigEndian(crc32(body[...]))
    }

    static func ihdr(width: UInt32, height: UInt32, bitDepth: UInt8 = 8, colorType: UInt8) -> [UInt8] {
        chunk("IHDR", bigEndian(width) + bigEndian(height) + [bitDepth, colorType, 0, 0, 0])
    }

    /// zlib stream of `raw` in stored deflate blocks, with its Adler-32.
    static func zlibStored(_ raw: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let length = min(65_535, raw.count - offset)
            let final: UInt8 = offset + length == raw.count ? 1 : 0
            out += [final, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            out += raw[offset..<(offset + length)]
            offset += length
        } while offset < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw { a = (a + UInt32(byte)) % 65_521; b = (b + a) % 65_521 }
        return out + bigEndian(b << 16 | a)
    }

    /// A complete PNG: `rows` are the unfiltered scanline bytes (filter type 0 is prepended).
    static func png(width: Int, height: Int, colorType: UInt8, bitDepth: UInt8 = 8, rows: [[UInt8]],
                    extraChunksBeforeIDAT: [[UInt8]] = []) -> [UInt8] {
        let raw: [UInt8] = rows.flatMap { row -> [UInt8] in [0] + row }
        let extra: [UInt8] = extraChunksBeforeIDAT.flatMap { $0 }
        let header = signature + ihdr(width: UInt32(width), height: UInt32(height), bitDepth: bitDepth, colorType: colorType)
        return header + extra + chunk("IDAT", zlibStored(raw)) + chunk("IEND", [])
    }

    /// Recomputes every chunk's CRC, so a flipped bit reaches libpng's decompressor and filters
    /// instead of being caught by the checksum. Stops at the first length that runs past the end.
    static func fixingCRCs(_ png: [UInt8]) -> [UInt8] {
        var bytes = png
        var offset = 8
        while offset + 12 <= bytes.count {
            let length = bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
            guard offset + 12 + length <= bytes.count else { break }
            let crc = bigEndian(crc32(bytes[(offset + 4)..<(offset + 8 + length)]))
            bytes.replaceSubrange((offset + 8 + length)..<(offset + 12 + length), with: crc)
            offset += 12 + length
        }
        return bytes
    }
}

// MARK: - JPEG markers

/// Offset of the first start-of-frame marker (SOF0...SOF15 except DHT, JPG, DAC), whose segment is
/// FF Cn, length (2), precision (1), height (2), width (2), components...
func startOfFrameOffset(_ jpeg: [UInt8]) -> Int? {
    var offset = 2
    while offset + 4 <= jpeg.count, jpeg[offset] == 0xFF {
        let marker = jpeg[offset + 1]
        if (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) { return offset }
        let length = Int(jpeg[offset + 2]) << 8 | Int(jpeg[offset + 3])
        offset += 2 + length
    }
    return nil
}
