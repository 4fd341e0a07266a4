// Where a training step's inputs come from, given a collection of stored images (UInt8 HWC, all
// of one size): a batch drawn uniformly, its two augmented views, and the input-space prior of the
// un-augmented images for ADC's LPM. Each step's draws depend only on (seed, step), so a resumed
// run sees exactly what an uninterrupted one would.
//
// The prior (method.md §3): `.pixels`, down-sampled standardised pixels ("identity"), or
// `.frozenEncoder`, the L2-normalised features of a frozen earlier model (in a stream, the previous
// published version: it keeps what earlier versions learned).
import Neural

public enum InputPrior {
    case pixels
    case frozenEncoder(Embedder)
}

/// A batch of stored images → the step's inputs: both augmented views, and the prior when the
/// config has ADC. Where the images come from (an in-memory dataset, the daemon's replay store) is
/// the caller's business; augmentation draws depend only on (seed, step).
public final class TrainingInputs {
    public let shape: SourceImageShape
    private let config: TrainingConfig
    private let augmenter: Augmenter
    private let normalization: ImageNormalization
    public let views = Tensor(zeros: [0])
    private let originals = Tensor(zeros: [0])
    private let prior: InputPrior

    public init(shape: SourceImageShape, config: TrainingConfig, prior: InputPrior = .pixels) throws(AugmentationError) {
        self.shape = shape
        self.config = config
        augmenter = try Augmenter(recipe: config.augmentation, seed: config.seed)
        normalization = ImageNormalization(config.augmentation)
        self.prior = prior
    }

    /// The views [2B, S, S, C] and the prior [B, P] (nil without ADC) of `config.batch` images,
    /// given as `batchPixels` (B × H × W × C bytes).
    public func inputs(_ batchPixels: [UInt8], step: Int) throws(AugmentationError) -> (views: Tensor, prior: Tensor?) {
        precondition(batchPixels.count == config.batch * shape.bytesPerImage, "a batch is \(config.batch) whole images")
        try augmenter.augmentBothViews(images: batchPixels, shape: shape, step: UInt64(step), into: views, workers: config.workers)
        guard config.adc != nil else { return (views, nil) }
        switch prior {
        case .pixels:
            batchPixels.withUnsafeBufferPointer {
                normalization.write($0, images: config.batch, height: shape.height, width: shape.width, channels: shape.channels, into: originals)
            }
            return (views, PixelPrior.representation(of: originals))
        case .frozenEncoder(let embedder):
            let features = embedder.embed(batchPixels, count: config.batch, height: shape.height, width: shape.width,
                                          channels: shape.channels)
            let width = features.lastDimension
            for r in 0..<features.shape[0] {
                let row = features.data + r * width
                BLAS.scale(count: width, alpha: 1 / max(BLAS.norm(count: width, row), 1e-12), x: row)
            }
            return (views, features)
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

    public init(pixels: [UInt8], shape: SourceImageShape, config: TrainingConfig, prior: InputPrior = .pixels) throws(AugmentationError) {
        precondition(pixels.count % shape.bytesPerImage == 0 && !pixels.isEmpty, "pixels do not hold whole images")
        self.pixels = pixels
        self.shape = shape
        self.count = pixels.count / shape.bytesPerImage
        self.config = config
        inputs = try TrainingInputs(shape: shape, config: config, prior: prior)
        batchPixels = [UInt8](repeating: 0, count: config.batch * shape.bytesPerImage)
    }

    /// The views [2B, S, S, C] and, when the config has ADC, the prior [B, P] for `step`.
    public func batch(step: Int) throws(AugmentationError) -> (views: Tensor, prior: Tensor?) {
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
