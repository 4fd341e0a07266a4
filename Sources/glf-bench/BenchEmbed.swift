// glf-bench embed: the encoder's inference forward (what the daemon does to answer an ingest or a
// query), on a batch of random N(0,1) images made once. Batch norm uses its running statistics.
// FLOPs per image: 2 × the encoder's forward multiply–adds (convolutions only, as EncoderConfig
// counts them).
import ArgumentParser
import Foundation
import Neural

struct BenchEmbed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Time the encoder's inference forward on a batch of images.",
        discussion: """
            FLOPs per image: 2 × EncoderConfig.forwardMultiplyAdds (convolutions, shortcuts included). \
            Share of peak: GFLOP/s over the best OpenBLAS sgemm GFLOP/s measured in the same run with \
            the same thread count.
            """)

    @OptionGroup var options: BenchModelOptions

    @Option(help: "Images per forward.")
    var batch = 256

    func validate() throws { try options.validate(batch: batch) }

    func run() throws {
        let peak = options.measurePeakThenUseReplicas()
        let workers = options.threads
        guard batch % workers == 0 else { throw ValidationError("--batch must split evenly over \(workers) workers") }
        let config = EncoderConfig(imageSize: options.size, width: options.width)
        let model = ReplicatedModel(replicas: workers, workers: workers) { arena in
            var rng = SeededGenerator(seed: 1)
            return ResNetEncoder(config, in: arena, rng: &rng)
        }
        let encoder = model.replicas[0] as! ResNetEncoder
        var rng = SeededGenerator(seed: 2)
        let images = Tensor(zeros: [batch, options.size, options.size, config.inputChannels])
        images.fillNormal(std: 1, using: &rng)
        for _ in 0..<options.warmup { _ = model.forward(images, mode: .inference) }
        var stepSeconds: [Double] = []
        for _ in 0..<options.steps {
            let start = ContinuousClock.now
            _ = model.forward(images, mode: .inference)
            stepSeconds.append(seconds(since: start))
        }
        // The profile walks replica 0 on its share of the batch, on this thread.
        let profiler = options.profile ? StepProfiler() : nil
        let share = Tensor(viewing: images.data, shape: [batch / workers] + images.shape.dropFirst())
        if let profiler {
            for _ in 0..<3 {
                _ = profiler.phase("encoder forward, one worker's share") { profiler.forward(encoder, share, mode: .inference) }
                profiler.endStep()
            }
        }
        var report = BenchReport(
            benchmark: "embed", options: options, batch: batch, stepSeconds: stepSeconds,
            gflopPerImage: 2 * Double(encoder.config.forwardMultiplyAdds) / 1e9, peak: peak,
            imageCounting: "one forward per image",
            flopCounting: "2 FLOP/MAC × encoder forward MACs (convolutions only, as direct convolutions: Winograd's do fewer)")
        if let profiler {
            report.profile = BenchProfileReport(phases: profiler, blocks: profiler, network: [encoder], input: share,
                                                mode: .inference, backward: false)
        }
        report.print(json: options.json)
    }
}
