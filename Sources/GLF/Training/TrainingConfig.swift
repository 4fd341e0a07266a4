// Everything a training run is made of, as data (solo-learn keeps its configs as YAML files; ours
// is JSON beside the weights): the method and its ADC weights, the encoder, the optimiser and
// its schedule, the batch, the seed and the number of workers.
import Neural

/// Its initial values are the shipped recipe: what glfd trains unless configured otherwise (its
/// key table reads these defaults, so `systemd/glfd.toml` shows them) and what `glf train` starts
/// from. They were chosen by measurement (README, "Quality"); change them there first.
public struct TrainingConfig: Codable, Sendable, Equatable {
    public var method: MethodName = .simclr
    public var encoder = EncoderConfig()
    /// The method's constants that differ from its recipe (nil: the recipe's). Saved runs call
    /// them `heads`: they began as head sizes, and the name is kept so saved runs still load.
    public var heads = MethodConstants()
    /// ADC's weights (ν, υ) and constants; nil trains the method alone.
    public var adc: AdaptiveDistributionCalibration? = AdaptiveDistributionCalibration()
    public var optimiser = OptimiserConfig()
    /// Images per step (each goes through the network as two views).
    public var batch = 256
    /// Cores: one replica of the network per view runs on each.
    public var workers = 2
    public var seed: UInt64 = 0
    /// How views are made; its mean and std also normalise images at evaluation.
    public var augmentation = AugmentationRecipe.cifar
    /// τ of an exponential moving average of the weights that the model directory holds instead
    /// of the online weights (nil: no average; the online weights are the model).
    public var averageDecay: Float? = 0.998
    /// The compatibility term against a previous model version (nil: off): `glf train
    /// --compatible-with`, an experiment (README, "Serving speed": it raised recall@10 across
    /// versions from 0.41 to 0.52 at a cost of 2.2 kNN points, so glfd does not offer it).
    public var compatibility: CompatibilityTerm? = nil
    /// Smaller views in the early steps (nil: every step at the encoder's image size).
    public var progressive: ProgressiveResolution? = nil
    /// Small crops beside the two views (multi-crop; nil: none).
    public var smallCrops: SmallCrops? = nil

    public init() {}

    /// The method with its recipe's constants (solo-learn's CIFAR recipes) and `heads` applied.
    public var methodValue: any Method { MethodRegistry.method(method, constants: heads) }
}

/// One way a configuration differs from a saved run's: what a resumed run may take from the new
/// configuration (the schedule, ADC, the average's decay, the seed) and what it may not (anything
/// that shapes the networks, the batch tensors or the optimiser state on disk).
public struct ConfigurationChange: Sendable, Equatable, CustomStringConvertible {
    public enum Field: String, Sendable, CaseIterable {
        case method, width, depth, imageSide, channels, heads, batch, optimiser, averaging, augmentation
        case learningRate, weightDecay, momentum, warmupSteps, totalSteps, adc, averageDecay, seed, compatibility, progressive
        case smallCrops
    }
    public var field: Field
    public var saved: String
    public var wanted: String

    public var canChangeOnResume: Bool {
        switch field {
        case .method, .width, .depth, .imageSide, .channels, .heads, .batch, .optimiser, .averaging, .augmentation: false
        case .learningRate, .weightDecay, .momentum, .warmupSteps, .totalSteps, .adc, .averageDecay, .seed, .compatibility, .progressive,
             .smallCrops: true
        }
    }

    public var description: String { "\(field.rawValue): saved \(saved), now \(wanted)" }
}

extension TrainingConfig {
    /// How this configuration differs from `saved`'s, field by field (workers aside: a resumed run
    /// may use any number of cores).
    public func changes(toResume saved: TrainingConfig) -> [ConfigurationChange] {
        var changes: [ConfigurationChange] = []
        func compare<T: Equatable>(_ field: ConfigurationChange.Field, _ value: (TrainingConfig) -> T) {
            let (before, now) = (value(saved), value(self))
            if before != now { changes.append(ConfigurationChange(field: field, saved: "\(before)", wanted: "\(now)")) }
        }
        func describe(_ adc: AdaptiveDistributionCalibration?) -> String {
            guard let adc else { return "off" }
            return "\(adc)"
        }
        compare(.method) { $0.method.rawValue }
        compare(.width) { $0.encoder.width }
        compare(.depth) { $0.encoder.blocksPerStage }
        compare(.imageSide) { $0.encoder.imageSize }
        compare(.channels) { $0.encoder.inputChannels }
        compare(.heads) { $0.heads }
        compare(.batch) { $0.batch }
        compare(.optimiser) { $0.optimiser.kind.rawValue }
        compare(.averaging) { $0.averageDecay == nil ? "off" : "on" }
        compare(.augmentation) { $0.augmentation }
        compare(.learningRate) { $0.optimiser.learningRate }
        compare(.weightDecay) { $0.optimiser.weightDecay }
        compare(.momentum) { $0.optimiser.momentum }
        compare(.warmupSteps) { $0.optimiser.warmupSteps }
        compare(.totalSteps) { $0.optimiser.totalSteps.map(String.init) ?? "none" }
        if saved.adc != adc { changes.append(ConfigurationChange(field: .adc, saved: describe(saved.adc), wanted: describe(adc))) }
        if let before = saved.averageDecay, let now = averageDecay, before != now {
            changes.append(ConfigurationChange(field: .averageDecay, saved: "\(before)", wanted: "\(now)"))
        }
        compare(.seed) { $0.seed }
        compare(.compatibility) { $0.compatibility.map { "\($0)" } ?? "off" }
        compare(.progressive) { $0.progressive.map { "\($0)" } ?? "off" }
        compare(.smallCrops) { $0.smallCrops.map { "\($0)" } ?? "off" }
        return changes
    }
}

/// Progressive resolution (FFCV's progressive resizing; the "small crops early"): the
/// views start at `startSize` pixels a side and grow linearly to the full size by `rampSteps`, in
/// steps of 8 pixels, so the early steps, which learn coarse features, cost a fraction of the late
/// ones (a convolution's cost goes with the pixels: a 16-pixel view costs a quarter of a 32-pixel
/// one). The encoder pools globally, so one network takes every size.
public struct ProgressiveResolution: Codable, Sendable, Equatable, CustomStringConvertible {
    public var startSize: Int
    public var rampSteps: Int

    public init(startSize: Int, rampSteps: Int) {
        (self.startSize, self.rampSteps) = (startSize, rampSteps)
    }

    /// The side of the views at `step` (0-based) for a full size of `finalSize`.
    public func size(atStep step: Int, finalSize: Int) -> Int {
        guard step < rampSteps, startSize < finalSize else { return finalSize }
        let linear = Double(startSize) + Double(finalSize - startSize) * Double(step) / Double(rampSteps)
        return min(finalSize, max(startSize, Int(linear) / 8 * 8))
    }

    public var description: String { "from \(startSize) px, full size at step \(rampSteps)" }
}

/// Small crops (multi-crop: SwAV, Caron et al. 2020; DINO): besides its two views, each image
/// gives `pairs` pairs of small crops, `size` pixels a side, cut from `scale` of its area. A crop
/// of 16 pixels costs the encoder a quarter of a 32-pixel view, and asks it to tell an image by a
/// part of it. The crops learn from the large views, never the other way (DINO's local-to-global
/// rule): a TargetInfoNCE of each small crop's projections against each large view's unit
/// projections, the large views without gradient; weighted by `weight`, averaged over the crops
/// and the two large views. Pairs, because the network runs one replica per view: crop 1 of every
/// image on one core, crop 2 on the other.
public struct SmallCrops: Codable, Sendable, Equatable, CustomStringConvertible {
    public var pairs: Int
    public var size: Int
    public var minimumScale: Float
    public var maximumScale: Float
    public var weight: Float
    public var temperature: Float

    public init(pairs: Int = 1, size: Int = 16, minimumScale: Float = 0.05, maximumScale: Float = 0.4,
                weight: Float = 1, temperature: Float = 0.2) {
        (self.pairs, self.size, self.minimumScale, self.maximumScale) = (pairs, size, minimumScale, maximumScale)
        (self.weight, self.temperature) = (weight, temperature)
    }

    /// The crops' recipe: the large views' with the small size and crop scale.
    public func recipe(from large: AugmentationRecipe) -> AugmentationRecipe {
        var recipe = large
        for keyPath in [\AugmentationRecipe.view1, \AugmentationRecipe.view2] {
            recipe[keyPath: keyPath].outputSize = size
            recipe[keyPath: keyPath].crop.minimumScale = minimumScale
            recipe[keyPath: keyPath].crop.maximumScale = maximumScale
        }
        return recipe
    }

    public var loss: TargetInfoNCE { TargetInfoNCE(temperature: temperature) }
    public var description: String {
        "\(2 * pairs) of \(size) px from \(minimumScale)–\(maximumScale) of the area, λ \(weight), τ \(temperature)"
    }
}

/// The compatibility term (a TargetInfoNCE): its weight λ and temperature τ, for the features of
/// both views against the previous version's features of the same views.
public struct CompatibilityTerm: Codable, Sendable, Equatable, CustomStringConvertible {
    public var weight: Float
    public var temperature: Float

    public init(weight: Float = 1, temperature: Float = 0.1) {
        (self.weight, self.temperature) = (weight, temperature)
    }

    public var loss: TargetInfoNCE { TargetInfoNCE(temperature: temperature) }
    public var description: String { "λ \(weight), τ \(temperature)" }
}

/// A method's constants that a run sets apart from the recipe's: head sizes, SwAV's prototypes and
/// queue, and the temperature of its loss (SimCLR's NT-Xent, SwAV's swapped prediction).
public struct MethodConstants: Codable, Sendable, Equatable {
    public var temperature: Float?
    public var hidden: Int?
    public var projection: Int?
    public var predictorHidden: Int?
    public var prototypes: Int?
    public var prototypesFrozenSteps: Int?
    public var prototypesQueue: Int?

    public init(hidden: Int? = nil, projection: Int? = nil, predictorHidden: Int? = nil, prototypes: Int? = nil,
                prototypesFrozenSteps: Int? = nil, prototypesQueue: Int? = nil, temperature: Float? = nil) {
        self.temperature = temperature
        self.hidden = hidden
        self.projection = projection
        self.predictorHidden = predictorHidden
        self.prototypes = prototypes
        self.prototypesFrozenSteps = prototypesFrozenSteps
        self.prototypesQueue = prototypesQueue
    }
}

public struct OptimiserConfig: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case sgd, lars, adamw }
    public var kind = Kind.sgd
    /// Peak learning rate: 0.5 for SGD at batch 256 learned most in an hour (lightly's CIFAR
    /// recipe has 0.06 × batch / 256; README, "Quality").
    public var learningRate: Float = 0.5
    public var momentum: Float = 0.9
    public var weightDecay: Float = 5e-4
    public var warmupSteps = 100
    /// Steps of the cosine decay; nil keeps the peak rate after warm-up (a daemon has no end).
    public var totalSteps: Int? = nil

    public init() {}

    public func makeOptimiser() -> any Optimiser {
        switch kind {
        case .sgd: SGD(learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
        case .lars: LARS(learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
        case .adamw: AdamW(learningRate: learningRate, weightDecay: weightDecay)
        }
    }

    public var schedule: LearningRateSchedule {
        if let totalSteps {
            return .warmupCosine(peak: learningRate, warmupSteps: warmupSteps, totalSteps: totalSteps)
        }
        return .warmupConstant(peak: learningRate, warmupSteps: warmupSteps)
    }
}
