import ArgumentParser

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the engine's speed against the sgemm peak of this machine.",
        subcommands: [])
}
