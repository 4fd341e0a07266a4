// The trainer: one GLF step at a time, for any method, with or without ADC.
//
//   views [2B, S, S, C]  view 1 of every image, then view 2 (augmented by the caller)
//   prior [B, P]         the input-space prior of the same images for ADC's LPM, or nil
//
//   online     encoder + projector           z  = online(views)          replicated per view
//   predictor  BYOL                           p  = predictor(z)
//   prototypes SwAV                           s  = prototypes(ẑ)
//   target     BYOL, EMA of online            z' = target(views), no gradient
//   parts      the method's aligning + constraining parts on those, gradients into dz, dp, ds, dẑ;
//              predictor and prototypes backward (their input gradients join dz and dẑ); dẑ
//              folded into dz: the method's dL/dz, whose norm is measured
//   ADC        its terms on ẑ, folded into dz; each term's gradient norm over the method's is
//              its gradient share (method.md §3: the sign that the term is alive)
//   backward   online, from dz
//   update     learning rate from the schedule, one optimiser per network; SwAV's prototypes
//              are not stepped at all for their first steps (as solo-learn drops their gradient,
//              weight decay included) and are renormalised after each step; EMA of the target
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
    public let predictor: ReplicatedModel?
    public let prototypes: ReplicatedModel?
    public let target: ReplicatedModel?
    public private(set) var stepCount = 0
    private let methodParts: [WeightedPart]
    private let calibrationParts: [WeightedPart]
    private let optimisers: [(model: ReplicatedModel, optimiser: any Optimiser)]
    /// The optimisers with the names their checkpoint files use.
    var namedOptimisers: [(name: String, model: ReplicatedModel, optimiser: any Optimiser)] {
        optimisers.map { entry in
            (entry.model === online ? "online" : entry.model === predictor ? "predictor" : "prototypes", entry.model, entry.optimiser)
        }
    }
    private let ema: ExponentialMovingAverage?
    /// The moving average of online that the model directory holds (`config.averageDecay`), or nil.
    public let averaged: ReplicatedModel?
    private let tensors: StepTensors
    /// SwAV's queues: per view, the unit projections of past steps, newest first (saved in
    /// checkpoints, so a resumed run continues with the same queue).
    var queues: [Tensor] = []
    var queued = 0

    public init(_ config: TrainingConfig) {
        self.config = config
        let method = config.methodValue
        self.method = method
        let (encoderConfig, workers, seed) = (config.encoder, config.workers, config.seed)
        let projector = method.projector(featureDimension: encoderConfig.featureDimension)
        func backbone(_ arena: ParameterArena) -> Layer {
            var rng = SeededGenerator(seed: seed)
            let encoder = ResNetEncoder(encoderConfig, in: arena, rng: &rng)
            return Sequential([encoder, MLPHead(projector, name: "projector", in: arena, rng: &rng)])
        }
        online = ReplicatedModel(replicas: 2, workers: workers, build: backbone)
        target = method.targetDecay.map { _ in ReplicatedModel(replicas: 2, workers: workers, build: backbone) }
        predictor = method.predictor.map { head in
            ReplicatedModel(replicas: 2, workers: workers) { arena in
                var rng = SeededGenerator(seed: seed &+ 1)
                return MLPHead(head, name: "predictor", in: arena, rng: &rng)
            }
        }
        prototypes = method.prototypes.map { p in
            ReplicatedModel(replicas: 2, workers: workers) { arena in
                var rng = SeededGenerator(seed: seed &+ 2)
                return Prototypes("prototypes", in: arena, dimension: projector.outputDimension, count: p.count, rng: &rng)
            }
        }
        if let target { target.arena.copyValues(from: online.arena) }
        averaged = config.averageDecay.map { _ in ReplicatedModel(replicas: 1, workers: 1, build: backbone) }
        if let averaged { averaged.arena.copyValues(from: online.arena) }
        ema = method.targetDecay.map { ExponentialMovingAverage(decay: $0) }
        methodParts = method.parts
        calibrationParts = config.adc.map { [WeightedPart(ADCPart($0))] } ?? []
        optimisers = [online, predictor, prototypes].compactMap { $0 }.map { ($0, config.optimiser.makeOptimiser()) }
        tensors = StepTensors(batch: config.batch)
    }

    func resumeAt(step: Int) { stepCount = step }

    public var encoder: ResNetEncoder { (online.replicas[0] as! Sequential).layers[0] as! ResNetEncoder }
    private var prototypesLayer: Prototypes? { prototypes?.replicas[0] as? Prototypes }

    public func step(views: Tensor, prior: Tensor?) -> StepReport {
        precondition(views.shape[0] == 2 * config.batch, "views \(views.shape) are not two views of \(config.batch) images")
        let mode = ForwardMode.training(views: 2)
        for model in [online, predictor, prototypes].compactMap({ $0 }) { model.zeroGradients() }

        tensors.begin(projections: online.forward(views, mode: mode))
        tensors.prior = config.adc == nil ? nil : prior
        if let predictor { tensors.predictions = predictor.forward(tensors.projections, mode: mode) }
        if let target { tensors.targets = target.forward(views, mode: mode) }
        if let prototypes {
            tensors.scores = prototypes.forward(tensors.unitProjections, mode: mode)
            tensors.queueScores = scoredQueues()
        }

        tensors.resetGradients()
        var loss = applyParts(methodParts, to: tensors)
        if let predictor {
            let dz = predictor.backward(tensors.predictionGradient)
            BLAS.axpy(count: dz.count, alpha: 1, x: dz.data, y: tensors.projectionGradient.data)
        }
        if let prototypes {
            let dUnit = prototypes.backward(tensors.scoreGradient)
            BLAS.axpy(count: dUnit.count, alpha: 1, x: dUnit.data, y: tensors.unitProjectionGradient.data)
        }
        tensors.foldUnitGradient()
        let methodGradientNorm = BLAS.norm(count: tensors.projectionGradient.count, tensors.projectionGradient.data)
        loss += applyParts(calibrationParts, to: tensors)
        tensors.foldUnitGradient()
        var shares: [String: Float] = [:]
        for term in tensors.values {
            if let norm = term.gradientNorm { shares[term.name] = methodGradientNorm > 0 ? norm / methodGradientNorm : 0 }
        }
        let monitor = collapseMonitor(tensors.unitProjections)
        enqueue(tensors.unitProjections)
        let learningRate = config.optimiser.schedule.learningRate(atStep: stepCount)
        let updated = loss.isFinite
        if updated {
            online.backward(tensors.projectionGradient)
            let prototypesFrozen = stepCount < (method.prototypes?.frozenSteps ?? 0)
            for (model, optimiser) in optimisers where !(prototypesFrozen && model === prototypes) {
                optimiser.learningRate = learningRate
                optimiser.step(model.arena)
            }
            if !prototypesFrozen { prototypesLayer?.normalize() }
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

    /// τ for the average after optimiser step `step` (0-based): min(τ, (1 + n)/(10 + n)) with n
    /// updates so far, as TensorFlow's ExponentialMovingAverage(num_updates): early on the average
    /// follows the weights closely instead of carrying the random initialisation for ~1/(1 − τ) steps.
    static func averagingDecay(_ decay: Float, afterStep step: Int) -> Float {
        min(decay, Float(1 + step) / Float(10 + step))
    }

    /// Each view's full queue [Q, D] scored by the current prototypes [K, D]: [Q, K], or nil.
    private func scoredQueues() -> [Tensor]? {
        guard let layer = prototypesLayer, let length = method.prototypes?.queueLength, length > 0, queued >= length else { return nil }
        let (k, d) = (layer.linear.outFeatures, layer.linear.inFeatures)
        return queues.map { queue in
            let scores = Tensor(zeros: [length, k])
            BLAS.gemm(transposeB: true, m: length, n: k, k: d, a: queue.data, lda: d, b: layer.linear.weight.values, ldb: d,
                      c: scores.data, ldc: k)
            return scores
        }
    }

    /// Pushes this step's unit projections into the queues (oldest rows fall off the end).
    private func enqueue(_ unit: Tensor) {
        guard let length = method.prototypes?.queueLength, length > 0 else { return }
        let (rows, d) = (config.batch, unit.lastDimension)
        if queues.isEmpty { queues = [Tensor(zeros: [length, d]), Tensor(zeros: [length, d])] }
        let kept = max(0, length - rows), fresh = min(rows, length)
        for v in 0..<2 {
            let q = queues[v].data
            memmove(q + fresh * d, q, kept * d * MemoryLayout<Float>.size)   // the regions overlap
            q.update(from: unit.data + v * rows * d, count: fresh * d)
        }
        queued = min(length, queued + rows)
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
