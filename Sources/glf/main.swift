// glf: the offline tool. Everything the daemon's engine does, on files, without the daemon.
import ArgumentParser
import Neural

struct Glf: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "glf",
        abstract: "glfd's offline tool: training, evaluation, the replay store and weight files without the daemon (benchmarks: glf-bench).",
        subcommands: [Train.self, Eval.self, Embed.self, Loss.self, StoreCommand.self, Weights.self])
}

BLAS.restartWithBetterKernelsIfNeeded()
Glf.main()
