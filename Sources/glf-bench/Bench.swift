// glf-bench: how fast the engine trains and embeds, stated as a share of what this machine's sgemm
// can do, and how fast the store, the index and the daemon go, each against a peer measured in
// the same run. (The user's tool is glf; the benchmarks are their own executable.)
//
// Every figure is measured in the run that prints it: the sgemm peak is timed with the same BLAS
// thread count just before the model, so a busy machine lowers both and the share stays readable.
// Step times are medians over the timed steps (other builds share these cores); images/s is the
// batch divided by that median. tools/bench/train_step.py runs the same model and step in PyTorch
// and prints the same fields (tools/bench/README.md).
//
//   Bench.swift            the command group, shared options, the report and how it prints
//   BenchSgemm.swift       the yardstick: sgemm GFLOP/s (`glf-bench sgemm`)
//   BenchTrainStep.swift   `glf-bench train-step`: the model, the step, the stand-in SGD
//   BenchEmbed.swift       `glf-bench embed`: inference forward of the encoder
//   BenchProfile.swift     `--profile`: where the time goes, per phase and per layer
import ArgumentParser
import Foundation
import Neural

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "glf-bench",
        abstract: "Benchmarks, each with its yardstick measured in the same run: the engine against this machine's sgemm peak, ingest against raw LMDB, MinRed against fifo; the knn and daemon runs write what their FAISS peers (tools/bench) read.",
        subcommands: [BenchTrainStep.self, BenchEmbed.self, BenchConv.self, BenchSgemm.self, BenchIngest.self, BenchReplay.self, BenchKNN.self, BenchDedup.self, BenchDaemon.self, BenchStream.self, BenchJetStream.self, BenchSoak.self])
}

/// Options every model benchmark takes.
struct BenchModelOptions: ParsableArguments {
    @Option(help: "Encoder width: channels of the stem and first stage (stages are w, 2w, 4w, 8w).")
    var width = 32

    @Option(help: "Image side in pixels (square RGB images).")
    var size = 32

    @Option(help: "Cores to use: the model runs one replica per core (OpenBLAS single-threaded inside each); the sgemm peak is measured with this many OpenBLAS threads.")
    var threads = 2

    @Option(help: "Timed steps (the reported step time is their median).")
    var steps = 10

    @Option(help: "Untimed steps first (buffers are allocated and caches filled on the first).")
    var warmup = 2

    @Option(name: .customLong("peak-sizes"), parsing: .unconditional,
            help: "Square sgemm sizes for the peak, comma-separated; the best one is the peak.")
    var peakSizes = "1024,2048"

    @Flag(help: "Print where the time goes: per phase of the step, per encoder block, per layer.")
    var profile = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    /// The yardstick, measured with `threads` OpenBLAS threads; afterwards OpenBLAS is left
    /// single-threaded, because the models run one replica per worker instead.
    func measurePeakThenUseReplicas() -> SgemmMeasurement {
        BLAS.setThreads(threads)
        warnAboutOpenBLASCore()
        let peak = SgemmPeak.peak(sizes: parsedPeakSizes)
        BLAS.setThreads(1)
        return peak
    }

    var parsedPeakSizes: [Int] { peakSizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func validate(batch: Int) throws {
        guard width >= 1, size >= 1, threads >= 1, steps >= 1, warmup >= 0 else {
            throw ValidationError("--width, --size, --threads and --steps must be at least 1, --warmup at least 0")
        }
        guard batch >= 2 else { throw ValidationError("--batch must be at least 2 (batch norm needs two rows per view)") }
        guard !parsedPeakSizes.isEmpty, parsedPeakSizes.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--peak-sizes: comma-separated positive integers, e.g. 1024,2048")
        }
    }
}

/// What a model benchmark found; the JSON field names are the ones tools/bench/train_step.py uses.
struct BenchReport: Encodable {
    var benchmark: String
    var implementation = "glf"
    var width: Int
    var size: Int
    var batch: Int
    var threads: Int
    var steps: Int
    var warmup: Int
    /// Median step time; images/s is batch / this.
    var stepMilliseconds: Double
    var stepMillisecondsMean: Double
    var imagesPerSecond: Double
    var gflopPerImage: Double
    var gflopPerSecond: Double
    var sgemmPeakGflopPerSecond: Double
    var sgemmPeakSize: Int
    var shareOfPeak: Double
    /// Loss after the last step (train-step only): a sanity check, not a result.
    var loss: Double?
    var imageCounting: String
    var flopCounting: String
    var blas: String
    /// Set when OpenBLAS runs generic kernels on a CPU that has better ones (see openBLASCoreWarning).
    var warning: String?
    var profile: BenchProfileReport?

    init(benchmark: String, options: BenchModelOptions, batch: Int, stepSeconds: [Double], gflopPerImage: Double,
         peak: SgemmMeasurement, imageCounting: String, flopCounting: String) {
        let median = stepSeconds.median
        self.benchmark = benchmark
        width = options.width
        size = options.size
        self.batch = batch
        threads = options.threads
        steps = options.steps
        warmup = options.warmup
        stepMilliseconds = median * 1e3
        stepMillisecondsMean = stepSeconds.reduce(0, +) / Double(stepSeconds.count) * 1e3
        imagesPerSecond = Double(batch) / median
        self.gflopPerImage = gflopPerImage
        gflopPerSecond = imagesPerSecond * gflopPerImage
        sgemmPeakGflopPerSecond = peak.gflopPerSecond
        sgemmPeakSize = peak.size
        shareOfPeak = gflopPerSecond / peak.gflopPerSecond
        self.imageCounting = imageCounting
        self.flopCounting = flopCounting
        blas = BLAS.configuration
        warning = openBLASCoreWarning()
    }

    func print(json: Bool) {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            Swift.print(String(decoding: try! encoder.encode(self), as: UTF8.self))
            return
        }
        Swift.print("""
            glf-bench \(benchmark): width \(width), \(size)×\(size) images, batch \(batch), \(threads) worker\(threads == 1 ? "" : "s") (1 BLAS thread each)
              \(steps) timed steps after \(warmup) warm-up; \(blas)
              step time      \(format(stepMilliseconds, 1)) ms (median; mean \(format(stepMillisecondsMean, 1)))
              images/s       \(format(imagesPerSecond, 1))   (\(imageCounting))
              GFLOP/s        \(format(gflopPerSecond, 1))   (\(format(gflopPerImage, 4)) GFLOP per image: \(flopCounting))
              sgemm peak     \(format(sgemmPeakGflopPerSecond, 1)) GFLOP/s (OpenBLAS sgemm \(sgemmPeakSize)², same threads, this run)
              share of peak  \(format(100 * shareOfPeak, 1)) %
            """)
        if let loss { Swift.print("  loss           \(format(loss, 4)) (after the last step; −1 is the floor)") }
        profile?.printText(stepMilliseconds: stepMillisecondsMean)
    }
}

// MARK: - Small helpers shared by the bench files

/// Seconds elapsed on a monotonic clock since `start`.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

/// Runs `body` and returns how long it took, in seconds.
func timed(_ body: () -> Void) -> Double {
    let start = ContinuousClock.now
    body()
    return seconds(since: start)
}

func format(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }

/// recall@k as ann-benchmarks counts it: the share of the approximate answers whose score reaches
/// the exact k-th score (less 1e-5 for rounding), over k per query. Counting ids instead calls an
/// answer wrong when it holds another of several items of equal score, which a store of copies has
/// in numbers (the 10⁶-item benchmark stores each of its 49,800 files about 20 times: ids gave
/// 0.64 where scores give the true figure). Scores are cosine similarities, higher is nearer.
func recallByScore(_ approximate: [[Float]], exact: [[Float]], k: Int) -> Double {
    var found = 0, total = 0
    for (answer, truth) in zip(approximate, exact) {
        guard let threshold = truth.prefix(k).last else { continue }
        found += answer.prefix(k).filter { $0 >= threshold - 1e-5 }.count
        total += min(k, truth.count)
    }
    return Double(found) / Double(max(total, 1))
}

/// `text` padded with spaces (or cut) to `width` characters, for aligned tables.
func padded(_ text: String, _ width: Int, right: Bool = false) -> String {
    let count = text.count
    if count >= width { return text }
    let fill = String(repeating: " ", count: width - count)
    return right ? fill + text : text + fill
}

extension Array where Element == Double {
    var median: Double {
        let sorted = self.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
