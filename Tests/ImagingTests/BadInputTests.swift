// The bad-input corpus: whatever arrives — empty, truncated at every length, bit-flipped, lying
// about its size, with the wrong magic or a chunk length of 2 GB — the decoder answers with an
// ImageError or a well-formed image, never a crash, and never a half-gray picture for a truncated
// file. Limits are enforced from the header, before any pixel memory is allocated.
import Imaging
import Testing

/// Decodes `bytes` to RGB and checks the outcome is well formed: an error (typed by construction)
/// or an image with consistent size within the limits. Returns the error code, if any.
@discardableResult
private func decodeSafely(_ decoder: ImageDecoder, _ bytes: [UInt8], _ what: String,
                          sourceLocation: SourceLocation = #_sourceLocation) -> ImageError.Code? {
    do {
        let image = try decoder.decode(bytes, to: .rgb)
        #expect(image.pixels.count == image.width * image.height * 3, "\(what)", sourceLocation: sourceLocation)
        #expect(image.width * image.height <= decoder.limits.maxPixels, "\(what)", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(!error.message.isEmpty, "\(what)", sourceLocation: sourceLocation)
        return error.code
    }
}

private func smallPNG() throws -> [UInt8] {
    try ImageEncoder.png(randomImage(width: 24, height: 16, channels: 3, seed: 99))
}

@Suite struct BadInputTests {
    @Test func emptyAndOversizedInputs() throws {
        let decoder = ImageDecoder()
        expectImageError(.empty) { _ = try decoder.decode([], to: .rgb) }
        expectImageError(.empty) { _ = try decoder.header(of: []) }
        expectImageError(.empty) { _ = try decoder.decodeRaw([], width: 1, height: 1, channels: 1, to: .gray) }

        let strict = ImageDecoder(limits: DecodingLimits(maxEncodedBytes: 100, maxPixels: 500, maxSide: 30))
        let png = try smallPNG()  // 24×16 = 384 pixels, but more than 100 bytes
        expectImageError(.tooLarge) { _ = try strict.decode(png, to: .rgb) }
        expectImageError(.tooLarge) { _ = try strict.decode([UInt8](repeating: 0, count: 101), to: .rgb) }  // before the magic
        let roomy = ImageDecoder(limits: DecodingLimits(maxEncodedBytes: 1 << 20, maxPixels: 300, maxSide: 30))
        expectImageError(.tooManyPixels, "PNG over maxPixels") { _ = try roomy.decode(png, to: .rgb) }
        let narrow = ImageDecoder(limits: DecodingLimits(maxEncodedBytes: 1 << 20, maxPixels: 1000, maxSide: 20))
        expectImageError(.tooManyPixels, "PNG over maxSide") { _ = try narrow.decode(png, to: .rgb) }
        if let jpeg = cifarSamples.first?.bytes {
            let tiny = ImageDecoder(limits: DecodingLimits(maxPixels: 32 * 32 - 1))
            expectImageError(.tooManyPixels, "32×32 JPEG over maxPixels") { _ = try tiny.decode(jpeg, to: .rgb) }
        }
    }

    @Test func wrongMagicIsAnUnknownFormat() throws {
        let decoder = ImageDecoder()
        let png = try smallPNG()
        let inputs: [(String, [UInt8])] = [
            ("GIF", Array("GIF89a".utf8) + [UInt8](repeating: 0, count: 40)),
            ("BMP", Array("BM".utf8) + [UInt8](repeating: 0, count: 60)),
            ("text", Array("{\"image\": \"not really\"}".utf8)),
            ("one byte", [0xFF]),
            ("PNG with its first byte changed", [0x88] + png.dropFirst()),
            ("PNG with CRLF turned into LF", Array(png.prefix(4)) + [0x0A] + png.dropFirst(6)),
            ("JPEG SOI without a marker after it", [0xFF, 0xD8, 0x00, 0x00]),
        ]
        for (what, bytes) in inputs {
            expectImageError(.unknownFormat, what) { _ = try decoder.decode(bytes, to: .rgb) }
        }
    }

    @Test func rawPixelsMustMatchTheirDeclaration() {
        let decoder = ImageDecoder()
        expectImageError(.rawSizeMismatch) { _ = try decoder.decodeRaw([UInt8](repeating: 0, count: 11), width: 2, height: 2, channels: 3, to: .rgb) }
        expectImageError(.rawSizeMismatch) { _ = try decoder.decodeRaw([UInt8](repeating: 0, count: 13), width: 2, height: 2, channels: 3, to: .rgb) }
        expectImageError(.unsupported) { _ = try decoder.decodeRaw([0, 0, 0, 0], width: 1, height: 2, channels: 2, to: .rgb) }
        expectImageError(.invalidDimensions) { _ = try decoder.decodeRaw([0], width: 0, height: 1, channels: 1, to: .gray) }
        expectImageError(.invalidDimensions) { _ = try decoder.decodeRaw([0], width: 1, height: -1, channels: 1, to: .gray) }
        // A declared size that would overflow width × height × channels is refused by the limits.
        expectImageError(.tooManyPixels) { _ = try decoder.decodeRaw([0], width: Int.max / 2, height: 3, channels: 3, to: .rgb) }
    }

    @Test func hugeDeclaredDimensionsAreRefusedBeforeDecoding() throws {
        let decoder = ImageDecoder()
        // PNG: an IHDR of 100 000 × 100 000 RGB (30 GB decoded) around a few bytes of data.
        let bomb = PNGBuilder.png(width: 100_000, height: 100_000, colorType: 2, rows: [[0, 0, 0]])
        expectImageError(.tooManyPixels, "100 000² PNG") { _ = try decoder.decode(bomb, to: .rgb) }
        #expect(try decoder.header(of: bomb).width == 100_000)  // the header itself is readable
        // The same IHDR with nothing after it: refused from the IHDR alone.
        let headerOnly = PNGBuilder.signature + PNGBuilder.ihdr(width: 100_000, height: 100_000, colorType: 2)
        expectImageError(.tooManyPixels, "IHDR only") { _ = try decoder.decode(headerOnly, to: .rgb) }
        // Within the side limit but over the pixel limit: 10 000 × 5 000 = 50 megapixels.
        let wide = PNGBuilder.png(width: 10_000, height: 5_000, colorType: 0, rows: [[0]])
        expectImageError(.tooManyPixels, "50 MP PNG") { _ = try decoder.decode(wide, to: .gray) }

        // JPEG: a real file whose SOF is rewritten to declare 65 000 × 65 000.
        let jpeg = try cifarSamples.first?.bytes ?? ImageEncoder.jpeg(smoothImage(width: 32, height: 32))
        let sof = try #require(startOfFrameOffset(jpeg))
        var huge = jpeg
        huge.replaceSubrange((sof + 5)..<(sof + 9), with: [0xFD, 0xE8, 0xFD, 0xE8])
        expectImageError(.tooManyPixels, "65 000² JPEG") { _ = try decoder.decode(huge, to: .rgb) }
        let header = try decoder.header(of: huge)
        #expect(header.width == 65_000 && header.height == 65_000)
    }

    @Test func pngChunksWithAbsurdLengthsAreCorrupt() throws {
        let decoder = ImageDecoder()
        let rows: [[UInt8]] = [[1, 2, 3, 4, 5, 6]]
        for length: UInt32 in [0x7FFF_FFFF, 0xFFFF_FFFF, 0x8000_0000, 9_000_000] {
            for type in ["tEXt", "zzZz", "PLTE"] {
                let lying = PNGBuilder.chunk(type, [0, 0, 0, 0], declaredLength: length)
                let png = PNGBuilder.png(width: 2, height: 1, colorType: 2, rows: rows, extraChunksBeforeIDAT: [lying])
                expectImageError(.corrupt, "\(type) of length \(length)") { _ = try decoder.decode(png, to: .rgb) }
            }
            // An IDAT that claims 2 GB.
            let png = PNGBuilder.signature + PNGBuilder.ihdr(width: 2, height: 1, colorType: 2)
                + PNGBuilder.chunk("IDAT", PNGBuilder.zlibStored([0, 1, 2, 3, 4, 5, 6]), declaredLength: length)
                + PNGBuilder.chunk("IEND", [])
            expectImageError(.corrupt, "IDAT of length \(length)") { _ = try decoder.decode(png, to: .rgb) }
        }
        // Broken CRC on a critical chunk, a missing IDAT, an IDAT that is not zlib.
        var badCRC = try smallPNG()
        badCRC[29] ^= 0x01  // last byte of the IHDR CRC
        expectImageError(.corrupt, "IHDR CRC") { _ = try decoder.decode(badCRC, to: .rgb) }
        let noIDAT = PNGBuilder.signature + PNGBuilder.ihdr(width: 2, height: 1, colorType: 2) + PNGBuilder.chunk("IEND", [])
        expectImageError(.corrupt, "no IDAT") { _ = try decoder.decode(noIDAT, to: .rgb) }
        let notZlib = PNGBuilder.signature + PNGBuilder.ihdr(width: 2, height: 1, colorType: 2)
            + PNGBuilder.chunk("IDAT", [UInt8](repeating: 0xAB, count: 20)) + PNGBuilder.chunk("IEND", [])
        expectImageError(.corrupt, "IDAT not zlib") { _ = try decoder.decode(notZlib, to: .rgb) }
        let badHeader = PNGBuilder.png(width: 2, height: 1, colorType: 5, rows: rows)  // no colour type 5
        expectImageError(.corrupt, "colour type 5") { _ = try decoder.decode(badHeader, to: .rgb) }
        let zeroWidth = PNGBuilder.png(width: 0, height: 1, colorType: 2, rows: [[]])
        expectImageError(.corrupt, "width 0") { _ = try decoder.decode(zeroWidth, to: .rgb) }
    }

    @Test func truncatedJPEGsAreErrorsAtEveryLength() throws {
        try #require(!cifarSamples.isEmpty)
        let decoder = ImageDecoder()
        for sample in cifarSamples.prefix(3) {
            let jpeg = sample.bytes
            let reference = try decoder.decode(jpeg, to: .rgb)
            for length in 0..<jpeg.count {
                let code = decodeSafely(decoder, Array(jpeg.prefix(length)), "\(sample.member) cut at \(length)")
                // Even a file missing only its final EOI byte is refused: libjpeg's "premature end"
                // warning is an error here.
                #expect(code != nil, "\(sample.member) cut at \(length) of \(jpeg.count) decoded")
                // And the failure leaves nothing behind in the decoder.
                #expect(try decoder.decode(jpeg, to: .rgb) == reference, "after a cut at \(length)")
            }
        }
    }

    @Test func truncatedPNGsAreErrorsUntilTheImageDataIsComplete() throws {
        let decoder = ImageDecoder()
        let original = randomImage(width: 24, height: 16, channels: 3, seed: 99)
        let png = try ImageEncoder.png(original)
        let iendStart = png.count - 12
        for length in 0..<png.count {
            let truncated = Array(png.prefix(length))
            do {
                let image = try decoder.decode(truncated, to: .rgb)
                // Only a cut inside the final IEND chunk may still decode, and then to the full image.
                #expect(length >= iendStart && image == original, "cut at \(length) of \(png.count) decoded")
            } catch {
                #expect([.empty, .unknownFormat, .corrupt].contains(error.code), "cut at \(length): \(error)")
            }
        }
    }

    @Test func bitFlippedJPEGsGiveAnErrorOrAnImage() throws {
        try #require(!cifarSamples.isEmpty)
        let decoder = ImageDecoder()
        var rng = SplitMix(seed: 2024)
        var outcomes: [String: Int] = [:]
        let clean = cifarSamples[0].bytes
        let reference = try decoder.decode(clean, to: .rgb)
        for variant in 0..<1500 {
            var bytes = cifarSamples[variant % cifarSamples.count].bytes
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let bit = Int.random(in: 0..<(bytes.count * 8), using: &rng)
                bytes[bit / 8] ^= UInt8(1 << (bit % 8))
            }
            let code = decodeSafely(decoder, bytes, "JPEG variant \(variant)")
            outcomes[code?.rawValue ?? "image", default: 0] += 1
            #expect(try decoder.decode(clean, to: .rgb) == reference, "after JPEG variant \(variant)")
        }
        #expect(outcomes["corrupt", default: 0] > 0)
        #expect(Set(outcomes.keys).isSubset(of: ["image", "corrupt", "unknownFormat", "tooManyPixels", "unsupported"]),
                "\(outcomes)")
    }

    @Test func bitFlippedPNGsGiveAnErrorOrAnImage() throws {
        let decoder = ImageDecoder()
        var rng = SplitMix(seed: 4048)
        let sources = [try smallPNG(),
                       try ImageEncoder.png(randomImage(width: 9, height: 7, channels: 1, seed: 5)),
                       PNGBuilder.png(width: 3, height: 2, colorType: 6, rows: [[UInt8](repeating: 77, count: 12), [UInt8](repeating: 200, count: 12)])]
        var outcomes: [String: Int] = [:]
        let reference = try decoder.decode(sources[0], to: .rgb)
        for variant in 0..<1500 {
            var bytes = sources[variant % sources.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let bit = Int.random(in: 0..<(bytes.count * 8), using: &rng)
                bytes[bit / 8] ^= UInt8(1 << (bit % 8))
            }
            // Every other variant gets valid CRCs again, so the flips reach zlib and the filters.
            if variant % 2 == 1 { bytes = PNGBuilder.fixingCRCs(bytes) }
            let code = decodeSafely(decoder, bytes, "PNG variant \(variant)")
            outcomes[code?.rawValue ?? "image", default: 0] += 1
            #expect(try decoder.decode(sources[0], to: .rgb) == reference, "after PNG variant \(variant)")
        }
        #expect(outcomes["corrupt", default: 0] > 0)
        #expect(Set(outcomes.keys).isSubset(of: ["image", "corrupt", "unknownFormat", "tooManyPixels"]), "\(outcomes)")
    }

    @Test func aTablesOnlyJPEGIsCorruptAndLeavesNoStateBehind() throws {
        let decoder = ImageDecoder()
        let image = smoothImage(width: 16, height: 16)
        let jpeg = try ImageEncoder.jpeg(image)
        // SOI, then the DQT and DHT segments of a real file, then EOI: tables without a frame.
        var tables: [UInt8] = [0xFF, 0xD8]
        var offset = 2
        while offset + 4 <= jpeg.count, jpeg[offset] == 0xFF, jpeg[offset + 1] != 0xDA {
            let length = Int(jpeg[offset + 2]) << 8 | Int(jpeg[offset + 3])
            if [0xDB, 0xC4].contains(jpeg[offset + 1]) { tables += jpeg[offset..<(offset + 2 + length)] }
            offset += 2 + length
        }
        tables += [0xFF, 0xD9]
        expectImageError(.corrupt, "tables only") { _ = try decoder.decode(tables, to: .rgb) }
        #expect(try decoder.decode(jpeg, to: .rgb) == ImageDecoder().decode(jpeg, to: .rgb))
    }
}
