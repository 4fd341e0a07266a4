// The random decisions for one view of one image, drawn before any pixel is touched.
//
// Sampling is separate from rendering so that (1) every image gets its own generator keyed by
// (seed, step, image, view) and the result cannot depend on how a batch is split over threads,
// and (2) tests can check the draws' statistics and render hand-picked draws.
// Draw order mirrors solo-learn's pipeline: crop, jitter, grayscale, solarise, flip.
import Foundation
import Neural

/// A crop in source pixels: rows top..<top+height, columns left..<left+width.
public struct CropBox: Sendable, Equatable, Codable {
    public var top: Int
    public var left: Int
    public var height: Int
    public var width: Int

    public init(top: Int, left: Int, height: Int, width: Int) {
        self.top = top
        self.left = left
        self.height = height
        self.width = width
    }
}

public enum ColorOperation: Int, Sendable, CaseIterable, Codable {
    case brightness, contrast, saturation, hue
}

/// One application of ColorJitter: operations in `order`, each with its factor (nil: switched off).
public struct ColorJitterDraw: Sendable, Equatable {
    /// A permutation of the four operations as drawn; a hand-made draw may list fewer.
    public var order: [ColorOperation]
    public var brightness: Float?
    public var contrast: Float?
    public var saturation: Float?
    /// Shift of hue in turns, in [−0.5, 0.5].
    public var hue: Float?

    public init(order: [ColorOperation], brightness: Float? = nil, contrast: Float? = nil,
                saturation: Float? = nil, hue: Float? = nil) {
        self.order = order
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
    }
}

public struct ViewDraw: Sendable, Equatable {
    public var crop: CropBox
    public var horizontalFlip: Bool
    /// nil when the jitter was not applied (probability 1 − p).
    public var colorJitter: ColorJitterDraw?
    public var grayscale: Bool
    public var solarize: Bool

    public init(crop: CropBox, horizontalFlip: Bool = false, colorJitter: ColorJitterDraw? = nil,
                grayscale: Bool = false, solarize: Bool = false) {
        self.crop = crop
        self.horizontalFlip = horizontalFlip
        self.colorJitter = colorJitter
        self.grayscale = grayscale
        self.solarize = solarize
    }
}

/// Uniform in [low, high) as torch's `uniform_(low, high)` computes it in float32.
@inline(__always)
func uniform(_ low: Float, _ high: Float, _ rng: inout SeededGenerator) -> Float {
    rng.nextUniform() * (high - low) + low
}

/// Uniform integer in 0..<bound (bound ≥ 1), by the high half of a 64×64-bit product.
@inline(__always)
func uniformInteger(below bound: Int, _ rng: inout SeededGenerator) -> Int {
    Int(rng.next().multipliedFullWidth(by: UInt64(bound)).high)
}

extension RandomResizedCropSettings {
    /// torchvision `RandomResizedCrop.get_params`: up to `attempts` boxes of random area and
    /// aspect ratio (sides rounded half-to-even, as Python's `round`), the first that fits wins;
    /// otherwise the centred box of the source's ratio clamped to [minimumRatio, maximumRatio].
    public func sampleBox(sourceHeight height: Int, sourceWidth width: Int, using rng: inout SeededGenerator) -> CropBox {
        let area = Double(height) * Double(width)
        let logRatioLow = log(minimumRatio), logRatioHigh = log(maximumRatio)
        for _ in 0..<attempts {
            let targetArea = area * Double(uniform(minimumScale, maximumScale, &rng))
            let aspect = Double(exp(uniform(logRatioLow, logRatioHigh, &rng)))
            let w = (targetArea * aspect).squareRoot().rounded(.toNearestOrEven)
            let h = (targetArea / aspect).squareRoot().rounded(.toNearestOrEven)
            if w > 0, w <= Double(width), h > 0, h <= Double(height) {
                let (w, h) = (Int(w), Int(h))
                let top = uniformInteger(below: height - h + 1, &rng)
                let left = uniformInteger(below: width - w + 1, &rng)
                return CropBox(top: top, left: left, height: h, width: w)
            }
        }
        let sourceRatio = Double(width) / Double(height)
        var (w, h) = (width, height)
        if sourceRatio < Double(minimumRatio) {
            h = Int((Double(w) / Double(minimumRatio)).rounded(.toNearestOrEven))
        } else if sourceRatio > Double(maximumRatio) {
            w = Int((Double(h) * Double(maximumRatio)).rounded(.toNearestOrEven))
        }
        // torchvision can return an empty box for a 1-pixel-wide source; we keep one pixel.
        h = min(max(h, 1), height)
        w = min(max(w, 1), width)
        return CropBox(top: (height - h) / 2, left: (width - w) / 2, height: h, width: w)
    }
}

extension ColorJitterSettings {
    /// torchvision `ColorJitter.get_params`: a random permutation, then the enabled factors.
    public func sampleJitter(using rng: inout SeededGenerator) -> ColorJitterDraw {
        var order: [ColorOperation] = [.brightness, .contrast, .saturation, .hue]
        for i in stride(from: 3, to: 0, by: -1) { order.swapAt(i, uniformInteger(below: i + 1, &rng)) }
        func factor(_ strength: Float) -> Float? {
            strength > 0 ? uniform(max(0, 1 - strength), 1 + strength, &rng) : nil
        }
        let brightness = factor(self.brightness)
        let contrast = factor(self.contrast)
        let saturation = factor(self.saturation)
        let hue = self.hue > 0 ? uniform(-self.hue, self.hue, &rng) : nil
        return ColorJitterDraw(order: order, brightness: brightness, contrast: contrast,
                               saturation: saturation, hue: hue)
    }
}

extension ViewAugmentation {
    /// All decisions for one view of a source image of the given size.
    public func sampleDraw(sourceHeight: Int, sourceWidth: Int, using rng: inout SeededGenerator) -> ViewDraw {
        let box = crop.sampleBox(sourceHeight: sourceHeight, sourceWidth: sourceWidth, using: &rng)
        let jitter = rng.nextUniform() < colorJitter.probability ? colorJitter.sampleJitter(using: &rng) : nil
        let grayscale = rng.nextUniform() < grayscaleProbability
        let solarize = rng.nextUniform() < solarizationProbability
        let flip = rng.nextUniform() < horizontalFlipProbability
        return ViewDraw(crop: box, horizontalFlip: flip, colorJitter: jitter, grayscale: grayscale, solarize: solarize)
    }
}

/// SplitMix64's finaliser: a bijection that spreads every input bit over the output.
@inline(__always)
func splitMix64(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
