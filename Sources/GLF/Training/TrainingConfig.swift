// Everything a training run is made of, as data (solo-learn keeps its configs as YAML files; ours
// is JSON beside the weights): the method and its ADC weights, the encoder, the optimiser and
// its schedule, the batch, the seed and the number of workers.
import Neural

public struct TrainingConfig: Codable, Sendable, Equatable {
    public var method: MethodName = .byol
    public var encoder = EncoderConfig()
    /// Head sizes that differ from the method's recipe (nil: the recipe's).
    public var heads = HeadSizes()
    /// ADC's weights (ν, υ) and constants; nil trains the method alone.
    public var adc: AdaptiveDistributionCalibration? = AdaptiveDistributionCalibration()
    public var optimiser = OptimiserConfig()
    /// Images per step (each goes through the network as two views).
    public var batch = 128
    /// Cores: one replica of the network per view runs on each.
    public var workers = 2
    public var seed: UInt64 = 0
    /// How views are made; its mean and std also normalise images at evaluation.
    public var augmentation = AugmentationRecipe.cifar
    /// τ of an exponential moving average of the weights that the model directory holds instead
    /// of the online weights (nil: no average; the online weights are the model).
    public var averageDecay: Float? = nil

    public init() {}

    /// The method with its recipe's constants (solo-learn's CIFAR recipes) and `heads` applied.
    public var methodValue: any Method {
        let h = heads
        switch method {
        case .byol:
            var m = BYOL()
            m.hiddenDimension = h.hidden ?? m.hiddenDimension
            m.projectionDimension = h.projection ?? m.projectionDimension
            m.predictorHiddenDimension = h.predictorHidden ?? m.predictorHiddenDimension
            return m
        case .barlowTwins:
            var m = BarlowTwins()
            m.hiddenDimension = h.hidden ?? m.hiddenDimension
            m.projectionDimension = h.projection ?? m.projectionDimension
            return m
        case .swav:
            var m = SwAV()
            m.hiddenDimension = h.hidden ?? m.hiddenDimension
            m.projectionDimension = h.projection ?? m.projectionDimension
            m.prototypesConfig.count = h.prototypes ?? m.prototypesConfig.count
            m.prototypesConfig.frozenSteps = h.prototypesFrozenSteps ?? m.prototypesConfig.frozenSteps
            m.prototypesConfig.queueLength = h.prototypesQueue ?? m.prototypesConfig.queueLength
            return m
        case .simclr:
            var m = SimCLR()
            m.hiddenDimension = h.hidden ?? m.hiddenDimension
            m.projectionDimension = h.projection ?? m.projectionDimension
            return m
        }
    }
}

public struct HeadSizes: Codable, Sendable, Equatable {
    public var hidden: Int?
    public var projection: Int?
    public var predictorHidden: Int?
    public var prototypes: Int?
    public var prototypesFrozenSteps: Int?
    public var prototypesQueue: Int?

    public init(hidden: Int? = nil, projection: Int? = nil, predictorHidden: Int? = nil, prototypes: Int? = nil,
                prototypesFrozenSteps: Int? = nil, prototypesQueue: Int? = nil) {
        self.hidden = hidden
        self.projection = projection
        self.predictorHidden = predictorHidden
        self.prototypes = prototypes
        self.prototypesFrozenSteps = prototypesFrozenSteps
        self.prototypesQueue = prototypesQueue
    }
}

public struct OptimiserConfig: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case sgd, lars, adamw }
    public var kind = Kind.sgd
    /// Peak learning rate (lightly's CIFAR recipe: 0.06 × batch / 256 for SGD).
    public var learningRate: Float = 0.06
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
