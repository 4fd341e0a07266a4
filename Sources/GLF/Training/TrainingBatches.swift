// Where a training step's inputs come from, given a collection of stored images (UInt8 HWC, all
// of one size): a batch drawn uniformly, its two augmented views, and the input-space prior of the
// un-augmented images for ADC's LPM. Each step's draws depend only on (seed, step), so a resumed
// run sees exactly what an uninterrupted one would.
//
// The prior (method.md §3): `.pixels`, down-sampled standardised pixels ("identity"), or
// `.frozenEncoder`, the L2-normalised features of a frozen earlier model (in a stream, the previous
// published version: it keeps what earlier versions learned).
// With a compatibility term, also the previous version's unit features of the same two views;
// with small crops, their pairs of views.
import Neural

public enum InputPrior {
    case pixels
    case frozenEncoder(Embedder)
}

/// One step's inputs, for `Trainer.step`.
public struct StepInputs {
    /// Both augmented views [2B, S, S, C].
    public var views: Tensor
    /// ADC's input-space prior [B, P], or nil without ADC.
    public var prior: Tensor?
    /// The previous version's unit features [2B, F] of the same two views, or nil without a
    /// compatibility term.
    public var previous: Tensor?
    /// Each pair of small crops [2B, s, s, C] (`TrainingConfig.smallCrops`; none without).
    public var smallCrops: [Tensor]

    public init(views: Tensor, prior: Tensor? = nil, previous: Tensor? = nil, smallCrops: [Tensor] = []) {
        (self.views, self.prior, self.previous, self.smallCrops) = (views, prior, previous, smallCrops)
    }
}

/// A batch of stored images → the step's inputs: both augmented views, the prior when the config
/// has ADC, and the previous version's features when it has a compatibility term. Where the images
/// come from (an in-memory dataset, the daemon's replay store) is the caller's business;
/// augmentation draws depend only on (seed, step).
public final class TrainingInputs {
    public let shape: SourceImageShape
    private let config: TrainingConfig
    /// One augmenter per view size (one unless the resolution is progressive); the draws depend
    /// only on (seed, step) whatever the size.
    private var augmenters: [Int: Augmenter] = [:]
    private let normalization: ImageNormalization
    public let views = Tensor(zeros: [0])
    private let originals = Tensor(zeros: [0])
    private let previousFeatures = Tensor(zeros: [0])
    private let prior: InputPrior
    private let previousVersion: Embedder?
    /// One augmenter per pair of small crops, each with a seed of its own (their draws differ
    /// from the large views' and from each other's), and the tensors they fill.
    private let smallCropAugmenters: [Augmenter]
    private let smallCropViews: [Tensor]

    /// `previousVersion`: the encoder the compatibility term compares with (unused without one).
    public init(shape: SourceImageShape, config: TrainingConfig, prior: InputPrior = .pixels,
                previousVersion: Embedder? = nil) throws(AugmentationError) {
        self.shape = shape
        self.config = config
        augmenters[config.augmentation.outputSize] = try Augmenter(recipe: config.augmentation, seed: config.seed)
        normalization = ImageNormalization(config.augmentation)
        self.prior = prior
        self.previousVersion = previousVersion
        var smallCropAugmenters: [Augmenter] = []
        if let small = config.smallCrops {
            for pair in 0..<small.pairs {
                smallCropAugmenters.append(try Augmenter(recipe: small.recipe(from: config.augmentation),
                                                         seed: Self.smallCropSeed(config.seed, pair: pair)))
            }
        }
        self.smallCropAugmenters = smallCropAugmenters
        smallCropViews = smallCropAugmenters.map { _ in Tensor(zeros: [0]) }
    }

    /// The augmentation seed of small-crop pair `pair`: the run's seed, mixed with the pair.
    static func smallCropSeed(_ seed: UInt64, pair: Int) -> UInt64 {
        splitMix64(seed ^ (0x5A11_C409 &+ UInt64(pair)))
    }

    /// The inputs of a step on `config.batch` images, given as `batchPixels` (B × H × W × C bytes).
    public func inputs(_ batchPixels: [UInt8], step: Int) throws(AugmentationError) -> StepInputs {
        precondition(batchPixels.count == config.batch * shape.bytesPerImage, "a batch is \(config.batch) whole images")
        try augmenter(atStep: step).augmentBothViews(images: batchPixels, shape: shape, step: UInt64(step), into: views, workers: config.workers)
        var inputs = StepInputs(views: views)
        for (augmenter, crops) in zip(smallCropAugmenters, smallCropViews) {
            try augmenter.augmentBothViews(images: batchPixels, shape: shape, step: UInt64(step), into: crops, workers: config.workers)
            inputs.smallCrops.append(crops)
        }
        if config.adc != nil {
            switch prior {
            case .pixels:
                batchPixels.withUnsafeBufferPointer {
                    normalization.write($0, images: config.batch, height: shape.height, width: shape.width, channels: shape.channels, into: originals)
                }
                inputs.prior = PixelPrior.representation(of: originals)
            case .frozenEncoder(let embedder):
                inputs.prior = unitFeatures(embedder, of: batchPixels)
            }
        }
        if config.compatibility != nil, let previousVersion {
            // The same views the new encoder sees, through the previous one, no gradient.
            previousFeatures.reshape(to: [2 * config.batch, previousVersion.encoderConfig.featureDimension])
            previousFeatures.copy(from: previousVersion.model.forward(views, mode: .inference))
            normaliseRows(previousFeatures)
            inputs.previous = previousFeatures
        }
        return inputs
    }

    /// The augmenter for the view size of `step` (`config.progressive`).
    private func augmenter(atStep step: Int) throws(AugmentationError) -> Augmenter {
        let finalSize = config.augmentation.outputSize
        let size = config.progressive?.size(atStep: step, finalSize: finalSize) ?? finalSize
        if let augmenter = augmenters[size] { return augmenter }
        var recipe = config.augmentation
        recipe.view1.outputSize = size
        recipe.view2.outputSize = size
        let augmenter = try Augmenter(recipe: recipe, seed: config.seed)
        augmenters[size] = augmenter
        return augmenter
    }

    /// An encoder's features [B, F] of the batch, each row scaled to unit length.
    private func unitFeatures(_ embedder: Embedder, of batchPixels: [UInt8]) -> Tensor {
        let features = embedder.embed(batchPixels, count: config.batch, height: shape.height, width: shape.width,
                                      channels: shape.channels)
        normaliseRows(features)
        return features
    }

    private func normaliseRows(_ features: Tensor) {
        let width = features.lastDimension
        for r in 0..<features.rows {
            let row = features.data + r * width
            BLAS.scale(count: width, alpha: 1 / max(BLAS.norm(count: width, row), 1e-12), x: row)
        }
    }
}

/// Batches drawn uniformly from an in-memory collection of images (offline training).
public final class TrainingBatches {
    public let shape: SourceImageShape
    public let count: Int
    private let pixels: [UInt8]
    private let config: TrainingConfig
    private let inputs: TrainingInputs
    private var batchPixels: [UInt8]

    public init(pixels: [UInt8], shape: SourceImageShape, config: TrainingConfig, prior: InputPrior = .pixels,
                previousVersion: Embedder? = nil) throws(AugmentationError) {
        precondition(pixels.count % shape.bytesPerImage == 0 && !pixels.isEmpty, "pixels do not hold whole images")
        self.pixels = pixels
        self.shape = shape
        self.count = pixels.count / shape.bytesPerImage
        self.config = config
        inputs = try TrainingInputs(shape: shape, config: config, prior: prior, previousVersion: previousVersion)
        batchPixels = [UInt8](repeating: 0, count: config.batch * shape.bytesPerImage)
    }

    /// The inputs of `step`: its views, and the prior and previous features the config asks for.
    public func batch(step: Int) throws(AugmentationError) -> StepInputs {
        var sampler = SeededGenerator(seed: config.seed ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15))
        let size = shape.bytesPerImage
        batchPixels.withUnsafeMutableBufferPointer { dst in
            pixels.withUnsafeBufferPointer { src in
                for b in 0..<config.batch {
                    let index = Int(sampler.next() % UInt64(count))
                    (dst.baseAddress! + b * size).update(from: src.baseAddress! + index * size, count: size)
                }
            }
        }
        return try inputs.inputs(batchPixels, step: step)
    }
}
