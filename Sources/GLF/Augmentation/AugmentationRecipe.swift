// The settings of the two augmented views that self-supervised training compares.
//
// Defaults are solo-learn's CIFAR pipeline (method.md §2): random resized crop (scale 0.08–1,
// ratio 3/4–4/3), horizontal flip 0.5, colour jitter with probability 0.8 (brightness 0.4,
// contrast 0.4, saturation 0.2, hue 0.1), grayscale 0.2, solarisation 0.0 on view 1 and 0.2 on
// view 2, then per-channel normalisation with the CIFAR-10 mean and std. Semantics follow
// torchvision's float-tensor path (see Augmenter.swift for where and why we deviate).
// Configs are data: every constant lives here, Codable, and is checked by `validate()`.

/// torchvision `RandomResizedCrop` sampling: area fraction uniform in [minimumScale,
/// maximumScale], aspect ratio (width / height) log-uniform in [minimumRatio, maximumRatio].
public struct RandomResizedCropSettings: Codable, Sendable, Equatable {
    public var minimumScale: Float
    public var maximumScale: Float
    public var minimumRatio: Float
    public var maximumRatio: Float
    /// Boxes tried before the centre-crop fallback (torchvision: 10).
    public var attempts: Int

    public init(minimumScale: Float = 0.08, maximumScale: Float = 1,
                minimumRatio: Float = Float(3.0 / 4.0), maximumRatio: Float = Float(4.0 / 3.0),
                attempts: Int = 10) {
        self.minimumScale = minimumScale
        self.maximumScale = maximumScale
        self.minimumRatio = minimumRatio
        self.maximumRatio = maximumRatio
        self.attempts = attempts
    }
}

/// torchvision `RandomApply([ColorJitter(b, c, s, h)], p)`: brightness, contrast and saturation
/// factors uniform in [max(0, 1 − x), 1 + x], hue shift uniform in [−hue, hue] turns, the four
/// applied in a random order. A strength of 0 switches its operation off (torchvision's `None`).
public struct ColorJitterSettings: Codable, Sendable, Equatable {
    public var probability: Float
    public var brightness: Float
    public var contrast: Float
    public var saturation: Float
    /// At most 0.5 (half a turn either way).
    public var hue: Float

    public init(probability: Float = 0.8, brightness: Float = 0.4, contrast: Float = 0.4,
                saturation: Float = 0.2, hue: Float = 0.1) {
        self.probability = probability
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
    }
}

/// Everything that defines one view.
public struct ViewAugmentation: Codable, Sendable, Equatable {
    /// Output images are outputSize × outputSize.
    public var outputSize: Int
    public var crop: RandomResizedCropSettings
    public var horizontalFlipProbability: Float
    public var colorJitter: ColorJitterSettings
    public var grayscaleProbability: Float
    public var solarizationProbability: Float
    /// Values ≥ threshold (on [0, 1]) become 1 − value (PIL's solarize at 128 for 8-bit sources).
    public var solarizationThreshold: Float
    /// R, G, B weights of luma, used by grayscale, saturation and contrast. torchvision's
    /// `rgb_to_grayscale` uses 0.2989, 0.587, 0.114 (ITU-R 601-2 with R rounded down).
    public var lumaWeights: [Float]
    /// Per output channel: out = (x − mean) / std, x in [0, 1].
    public var mean: [Float]
    public var std: [Float]

    public init(outputSize: Int = 32,
                crop: RandomResizedCropSettings = .init(),
                horizontalFlipProbability: Float = 0.5,
                colorJitter: ColorJitterSettings = .init(),
                grayscaleProbability: Float = 0.2,
                solarizationProbability: Float = 0,
                solarizationThreshold: Float = 0.5,
                lumaWeights: [Float] = [0.2989, 0.587, 0.114],
                mean: [Float] = ViewAugmentation.cifar10Mean,
                std: [Float] = ViewAugmentation.cifar10Std) {
        self.outputSize = outputSize
        self.crop = crop
        self.horizontalFlipProbability = horizontalFlipProbability
        self.colorJitter = colorJitter
        self.grayscaleProbability = grayscaleProbability
        self.solarizationProbability = solarizationProbability
        self.solarizationThreshold = solarizationThreshold
        self.lumaWeights = lumaWeights
        self.mean = mean
        self.std = std
    }

    public static let cifar10Mean: [Float] = [0.4914, 0.4822, 0.4465]
    public static let cifar10Std: [Float] = [0.2470, 0.2435, 0.2616]
}

/// How many channels the network sees, whatever the source has.
public enum OutputChannels: String, Codable, Sendable {
    /// Three channels; 1-channel sources (Fashion-MNIST) are replicated to R = G = B, so one
    /// encoder stem serves every dataset. Saturation and hue then leave a grey image grey.
    case rgb
    /// One channel; RGB sources are first reduced to luma. Saturation, hue and grayscale are
    /// no-ops on one channel (torchvision does the same), mean and std have one entry.
    case gray

    public var count: Int { self == .rgb ? 3 : 1 }
}

/// Which of the two views.
public enum AugmentationView: Int, Sendable, CaseIterable {
    case first = 0
    case second = 1
}

/// The two views of solo-learn's recipe. Both go through the network as one [2B, S, S, C] batch,
/// so they must agree on size and channels.
public struct AugmentationRecipe: Codable, Sendable, Equatable {
    public var view1: ViewAugmentation
    public var view2: ViewAugmentation
    public var outputChannels: OutputChannels

    public init(view1: ViewAugmentation, view2: ViewAugmentation, outputChannels: OutputChannels = .rgb) {
        self.view1 = view1
        self.view2 = view2
        self.outputChannels = outputChannels
    }

    /// solo-learn's CIFAR defaults: the views differ only in solarisation (0 and 0.2).
    public static let cifar = AugmentationRecipe(
        view1: ViewAugmentation(solarizationProbability: 0),
        view2: ViewAugmentation(solarizationProbability: 0.2))

    public subscript(view: AugmentationView) -> ViewAugmentation {
        view == .first ? view1 : view2
    }

    public var outputSize: Int { view1.outputSize }

    /// Rejects settings that torchvision would reject or that make no image.
    public func validate() throws(AugmentationError) {
        try view1.validate(name: "view1", channels: outputChannels.count)
        try view2.validate(name: "view2", channels: outputChannels.count)
        guard view1.outputSize == view2.outputSize else {
            throw AugmentationError(.invalidSetting, "view1.outputSize (\(view1.outputSize)) and view2.outputSize (\(view2.outputSize)) differ; both views share one batch tensor")
        }
    }
}

extension ViewAugmentation {
    /// Largest accepted output side: far above any training crop, small enough that sizes never overflow.
    public static let maximumOutputSize = 4096

    func validate(name: String, channels: Int) throws(AugmentationError) {
        func fail(_ message: String) -> AugmentationError { AugmentationError(.invalidSetting, "\(name).\(message)") }
        func probability(_ p: Float, _ field: String) throws(AugmentationError) {
            guard p >= 0, p <= 1 else { throw fail("\(field) must be in [0, 1], got \(p)") }
        }
        guard outputSize >= 1, outputSize <= Self.maximumOutputSize else {
            throw fail("outputSize must be in 1...\(Self.maximumOutputSize), got \(outputSize)")
        }
        guard crop.minimumScale > 0, crop.minimumScale <= crop.maximumScale, crop.maximumScale.isFinite else {
            throw fail("crop scale must satisfy 0 < minimumScale ≤ maximumScale, got \(crop.minimumScale)...\(crop.maximumScale)")
        }
        guard crop.minimumRatio > 0, crop.minimumRatio <= crop.maximumRatio, crop.maximumRatio.isFinite else {
            throw fail("crop ratio must satisfy 0 < minimumRatio ≤ maximumRatio, got \(crop.minimumRatio)...\(crop.maximumRatio)")
        }
        guard crop.attempts >= 0, crop.attempts <= 1000 else { throw fail("crop.attempts must be in 0...1000, got \(crop.attempts)") }
        try probability(horizontalFlipProbability, "horizontalFlipProbability")
        try probability(colorJitter.probability, "colorJitter.probability")
        try probability(grayscaleProbability, "grayscaleProbability")
        try probability(solarizationProbability, "solarizationProbability")
        for (value, field) in [(colorJitter.brightness, "brightness"), (colorJitter.contrast, "contrast"),
                               (colorJitter.saturation, "saturation")] {
            guard value >= 0, value.isFinite else { throw fail("colorJitter.\(field) must be finite and ≥ 0, got \(value)") }
        }
        guard colorJitter.hue >= 0, colorJitter.hue <= 0.5 else { throw fail("colorJitter.hue must be in [0, 0.5], got \(colorJitter.hue)") }
        guard solarizationThreshold.isFinite else { throw fail("solarizationThreshold must be finite") }
        guard lumaWeights.count == 3, lumaWeights.allSatisfy({ $0.isFinite }) else {
            throw fail("lumaWeights must be 3 finite numbers (R, G, B), got \(lumaWeights)")
        }
        guard mean.count == channels, std.count == channels else {
            throw fail("mean and std need \(channels) entries (one per output channel), got \(mean.count) and \(std.count)")
        }
        guard mean.allSatisfy({ $0.isFinite }), std.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw fail("mean must be finite and std finite and > 0, got \(mean) and \(std)")
        }
    }
}
