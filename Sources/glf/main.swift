import ArgumentParser
import Neural

struct Glf: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "glf",
        abstract: "glfd's offline tool: benchmarks, training and evaluation without the daemon.",
        subcommands: [])
}

Glf.main()
