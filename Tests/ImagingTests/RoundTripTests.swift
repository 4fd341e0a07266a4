// Encoding and decoding back: PNG is exact for every size and channel count; JPEG is close.
import Imaging
import Testing

@Suite struct RoundTripTests {
    @Test(arguments: [(1, 1, 1), (1, 1, 3), (7, 5, 1), (32, 32, 3), (123, 45, 3), (300, 200, 1)])
    func pngRoundTripIsExact(width: Int, height: Int, channels: Int) throws {
        let image = randomImage(width: width, height: height, channels: channels, seed: UInt64(width * 1000 + height * 10 + channels))
        let png = try ImageEncoder.png(image)
        #expect(ImageFormat.detect(png) == .png)
        let decoder = ImageDecoder()
        #expect(try decoder.decode(png, to: image.color) == image)
        #expect(try decoder.header(of: png) == ImageHeader(format: .png, width: width, height: height, sourceChannels: channels))
    }

    @Test func incompressiblePNGStillFitsTheEncoderBuffer() throws {
        // Random bytes do not compress: the encoder's first buffer guess must still hold them.
        let image = randomImage(width: 512, height: 512, channels: 3, seed: 7)
        #expect(try ImageDecoder().decode(try ImageEncoder.png(image), to: .rgb) == image)
    }

    @Test func jpegRoundTripIsClose() throws {
        let decoder = ImageDecoder()
        let image = smoothImage(width: 64, height: 48)
        for (quality, subsample, tolerance) in [(95, false, 2.0), (75, false, 3.0), (90, true, 3.0)] {
            let jpeg = try ImageEncoder.jpeg(image, quality: quality, subsampleChroma: subsample)
            #expect(ImageFormat.detect(jpeg) == .jpeg)
            let back = try decoder.decode(jpeg, to: .rgb)
            #expect(back.width == 64 && back.height == 48)
            let meanError = zip(back.pixels, image.pixels).map { abs(Double($0) - Double($1)) }.reduce(0, +) / Double(image.pixels.count)
            #expect(meanError < tolerance, "quality \(quality), 4:2:0 \(subsample): mean error \(meanError)")
        }
        let gray = image.converted(to: .gray)
        let grayBack = try decoder.decode(try ImageEncoder.jpeg(gray, quality: 95), to: .gray)
        let grayError = zip(grayBack.pixels, gray.pixels).map { abs(Int($0) - Int($1)) }.max()!
        #expect(grayError <= 6)
        #expect(try decoder.header(of: try ImageEncoder.jpeg(gray)).sourceChannels == 1)
    }

    @Test func cifarJPEGsSurviveAPNGRoundTrip() throws {
        try #require(!cifarSamples.isEmpty)
        let decoder = ImageDecoder()
        for sample in cifarSamples.prefix(10) {
            let image = try decoder.decode(sample.bytes, to: .rgb)
            #expect(try decoder.decode(try ImageEncoder.png(image), to: .rgb) == image)
        }
    }
}
