// Colour conversion, resizing and normalisation on cases small enough to compute by hand.
import Imaging
import Testing

private func gray(_ width: Int, _ height: Int, _ pixels: [UInt8]) -> DecodedImage {
    DecodedImage(width: width, height: height, channels: 1, pixels: pixels)
}

@Suite struct TransformTests {
    @Test func grayIsBT601Luma() {
        // Y = 0.299 R + 0.587 G + 0.114 B, rounded: red 76.2, green 149.7, blue 29.1, (10, 20, 30) 18.1.
        let rgb = DecodedImage(width: 6, height: 1, channels: 3,
                               pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 10, 20, 30])
        #expect(rgb.converted(to: .gray).pixels == [76, 150, 29, 255, 0, 18])
        #expect(rgb.converted(to: .rgb) == rgb)
        #expect(gray(2, 1, [7, 250]).converted(to: .rgb).pixels == [7, 7, 7, 250, 250, 250])
    }

    @Test func shrinkingAveragesAreas() {
        // 4×4 → 2×2: each output is the mean of a 2×2 block, rounded half up.
        let image = gray(4, 4, [0, 1, 10, 20,
                                2, 4, 30, 41,
                                100, 100, 255, 255,
                                100, 101, 255, 254])
        #expect(image.resized(width: 2, height: 2).pixels == [2, 25, 100, 255])  // 1.75, 25.25, 100.25, 254.75

        // 3 → 2 (ratio 1.5): out0 = (a + b/2) / 1.5, out1 = (b/2 + c) / 1.5.
        #expect(gray(3, 1, [0, 30, 90]).resized(width: 2, height: 1).pixels == [10, 70])
        #expect(gray(1, 3, [0, 30, 90]).resized(width: 1, height: 2).pixels == [10, 70])

        // RGB channels are averaged separately.
        let rgb = DecodedImage(width: 2, height: 1, channels: 3, pixels: [0, 100, 200, 10, 110, 210])
        #expect(rgb.resized(width: 1, height: 1).pixels == [5, 105, 205])
    }

    @Test func shrinkingByTwoMatchesBlockMeans() {
        let image = randomImage(width: 64, height: 64, channels: 3, seed: 3)
        let small = image.resized(side: 32)
        var expected: [UInt8] = []
        for y in 0..<32 {
            for x in 0..<32 {
                for c in 0..<3 {
                    let sum = Int(image[2 * y, 2 * x, c]) + Int(image[2 * y, 2 * x + 1, c])
                        + Int(image[2 * y + 1, 2 * x, c]) + Int(image[2 * y + 1, 2 * x + 1, c])
                    expected.append(UInt8((sum + 2) / 4))
                }
            }
        }
        #expect(small.pixels == expected)
    }

    @Test func shrinkingKeepsFlatImagesFlatAndTheMeanClose() {
        let flat = DecodedImage(width: 97, height: 53, channels: 3, pixels: [UInt8](repeating: 200, count: 97 * 53 * 3))
        #expect(flat.resized(side: 32).pixels.allSatisfy { $0 == 200 })
        let photo = randomImage(width: 1000, height: 700, channels: 3, seed: 11)
        let small = photo.resized(side: 32)
        let meanBefore = Double(photo.pixels.reduce(0) { $0 + Int($1) }) / Double(photo.pixels.count)
        let meanAfter = Double(small.pixels.reduce(0) { $0 + Int($1) }) / Double(small.pixels.count)
        #expect(abs(meanBefore - meanAfter) < 0.5)
        // Area averaging of ~680 independent uniform pixels leaves little spread around 127.5.
        #expect(small.pixels.allSatisfy { (110...145).contains($0) })
    }

    @Test func enlargingIsBilinearWithHalfPixelCentres() {
        // 2 → 4: source x = (i + 0.5) / 2 − 0.5 = −0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
        #expect(gray(2, 1, [0, 100]).resized(width: 4, height: 1).pixels == [0, 25, 75, 100])
        #expect(gray(1, 2, [0, 100]).resized(width: 1, height: 4).pixels == [0, 25, 75, 100])
        // 2×2 → 3×3: sources 0 (clamped), 0.5, 1 (clamped) on both axes.
        #expect(gray(2, 2, [0, 100, 100, 200]).resized(side: 3).pixels == [0, 50, 100, 50, 100, 150, 100, 150, 200])
        // A single pixel is replicated.
        #expect(gray(1, 1, [42]).resized(width: 3, height: 2).pixels == [UInt8](repeating: 42, count: 6))
    }

    @Test func axesChooseTheirRuleIndependently() {
        // 4×1 → 2×2: horizontally area (0+10)/2, (20+40)/2; vertically one row replicated.
        #expect(gray(4, 1, [0, 10, 20, 40]).resized(width: 2, height: 2).pixels == [5, 30, 5, 30])
        let image = randomImage(width: 5, height: 4, channels: 1, seed: 5)
        #expect(image.resized(width: 5, height: 4) == image)
    }

    @Test func normalisationScalesThenStandardises() {
        let image = DecodedImage(width: 1, height: 2, channels: 3, pixels: [0, 51, 255, 255, 102, 0])
        let unit = image.normalised()
        #expect(unit == [0, 0.2, 1, 1, 0.4, 0].map { Float($0) })
        let mean: [Float] = [0.5, 0.2, 0.25], std: [Float] = [0.5, 0.1, 0.25]
        let standardised = image.normalised(mean: mean, std: std)
        let expected: [Float] = [-1, 0, 3, 1, 2, -1]
        for (value, target) in zip(standardised, expected) { #expect(abs(value - target) < 1e-5, "\(standardised)") }

        var slice = [Float](repeating: .nan, count: 6)
        slice.withUnsafeMutableBufferPointer { image.writeNormalised(into: $0, mean: mean, std: std) }
        #expect(slice == standardised)
    }
}
