// Decoding as an executable spec: real CIFAR-10 JPEGs become 32×32×3 images with CIFAR's colour
// statistics; formats are recognised by their magic bytes; every PNG colour type arrives as RGB
// or gray; raw pixels are taken as declared.
import Imaging
import Testing

@Suite struct DecodingTests {
    @Test func cifarJPEGsDecodeTo32x32RGBWithPlausibleStatistics() throws {
        try #require(cifarSamples.count == 200, "could not extract CIFAR-10 JPEGs from \(cifarArchive)")
        let decoder = ImageDecoder()
        var sum = [Double](repeating: 0, count: 3), sumSquares = [Double](repeating: 0, count: 3)
        var count = 0
        for sample in cifarSamples {
            #expect(ImageFormat.detect(sample.bytes) == .jpeg)
            let header = try decoder.header(of: sample.bytes)
            #expect(header == ImageHeader(format: .jpeg, width: 32, height: 32, sourceChannels: 3))
            let image = try decoder.decode(sample.bytes, to: .rgb)
            #expect(image.width == 32 && image.height == 32 && image.channels == 3, "\(sample.member)")
            #expect(Set(image.pixels).count > 16, "\(sample.member) is nearly flat")
            for (i, value) in image.pixels.enumerated() {
                let x = Double(value) / 255
                sum[i % 3] += x
                sumSquares[i % 3] += x * x
            }
            count += 32 * 32
        }
        // CIFAR-10: mean (0.491, 0.482, 0.447), std (0.247, 0.243, 0.262) over the whole set;
        // 200 images land near them.
        let mean = sum.map { $0 / Double(count) }
        let std = zip(sumSquares, mean).map { ($0 / Double(count) - $1 * $1).squareRoot() }
        for (m, expected) in zip(mean, [0.491, 0.482, 0.447]) { #expect(abs(m - expected) < 0.05, "mean \(mean)") }
        for (s, expected) in zip(std, [0.247, 0.243, 0.262]) { #expect(abs(s - expected) < 0.05, "std \(std)") }
        #expect(mean[2] < mean[0], "blue is the darkest channel in CIFAR-10: \(mean)")
    }

    @Test func jpegGrayIsTheLumaOfRGB() throws {
        // TurboJPEG's gray is the file's Y channel; converting its RGB output with BT.601 gives
        // back Y up to rounding — except where R, G or B was clipped to 0...255 on the way out
        // (saturated colours, more of them with 4:2:0 chroma): there the luma of the clipped
        // colour is off by a few levels.
        let decoder = ImageDecoder()
        let smooth = try ImageEncoder.jpeg(smoothImage(width: 40, height: 24), quality: 95)
        let direct = try decoder.decode(smooth, to: .gray)
        let viaRGB = try decoder.decode(smooth, to: .rgb).converted(to: .gray)
        #expect(direct.channels == 1 && direct.width == 40 && direct.height == 24)
        #expect(zip(direct.pixels, viaRGB.pixels).allSatisfy { abs(Int($0) - Int($1)) <= 2 })

        try #require(!cifarSamples.isEmpty)
        for sample in cifarSamples.prefix(20) {
            let gray = try decoder.decode(sample.bytes, to: .gray)
            let converted = try decoder.decode(sample.bytes, to: .rgb).converted(to: .gray)
            let differences = zip(gray.pixels, converted.pixels).map { abs(Int($0) - Int($1)) }
            #expect(differences.max()! <= 16, "\(sample.member)")
            #expect(Double(differences.reduce(0, +)) / Double(differences.count) < 1, "\(sample.member)")
        }
    }

    @Test func formatsAreRecognisedByMagicBytes() {
        #expect(ImageFormat.detect([0xFF, 0xD8, 0xFF, 0xE0]) == .jpeg)
        #expect(ImageFormat.detect(PNGBuilder.signature + [0, 0]) == .png)
        #expect(ImageFormat.detect(Array("GIF89a".utf8)) == nil)
        #expect(ImageFormat.detect(Array("BM".utf8) + [0, 0, 0, 0]) == nil)
        #expect(ImageFormat.detect([0xFF, 0xD8]) == nil)  // too short to be sure
        #expect(ImageFormat.detect(Array(PNGBuilder.signature.prefix(7))) == nil)
        #expect(ImageFormat.detect([]) == nil)
    }

    @Test func pngColourTypesAllDecodeToRGBAndGray() throws {
        let decoder = ImageDecoder()
        // Gray 8-bit: 2×1 pixels 10, 200.
        let gray = PNGBuilder.png(width: 2, height: 1, colorType: 0, rows: [[10, 200]])
        #expect(try decoder.decode(gray, to: .gray).pixels == [10, 200])
        #expect(try decoder.decode(gray, to: .rgb).pixels == [10, 10, 10, 200, 200, 200])
        #expect(try decoder.header(of: gray) == ImageHeader(format: .png, width: 2, height: 1, sourceChannels: 1))

        // RGB 8-bit.
        let rgb = PNGBuilder.png(width: 2, height: 1, colorType: 2, rows: [[255, 0, 0, 0, 0, 255]])
        #expect(try decoder.decode(rgb, to: .rgb).pixels == [255, 0, 0, 0, 0, 255])
        #expect(try decoder.decode(rgb, to: .gray).pixels == [76, 29])  // BT.601: 0.299·255, 0.114·255

        // RGBA: transparent pixels are composited onto white, opaque ones are kept.
        let rgba = PNGBuilder.png(width: 2, height: 1, colorType: 6, rows: [[12, 34, 56, 255, 0, 0, 0, 0]])
        #expect(try decoder.decode(rgba, to: .rgb).pixels == [12, 34, 56, 255, 255, 255])

        // Gray + alpha.
        let grayAlpha = PNGBuilder.png(width: 2, height: 1, colorType: 4, rows: [[90, 255, 0, 0]])
        #expect(try decoder.decode(grayAlpha, to: .gray).pixels == [90, 255])

        // Palette: indices 1, 0 into (red, green).
        let palette = PNGBuilder.png(width: 2, height: 1, colorType: 3, rows: [[1, 0]],
                                     extraChunksBeforeIDAT: [PNGBuilder.chunk("PLTE", [255, 0, 0, 0, 255, 0])])
        #expect(try decoder.decode(palette, to: .rgb).pixels == [0, 255, 0, 255, 0, 0])

        // 16-bit RGB without gAMA is taken as gamma-encoded: 0xABCD → 0xAB, not linear → sRGB.
        let deep = PNGBuilder.png(width: 1, height: 1, colorType: 2, bitDepth: 16, rows: [[0xAB, 0xCD, 0, 0, 0xFF, 0xFF]])
        let deepPixels = try decoder.decode(deep, to: .rgb).pixels
        #expect(abs(Int(deepPixels[0]) - 0xAB) <= 1 && deepPixels[1] == 0 && deepPixels[2] == 255, "\(deepPixels)")
    }

    @Test func rawPixelsAreTakenAsDeclared() throws {
        let decoder = ImageDecoder()
        let rgb: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        let image = try decoder.decodeRaw(rgb, width: 2, height: 2, channels: 3, to: .rgb)
        #expect(image == DecodedImage(width: 2, height: 2, channels: 3, pixels: rgb))
        #expect(image[1, 0, 2] == 9)  // row 1, column 0, blue
        let rgba: [UInt8] = [1, 2, 3, 99, 4, 5, 6, 99]
        #expect(try decoder.decodeRaw(rgba, width: 2, height: 1, channels: 4, to: .rgb).pixels == [1, 2, 3, 4, 5, 6])
        #expect(try decoder.decodeRaw([255, 0], width: 1, height: 2, channels: 1, to: .rgb).pixels == [255, 255, 255, 0, 0, 0])
    }

    @Test func oneDecoderServesManyFormatsInTurn() throws {
        try #require(!cifarSamples.isEmpty)
        // The same decoder, alternating formats and failures: state never leaks between calls.
        let decoder = ImageDecoder()
        let jpeg = cifarSamples[0].bytes
        let reference = try decoder.decode(jpeg, to: .rgb)
        let png = try ImageEncoder.png(reference)
        for round in 0..<20 {
            #expect(try decoder.decode(jpeg, to: .rgb) == reference)
            #expect(try decoder.decode(png, to: .rgb) == reference)
            expectImageError(.corrupt, "round \(round)") { _ = try decoder.decode(Array(jpeg.prefix(jpeg.count / 2)), to: .rgb) }
            expectImageError(.corrupt, "round \(round)") { _ = try decoder.decode(Array(png.prefix(png.count / 2)), to: .rgb) }
        }
    }
}
