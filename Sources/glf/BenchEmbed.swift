// glf bench embed: the encoder's inference forward (what the daemon does to answer an ingest or a
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
        BLAS.setThreads(options.threads)
        warnAboutOpenBLASCore()
        let peak = SgemmPeak.peak(sizes: options.parsedPeakSizes)
        let arena = ParameterArena()
        var rng = SeededGenerator(seed: 1)
        let encoder = ResNetEncoder(EncoderConfig(imageSize: options.size, width: options.width), in: arena, rng: &rng)
        arena.seal()
        let images = Tensor(zeros: [batch, options.size, options.size, encoder.config.inputChannels])
        images.fillNormal(std: 1, using: &rng)
        let profiler = options.profile ? StepProfiler() : nil
        for _ in 0..<options.warmup { _ = encoder.forward(images, mode: .inference) }
        var stepSeconds: [Double] = []
        for _ in 0..<options.steps {
            let start = ContinuousClock.now
            if let profiler {
                _ = profiler.phase("encoder forward") { profiler.forward(encoder, images, mode: .inference) }
                profiler.endStep()
            } else {
                _ = encoder.forward(images, mode: .inference)
            }
            stepSeconds.append(seconds(since: start))
        }
        var report = BenchReport(
            benchmark: "embed", options: options, batch: batch, stepSeconds: stepSeconds,
            gflopPerImage: 2 * Double(encoder.config.forwardMultiplyAdds) / 1e9, peak: peak,
            imageCounting: "one forward per image",
            flopCounting: "2 FLOP/MAC × encoder forward MACs (convolutions only)")
        if let profiler {
            report.profile = BenchProfileReport(phases: profiler, blocks: profiler, network: [encoder], input: images,
                                                mode: .inference, backward: false)
        }
        report.print(json: options.json)
    }
}
