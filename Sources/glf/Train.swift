// glf train: self-supervised training on a folder of images or IDX files, for a number of steps
// or a wall-clock budget, with a live progress line, periodic checkpoints and resume.
import ArgumentParser
import Datasets
import Foundation
import GLF
import Neural

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the encoder with a GLF method (+ ADC) on unlabeled images.",
        discussion: """
            Every step samples --batch images uniformly, makes two augmented views of each (solo-learn's \
            CIFAR recipe), and takes one step of the method. The progress line shows the step, images/s, \
            every loss term (aligning, constraining, adc.dcm, adc.lpm; each ADC term with its gradient share, \
            ‖∇ term‖ / ‖∇ method‖ at the projections) and the collapse monitor (batch std \
            of unit projections: about 1/√D when healthy, 0 when collapsed). Checkpoints go to --out \
            (a model directory plus training state); --resume continues the run saved there.
            """)

    @OptionGroup var source: DataOptions

    /// Where every option left out comes from: glfd's recipe (its training.* defaults).
    private static let recipe = TrainingConfig()

    @Option(help: "Self-supervised method.") var method = recipe.method

    @Flag(inversion: .prefixedNo, help: "Add ADC (DCM and LPM with the pixel prior).")
    var adc = true

    @OptionGroup var calibration: ADCOptions
    @Option(name: .customLong("prior-model"),
            help: "LPM's input-space prior from this frozen model directory's encoder, instead of the down-sampled pixels.")
    var priorModel: String?
    @Option(name: .customLong("compatible-with"),
            help: "A model directory (the previous version): add the compatibility term, so that this run's features can search a catalog that model embedded.")
    var compatibleWith: String?
    @Option(name: .customLong("compatibility-weight"), help: "λ of the compatibility term (with --compatible-with).")
    var compatibilityWeight: Float = CompatibilityTerm().weight
    @Option(name: .customLong("compatibility-temperature"), help: "τ of the compatibility term (with --compatible-with).")
    var compatibilityTemperature: Float = CompatibilityTerm().temperature
    @Option(help: "Encoder width.") var width = recipe.encoder.width
    @Option(help: "Encoder depth: residual blocks per stage, comma-separated (1,1,1,1 is a ResNet-10; 2,2,2,2 a ResNet-18).")
    var blocks = recipe.encoder.blocksPerStage.map(String.init).joined(separator: ",")
    @Option(help: "Image side (folders are resized to it).") var size = recipe.encoder.imageSize
    @Option(name: .customLong("progressive-start"),
            help: "Progressive resolution: the views' side at step 0; it grows linearly, by 8 pixels, to --size at --progressive-steps.")
    var progressiveStart: Int?
    @Option(name: .customLong("progressive-steps"), help: "Progressive resolution: the step from which views are --size.")
    var progressiveSteps: Int?
    @Option(name: .customLong("small-crops"),
            help: "Multi-crop: pairs of small crops per image beside the two views (0: none); they learn from the large views.")
    var smallCropPairs = 0
    @Option(name: .customLong("small-crop-size"), help: "Multi-crop: the small crops' side in pixels.")
    var smallCropSize = SmallCrops().size
    @Option(name: .customLong("small-crop-scale"), help: "Multi-crop: the range of the image's area a small crop is cut from, MIN,MAX.")
    var smallCropScale = "\(SmallCrops().minimumScale),\(SmallCrops().maximumScale)"
    @Option(name: .customLong("small-crop-weight"), help: "Multi-crop: λ of the small crops' term.")
    var smallCropWeight = SmallCrops().weight
    @Option(help: "Images per step.") var batch = recipe.batch
    @Option(help: "Optimiser.") var optimiser = recipe.optimiser.kind
    @Option(name: .customLong("lr"), help: "Peak learning rate.") var learningRate = recipe.optimiser.learningRate
    @Option(name: .customLong("weight-decay")) var weightDecay = recipe.optimiser.weightDecay
    @Option(help: "Warm-up steps.") var warmup = recipe.optimiser.warmupSteps
    @Option(help: "Head sizes: hidden width of projector (and predictor).") var hidden: Int?
    @Option(help: "Projection dimension.") var projection: Int?
    @Option(help: "Loss temperature of SimCLR (recipe 0.2) and SwAV (0.1); other methods have none.") var temperature: Float?
    @Option(help: "SwAV: number of prototypes.") var prototypes: Int?
    @Option(help: "SwAV: past projections kept per view for Sinkhorn-Knopp (0: no queue).") var queue: Int?
    @Option(help: "Steps to train (the cosine schedule ends there).") var steps: Int?
    // The two places a run with an end differs from glfd's recipe, which never ends: the rate
    // decays to 0 at --steps, and no average of the weights stands in for a decayed rate.
    @Option(help: "cosine: the rate decays to 0 at --steps; constant: it stays at its peak after the warm-up, as glfd trains (a daemon has no end).")
    var schedule = "cosine"
    @Option(name: .customLong("average-decay"),
            help: "Keep an exponential moving average of the weights with this τ (0 < τ < 1) and make it the model (what --out's model directory holds), as glfd's training.average_decay (\(recipe.averageDecay ?? 0)).")
    var averageDecay: Float?
    @Option(help: "Wall-clock budget in minutes (with --steps, whichever comes first).") var minutes: Double?
    @Option(help: "Checkpoint directory.") var out: String
    @Option(name: .customLong("save-every"), help: "Steps between checkpoints.") var saveEvery = 500
    @Option(name: .customLong("progress-every"), help: "Steps between progress lines.") var progressEvery = 10
    @Option(name: .customLong("keep-every-minutes"),
            help: "Also keep the model as it is every N minutes of wall clock, in --out/at-<minutes>min (for accuracy-against-time curves; listed in --out/kept.tsv with the final model, '.').")
    var keepEveryMinutes: Double?
    @Flag(help: "Continue the run saved in --out.") var resume = false
    @Option(help: "Cores.") var threads = recipe.workers
    @Option(help: "Seed of initialisation, sampling and augmentation.") var seed = recipe.seed

    func validate() throws {
        guard steps != nil || minutes != nil else { throw ValidationError("give --steps or --minutes (or both)") }
        guard batch >= 2, threads >= 1 else { throw ValidationError("--batch ≥ 2, --threads ≥ 1") }
        if let steps, warmup >= steps { throw ValidationError("--warmup (\(warmup)) must be below --steps (\(steps))") }
        guard ["cosine", "constant"].contains(schedule) else { throw ValidationError("--schedule is cosine or constant, not \(schedule)") }
        if let averageDecay, !(averageDecay > 0 && averageDecay < 1) { throw ValidationError("--average-decay is a τ with 0 < τ < 1") }
        if let temperature, !(temperature > 0 && temperature.isFinite) { throw ValidationError("--temperature must be above 0") }
        guard !blocksPerStage.isEmpty else { throw ValidationError("--blocks is one or more positive counts, comma-separated, not \(blocks)") }
        if (progressiveStart == nil) != (progressiveSteps == nil) { throw ValidationError("give both --progressive-start and --progressive-steps, or neither") }
        if let progressiveStart, let progressiveSteps, !(progressiveStart >= 8 && progressiveStart < size && progressiveSteps >= 1) {
            throw ValidationError("--progressive-start must be at least 8 and below --size (\(size)), --progressive-steps at least 1")
        }
        if smallCropPairs < 0 { throw ValidationError("--small-crops is a number of pairs, 0 or more") }
        if smallCropPairs > 0 {
            guard smallCropSize >= 8, smallCropSize <= size else { throw ValidationError("--small-crop-size must be 8 to --size (\(size))") }
            guard let (low, high) = smallCropScaleRange, low > 0, low <= high, high <= 1 else {
                throw ValidationError("--small-crop-scale is MIN,MAX with 0 < MIN ≤ MAX ≤ 1, not \(smallCropScale)")
            }
            guard smallCropWeight >= 0, smallCropWeight.isFinite else { throw ValidationError("--small-crop-weight must be ≥ 0") }
        }
        guard compatibilityWeight >= 0, compatibilityTemperature > 0, compatibilityWeight.isFinite, compatibilityTemperature.isFinite else {
            throw ValidationError("--compatibility-weight must be ≥ 0 and --compatibility-temperature above 0")
        }
        if adc {
            do { try calibration.calibration().validate(batch: batch) } catch let error as ADCConfigurationError {
                throw ValidationError(error.message)
            }
        }
    }

    func makeConfig(channels: Int) throws -> TrainingConfig {
        var config = Self.recipe
        config.method = method
        config.encoder = EncoderConfig(inputChannels: 3, imageSize: size, width: width, blocksPerStage: blocksPerStage)
        config.heads = MethodConstants(hidden: hidden, projection: projection, prototypes: prototypes, prototypesQueue: queue,
                                       temperature: temperature)
        config.adc = adc ? try calibration.calibration() : nil
        config.optimiser.kind = optimiser
        config.optimiser.learningRate = learningRate
        config.optimiser.weightDecay = weightDecay
        config.optimiser.warmupSteps = warmup
        config.optimiser.totalSteps = schedule == "cosine" ? steps : nil
        config.averageDecay = averageDecay
        config.compatibility = compatibility
        if let progressiveStart, let progressiveSteps { config.progressive = ProgressiveResolution(startSize: progressiveStart, rampSteps: progressiveSteps) }
        if smallCropPairs > 0, let (low, high) = smallCropScaleRange {
            config.smallCrops = SmallCrops(pairs: smallCropPairs, size: smallCropSize, minimumScale: low, maximumScale: high,
                                           weight: smallCropWeight)
        }
        config.batch = batch
        config.workers = threads
        config.seed = seed
        for keyPath in [\AugmentationRecipe.view1, \AugmentationRecipe.view2] { config.augmentation[keyPath: keyPath].outputSize = size }
        return config
    }

    func run() throws {
        BLAS.setThreads(1)
        let started = Date()
        let dataset = try source.load(side: size)
        note("glf train: \(dataset.count) images \(dataset.height)×\(dataset.width)×\(dataset.channels) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        let directory = URL(fileURLWithPath: out)
        let trainer = resume ? try resumed(from: directory) : Trainer(try makeConfig(channels: dataset.channels))
        let config = trainer.config
        let shape = SourceImageShape(height: dataset.height, width: dataset.width, channels: dataset.channels)
        let prior: InputPrior = try priorModel.map {
            .frozenEncoder(try Embedder.load(modelDirectory: URL(fileURLWithPath: $0), workers: threads,
                                             batch: max(threads, config.batch / threads * threads)))
        } ?? .pixels
        let previousVersion = try compatibleWith.map {
            try Embedder.load(modelDirectory: URL(fileURLWithPath: $0), workers: threads, batch: max(threads, config.batch / threads * threads))
        }
        if let previousVersion, previousVersion.encoderConfig.featureDimension != config.encoder.featureDimension {
            throw ValidationError("--compatible-with \(compatibleWith!): its features have \(previousVersion.encoderConfig.featureDimension) dimensions, this run's \(config.encoder.featureDimension)")
        }
        let batches = try TrainingBatches(pixels: dataset.pixels, shape: shape, config: config, prior: prior, previousVersion: previousVersion)
        let deadline = minutes.map { started.addingTimeInterval($0 * 60) }
        var lastLine = Date(), imagesSinceLine = 0
        var kept = 0
        if let adc = config.adc { note("ADC: \(adc.summary)") }
        if let compatibility = config.compatibility { note("compatible with \(compatibleWith!): \(compatibility)") }
        if let progressive = config.progressive { note("progressive resolution: \(progressive)") }
        if let smallCrops = config.smallCrops { note("small crops: \(smallCrops)") }
        note("training \(config.method.rawValue)\(config.adc == nil ? "" : " + ADC") from step \(trainer.stepCount), batch \(config.batch), \(threads) worker(s)")
        while steps.map({ trainer.stepCount < $0 }) ?? true, deadline.map({ Date() < $0 }) ?? true {
            let report = trainer.step(try batches.batch(step: trainer.stepCount))
            imagesSinceLine += config.batch
            if !report.updated { note("step \(report.step): loss is \(report.loss); step skipped") }
            if trainer.stepCount % progressEvery == 0 {
                let rate = Double(imagesSinceLine) / Date().timeIntervalSince(lastLine)
                (lastLine, imagesSinceLine) = (Date(), 0)
                let terms = report.terms.map { term in
                    "\(term.name) \(String(format: "%.4f", term.value))"
                        + (report.gradientShares[term.name].map { String(format: " (∇ %.1f%%)", $0 * 100) } ?? "")
                }.joined(separator: "  ")
                note(String(format: "step %6d  %6.1f img/s  loss %.4f  ", report.step, rate, report.loss) + terms
                     + String(format: "  collapse %.4f  lr %.4f", report.collapseMonitor, report.learningRate))
            }
            if trainer.stepCount % saveEvery == 0 { try trainer.save(to: directory) }
            if let keepEveryMinutes, Date().timeIntervalSince(started) >= Double(kept + 1) * keepEveryMinutes * 60 {
                kept += 1
                try keep(trainer, minutes: Double(kept) * keepEveryMinutes, in: directory)
            }
        }
        try trainer.save(to: directory)
        let minutesTaken = Date().timeIntervalSince(started) / 60
        // The final model ends the curve: --out itself is a model directory.
        if keepEveryMinutes != nil { try list(trainer, minutes: (minutesTaken * 100).rounded() / 100, name: ".", in: directory) }
        note("saved step \(trainer.stepCount) to \(directory.path) after \(String(format: "%.1f", minutesTaken)) min")
    }

    /// `--blocks` as counts, or empty when it is not a list of positive integers.
    private var blocksPerStage: [Int] {
        let counts = blocks.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return counts.allSatisfy { ($0 ?? 0) >= 1 } ? counts.compactMap { $0 } : []
    }

    /// `--small-crop-scale` as (MIN, MAX), or nil when it is not two numbers.
    private var smallCropScaleRange: (Float, Float)? {
        let bounds = smallCropScale.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
        return bounds.count == 2 ? (bounds[0], bounds[1]) : nil
    }

    /// The compatibility term the options ask for (none without --compatible-with).
    private var compatibility: CompatibilityTerm? {
        compatibleWith.map { _ in CompatibilityTerm(weight: compatibilityWeight, temperature: compatibilityTemperature) }
    }

    /// The run saved in `directory`, continued with the compatibility term the options ask for
    /// (the one thing a resumed run takes from the command line: it is against a version that
    /// did not exist when the run began).
    private func resumed(from directory: URL) throws -> Trainer {
        var wanted = try Trainer.savedState(in: directory).config
        wanted.compatibility = compatibility
        return try Trainer.resume(from: directory, workers: threads, as: wanted)
    }

    /// The model now (a model directory: weights and config) in DIR/at-<minutes>min, listed in kept.tsv.
    private func keep(_ trainer: Trainer, minutes: Double, in directory: URL) throws {
        let name = String(format: "at-%gmin", minutes)
        try trainer.saveModel(to: directory.appendingPathComponent(name))
        try list(trainer, minutes: minutes, name: name, in: directory)
    }

    /// A line in DIR/kept.tsv: minutes, step, images seen, the model directory (relative to DIR).
    private func list(_ trainer: Trainer, minutes: Double, name: String, in directory: URL) throws {
        let file = directory.appendingPathComponent("kept.tsv")
        if !FileManager.default.fileExists(atPath: file.path) {
            try Data("minutes\tstep\timages\tdirectory\n".utf8).write(to: file)
        }
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("\(String(format: "%g", minutes))\t\(trainer.stepCount)\t\(trainer.stepCount * trainer.config.batch)\t\(name)\n".utf8))
    }
}
