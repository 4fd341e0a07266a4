// glf-bench: the benchmarks (Bench.swift lists them).
import Foundation
import Neural

/// A line on standard error: what a benchmark did besides its numbers.
func note(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

BLAS.restartWithBetterKernelsIfNeeded()
Bench.main()
