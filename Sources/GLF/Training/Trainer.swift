// The trainer: one GLF step at a time, for any method, with or without ADC.
//
//   views [2B, S, S, C]  view 1 of every image, then view 2 (augmented by the caller)
//   smallCrops [2B, s, s, C] each  pairs of small crops of the same images, or none
//   prior [B, P]         the input-space prior of the same images for ADC's LPM, or nil
//   previous [2B, F]     the previous version's unit features of the same views, for the
//                        compatibility term, or nil
//
//   online     encoder + tap + projector     z  = online(views)          replicated per view;
//                                            the tap keeps each view's features h [B, F]
//   heads      the method's (`MethodHead`):  BYOL's predictor p = q(z), SwAV's prototypes s = Cᵀẑ
//   target     BYOL, EMA of online            z' = target(views), no gradient
//   state      the method's (`MethodState`): SwAV scores its queue of past projections
//   parts      the method's aligning + constraining parts on those, gradients into dz, dp, ds, dẑ;
//              the heads backward (their input gradients join dz or dẑ); dẑ folded into dz: the
//              method's dL/dz, whose norm is measured
//   ADC        its terms on ẑ, folded into dz; each term's gradient norm over the method's is
//              its gradient share (method.md §3: the sign that the term is alive)
//   compatibility  optional: TargetInfoNCE of each view's h against `previous`; its gradient
//              joins the encoder's at the tap
//   backward   online, from dz
//   small crops  optional (`config.smallCrops`): each pair of small crops [2B, s, s, C] through
//              online after the large views' backward (a forward overwrites the layers'
//              activations), a TargetInfoNCE of their projections against the large views' ẑ,
//              which stays fixed; their backward adds into the same gradients
//   update     learning rate from the schedule, one optimiser per network (a head may sit out
//              its first steps, and may act after each update: SwAV's prototypes); the method's
//              state records the step (SwAV's queue); EMA of the target
//   average    optional: an exponential moving average of online (weights and batch-norm
//              statistics), which the model directory then holds: what is evaluated, embedded
//              and published. A daemon trains at a constant rate (it has no end to decay
//              towards); averaging the weights is how its versions get the quiet of an annealed
//              run without stopping the learning (Polyak averaging; SWA).
//
// A step whose loss is not finite changes no parameter; it still counts as a step, so that the
// next one draws another batch.
import Foundation
import Neural

public struct StepReport: Sendable {
    public var step: Int
    public var loss: Float
    public var terms: [LossValue]
    /// Mean over dimensions of the batch std of unit projections: ≈ 1/√D healthy, 0 collapsed.
    public var collapseMonitor: Float
    public var learningRate: Float
    /// False when the loss was not finite and the step was skipped.
    public var updated: Bool
    /// For each term that measures its gradient (ADC's): ‖∂(weighted term)/∂z‖ / ‖∂L_method/∂z‖.
    public var gradientShares: [String: Float] = [:]
}

public final class Trainer {
    public let config: TrainingConfig
    public let method: any Method
    public let online: ReplicatedModel
    /// The method's heads after the projector, in the order they run.
    public let heads: [MethodHead]
    public let target: ReplicatedModel?
    /// What the method keeps between steps, saved with checkpoints.
    let state: (any MethodState)?
    public private(set) var stepCount = 0
    private let methodParts: [WeightedPart]
    private let calibrationParts: [WeightedPart]
    /// Each replica's tap between encoder and projector (one per view).
    private let taps: [FeatureTap]
    private let tapGradients: [Tensor]
    /// The large views' ẑ [2B, D], kept as the small crops' targets, and their gradient [2B, D].
    private let largeViewTargets = Tensor(zeros: [0])
    private let smallCropGradient = Tensor(zeros: [0])
    /// One optimiser per trained network, by the name its checkpoint files use: online, then the heads.
    let optimisers: [(name: String, model: ReplicatedModel, optimiser: any Optimiser)]
    private let ema: ExponentialMovingAverage?
    /// The moving average of online that the model directory holds (`config.averageDecay`), or nil.
    public let averaged: ReplicatedModel?
    private let tensors: StepTensors

    public init(_ config: TrainingConfig) {
        self.config = config
        let method = MethodRegistry.method(config.method, constants: config.heads)
        self.method = method
        let (encoderConfig, workers, seed) = (config.encoder, config.workers, config.seed)
        let projector = method.projector(featureDimension: encoderConfig.featureDimension)
        func backbone(_ arena: ParameterArena) -> Layer {
            var rng = SeededGenerator(seed: seed)
            let encoder = ResNetEncoder(encoderConfig, in: arena, rng: &rng)
            return Sequential([encoder, FeatureTap(), MLPHead(projector, name: "projector", in: arena, rng: &rng)])
        }
        online = ReplicatedModel(replicas: 2, workers: workers, build: backbone)
        taps = online.replicas.map { ($0 as! Sequential).layers[1] as! FeatureTap }
        tapGradients = taps.map { _ in Tensor(zeros: [0]) }
        target = method.targetDecay.map { _ in ReplicatedModel(replicas: 2, workers: workers, build: backbone) }
        heads = method.makeHeads(projectionDimension: projector.outputDimension, workers: workers, seed: seed)
        state = method.makeState(batch: config.batch, projectionDimension: projector.outputDimension)
        if let target { target.arena.copyValues(from: online.arena) }
        averaged = config.averageDecay.map { _ in ReplicatedModel(replicas: 1, workers: 1, build: backbone) }
        if let averaged { averaged.arena.copyValues(from: online.arena) }
        ema = method.targetDecay.map { ExponentialMovingAverage(decay: $0) }
        methodParts = method.parts
        calibrationParts = config.adc.map { [WeightedPart(ADCPart($0))] } ?? []
        let trained: [(String, ReplicatedModel)] = [("online", online)] + heads.map { ($0.name, $0.model) }
        optimisers = trained.map { (name: $0.0, model: $0.1, optimiser: config.optimiser.makeOptimiser()) }
        tensors = StepTensors(batch: config.batch)
    }

    func resumeAt(step: Int) { stepCount = step }

    public var encoder: ResNetEncoder { (online.replicas[0] as! Sequential).layers[0] as! ResNetEncoder }

    /// The method's head called `name` (BYOL's "predictor", SwAV's "prototypes"), if it has one.
    public func head(_ name: String) -> ReplicatedModel? { heads.first { $0.name == name }?.model }

    public func step(_ inputs: StepInputs) -> StepReport {
        step(views: inputs.views, prior: inputs.prior, previous: inputs.previous, smallCrops: inputs.smallCrops)
    }

    /// `previous` is read only with a compatibility term, `smallCrops` only with
    /// `config.smallCrops`; without them, their terms are skipped.
    public func step(views: Tensor, prior: Tensor?, previous: Tensor? = nil, smallCrops: [Tensor] = []) -> StepReport {
        precondition(views.shape[0] == 2 * config.batch, "views \(views.shape) are not two views of \(config.batch) images")
        let mode = ForwardMode.training(views: 2)
        for (_, model, _) in optimisers { model.zeroGradients() }

        tensors.begin(projections: online.forward(views, mode: mode))
        tensors.prior = config.adc == nil ? nil : prior
        for head in heads { tensors[keyPath: head.output] = head.model.forward(tensors[keyPath: head.input], mode: mode) }
        if let target { tensors.targets = target.forward(views, mode: mode) }
        state?.prepare(tensors, heads: heads)

        tensors.resetGradients()
        var loss = applyParts(methodParts, to: tensors)
        for head in heads {
            let inputGradient = head.model.backward(tensors[keyPath: head.outputGradient])
            let into = tensors[keyPath: head.inputGradient]
            BLAS.axpy(count: inputGradient.count, alpha: 1, x: inputGradient.data, y: into.data)
        }
        tensors.foldUnitGradient()
        let methodGradientNorm = BLAS.norm(count: tensors.projectionGradient.count, tensors.projectionGradient.data)
        loss += applyParts(calibrationParts, to: tensors)
        tensors.foldUnitGradient()
        if let compatibility = config.compatibility, let previous {
            loss += applyCompatibility(compatibility, previous: previous)
        }
        let monitor = collapseMonitor(tensors.unitProjections)
        state?.record(tensors)
        let smallCropTerm = smallCrops.isEmpty ? nil : config.smallCrops
        if smallCropTerm != nil {
            largeViewTargets.reshape(to: tensors.unitProjections.shape)
            largeViewTargets.copy(from: tensors.unitProjections)
        }
        online.backward(tensors.projectionGradient)
        if let smallCropTerm { loss += applySmallCrops(smallCropTerm, crops: smallCrops) }
        var shares: [String: Float] = [:]
        for term in tensors.values {
            if let norm = term.gradientNorm { shares[term.name] = methodGradientNorm > 0 ? norm / methodGradientNorm : 0 }
        }
        let learningRate = config.optimiser.schedule.learningRate(atStep: stepCount)
        let updated = loss.isFinite
        if updated {
            func frozen(_ name: String) -> Bool { heads.contains { $0.name == name && stepCount < $0.frozenSteps } }
            for (name, model, optimiser) in optimisers where !frozen(name) {
                optimiser.learningRate = learningRate
                optimiser.step(model.arena)
            }
            for head in heads where !frozen(head.name) { head.afterUpdate?(head.model) }
            if let target, let ema { ema.update(target: target.arena, online: online.arena, step: stepCount) }
            if let averaged, let decay = config.averageDecay {
                ExponentialMovingAverage.update(target: averaged.arena, online: online.arena,
                                                decay: Self.averagingDecay(decay, afterStep: stepCount))
            }
        }
        stepCount += 1
        return StepReport(step: stepCount, loss: loss, terms: tensors.values, collapseMonitor: monitor,
                          learningRate: learningRate, updated: updated, gradientShares: shares)
    }

    /// The compatibility term on both views' features, averaged; its gradient is left at the taps.
    private func applyCompatibility(_ term: CompatibilityTerm, previous: Tensor) -> Float {
        var value: Float = 0
        for (v, (tap, gradient)) in zip(taps, tapGradients).enumerated() {
            gradient.reshape(to: tap.features.shape)
            gradient.fill(0)
            value += term.loss.loss(features: tap.features, targets: tensors.view(v, of: previous), gradientScale: term.weight / 2,
                                    gradient: gradient) / 2
            tap.extraGradient = gradient
        }
        let result = LossValue(name: "compatibility", kind: .constraining, value: value, weight: term.weight)
        tensors.values.append(result)
        return result.weighted
    }

    /// Each pair of small crops through online, forward and backward: a TargetInfoNCE of each
    /// crop's projections against each large view's ẑ (fixed), weighted by λ / (4 · pairs) (the
    /// mean over the 2 crops of a pair, the 2 large views and the pairs). Its gradient norm at the
    /// crops' projections, over the method's at the views', is its gradient share.
    private func applySmallCrops(_ small: SmallCrops, crops: [Tensor]) -> Float {
        let loss = small.loss
        let scale = small.weight / Float(4 * crops.count)
        var value: Float = 0, squaredNorm: Float = 0
        for pair in crops {
            let projections = online.forward(pair, mode: .training(views: 2))
            smallCropGradient.reshape(to: projections.shape)
            smallCropGradient.fill(0)
            for crop in 0..<2 {
                for large in 0..<2 {
                    value += loss.loss(features: tensors.view(crop, of: projections), targets: tensors.view(large, of: largeViewTargets),
                                       gradientScale: scale, gradient: tensors.view(crop, of: smallCropGradient)) / Float(4 * crops.count)
                }
            }
            let norm = BLAS.norm(count: smallCropGradient.count, smallCropGradient.data)
            squaredNorm += norm * norm
            online.backward(smallCropGradient)
        }
        let result = LossValue(name: "small_crops", kind: .aligning, value: value, weight: small.weight, gradientNorm: squaredNorm.squareRoot())
        tensors.values.append(result)
        return result.weighted
    }

    /// τ for the average after optimiser step `step` (0-based): min(τ, (1 + n)/(10 + n)) with n
    /// updates so far, as TensorFlow's ExponentialMovingAverage(num_updates): early on the average
    /// follows the weights closely instead of carrying the random initialisation for ~1/(1 − τ) steps.
    static func averagingDecay(_ decay: Float, afterStep step: Int) -> Float {
        min(decay, Float(1 + step) / Float(10 + step))
    }

    /// Mean over dimensions of the per-view batch standard deviation of unit projections.
    private func collapseMonitor(_ unit: Tensor) -> Float {
        let (rows, d) = (unit.shape[0] / 2, unit.lastDimension)
        var total = 0.0
        for v in 0..<2 {
            for j in 0..<d {
                var sum = 0.0, squares = 0.0
                for r in 0..<rows {
                    let x = Double(unit.data[(v * rows + r) * d + j])
                    sum += x; squares += x * x
                }
                let mean = sum / Double(rows)
                total += max(squares / Double(rows) - mean * mean, 0).squareRoot()
            }
        }
        return Float(total / Double(2 * d))
    }
}
