// glf-bench: the benchmarks (Bench.swift lists them).
import Foundation
import Neural

/// A line on standard error: what a benchmark did besides its numbers.
func note(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

/// Every benchmark's `print`: one write(2) per call. Benchmarks run for minutes to hours into log
/// files (nohup … > log), where the C library's stdout would hold lines back a block at a time;
/// this shadows Swift's `print` in this module, so the log shows where a run is.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    FileHandle.standardOutput.write(Data((items.map { "\($0)" }.joined(separator: separator) + terminator).utf8))
}

BLAS.restartWithBetterKernelsIfNeeded()
Bench.main()
