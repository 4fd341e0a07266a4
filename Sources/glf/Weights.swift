import ArgumentParser

struct Weights: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, inspect and run safetensors weight files.",
        subcommands: [])
}
