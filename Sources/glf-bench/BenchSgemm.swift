// The yardstick: OpenBLAS sgemm on large square matrices, with the thread count of the run.
//
// C[n,n] = A[n,n] · B[n,n] through BLAS.gemm costs 2·n³ FLOP. Each size is called once untimed
// (thread start-up, page faults), then timed in `trials` trials of enough products to last about
// `trialSeconds`; the best trial is the figure for that size, and the best size is the peak.
import ArgumentParser
import Foundation
import Neural

struct SgemmMeasurement: Encodable {
    var size: Int
    var gflopPerSecond: Double
}

enum SgemmPeak {
    static func measure(sizes: [Int], trials: Int = 5, trialSeconds: Double = 0.1) -> [SgemmMeasurement] {
        var rng = SeededGenerator(seed: 7)
        return sizes.map { n in
            let a = Tensor(zeros: [n, n]), b = Tensor(zeros: [n, n]), c = Tensor(zeros: [n, n])
            a.fillUniform(bound: 1, using: &rng)
            b.fillUniform(bound: 1, using: &rng)
            func product() {
                BLAS.gemm(m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n)
            }
            let once = timed(product)
            let repeats = max(1, Int(trialSeconds / max(once, 1e-6)))
            let best = (0..<trials).map { _ in timed { for _ in 0..<repeats { product() } } / Double(repeats) }.min()!
            return SgemmMeasurement(size: n, gflopPerSecond: 2 * pow(Double(n), 3) / best / 1e9)
        }
    }

    /// The best of `sizes`.
    static func peak(sizes: [Int]) -> SgemmMeasurement {
        measure(sizes: sizes).max { $0.gflopPerSecond < $1.gflopPerSecond }!
    }
}

/// A warning when OpenBLAS runs generic kernels on a CPU that has better ones (glf restarts itself
/// with better ones unless OPENBLAS_CORETYPE was set by the user; see BLAS.betterCoreType).
func openBLASCoreWarning() -> String? {
    guard let core = BLAS.betterCoreType else { return nil }
    return "warning: OpenBLAS runs its generic \(BLAS.coreName) kernels; OPENBLAS_CORETYPE=\(core) would be much faster"
}

func warnAboutOpenBLASCore() {
    if let warning = openBLASCoreWarning() { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
}

struct BenchSgemm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sgemm",
        abstract: "Time OpenBLAS sgemm (C = A·B, square, row-major) at several sizes: the peak the other benches divide by.")

    @Option(help: "OpenBLAS threads.")
    var threads = 2

    @Option(parsing: .unconditional, help: "Square sizes, comma-separated.")
    var sizes = "256,512,1024,2048,3072"

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        let sizeList = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizeList.isEmpty, sizeList.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--sizes: e.g. 1024,2048") }
        BLAS.setThreads(threads)
        warnAboutOpenBLASCore()
        let results = SgemmPeak.measure(sizes: sizeList)
        if json {
            struct Report: Encodable { var threads: Int; var blas: String; var sizes: [SgemmMeasurement] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(Report(threads: threads, blas: BLAS.configuration, sizes: results)),
                         as: UTF8.self))
        } else {
            print("OpenBLAS sgemm, \(threads) thread\(threads == 1 ? "" : "s"); \(BLAS.configuration)")
            for r in results { print("  \(padded("\(r.size)²", 8)) \(padded(format(r.gflopPerSecond, 1), 8, right: true)) GFLOP/s") }
        }
    }
}
