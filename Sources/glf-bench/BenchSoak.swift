// glf-bench soak: glfd on its defaults (the real binary, a process of its own) for half an hour of
// mixed work: images streamed in at a steady rate into a store held at --max-items by retention
// (so it turns over), knn queries between ingest requests, and versions published as training
// goes, each rebuilding the catalog. Every --sample-seconds it prints where the memory is
// (status's `memory`): the resident set and its file-backed part, the heap in use and held, and the
// daemon's own structures. The bar (issue 14): flat after warm-up. The summary compares the
// resident set and each structure at the end of warm-up with their largest values after it.
//
// Memory, not speed: nothing here is timed against a peer.
import ArgumentParser
import Datasets
import Foundation
import GLFDTesting
import Protocol

struct BenchSoak: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "glfd for --minutes of streamed ingest, queries and publications: its memory over time.")

    @Option(help: "Folder of JPEG/PNG files (e.g. CIFAR-10's training split), streamed in a loop.")
    var data: String

    @Option(help: "The glfd binary (default: the one beside glf-bench).")
    var glfd: String?

    @Option(help: "Minutes to run.")
    var minutes = 30.0

    @Option(help: "Minutes of warm-up: the summary compares what comes after with its end.")
    var warmUpMinutes = 5.0

    @Option(help: "Seconds between samples.")
    var sampleSeconds = 30.0

    @Option(help: "Images per second streamed in.")
    var ingestRate = 100.0

    @Option(help: "Retention: the store keeps at most this many items (glfd's store.max_items).")
    var maxItems = 50_000

    @Option(help: "Images per ingest request.")
    var batch = 32

    @Option(help: "knn queries after each ingest request.")
    var queries = 2

    @Option(name: .customLong("set"), help: "More glfd settings, key=value (repeatable).")
    var settings: [String] = []

    @Option(help: "Where the daemon's state goes (removed at the end).")
    var dir = "."

    @Option(help: "Also write the samples here, tab-separated.")
    var tsv: String?

    func validate() throws {
        guard minutes > 0, warmUpMinutes >= 0, warmUpMinutes < minutes, sampleSeconds > 0, ingestRate > 0, maxItems >= 1,
              batch >= 1, batch <= ProtocolLimits.default.maxImagesPerRequest, queries >= 0 else {
            throw ValidationError("--minutes > --warm-up-minutes ≥ 0, --sample-seconds and --ingest-rate > 0, --max-items ≥ 1, 1 ≤ --batch ≤ \(ProtocolLimits.default.maxImagesPerRequest), --queries ≥ 0")
        }
    }

    func run() throws {
        let binary = glfd ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("glfd").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw ValidationError("\(binary) is not an executable glfd") }
        let files = try imageFiles([data])
        let images = try files.map { try [UInt8](Data(contentsOf: URL(fileURLWithPath: $0))) }
        let state = URL(fileURLWithPath: dir).appendingPathComponent(".bench-soak-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: state) }
        var soak = Soak(glfd: binary, directory: state, settings: ["store.max_items=\(maxItems)"] + settings, images: images)
        (soak.ingestPerRound, soak.queriesPerRound, soak.sampleEverySeconds, soak.ingestPerSecond) = (batch, queries, sampleSeconds, ingestRate)

        print("glf-bench soak: glfd (\(binary)) on its defaults but store.max_items=\(maxItems)\(settings.map { ", " + $0 }.joined()), "
              + "\(minutes) minutes; \(files.count) images from \(data) streamed at \(ingestRate) images/s in requests of \(batch), "
              + "\(queries) knn after each; a sample every \(sampleSeconds) s")
        let header = ["minutes", "items", "step", "img/s", "model", "catalog", "rebuilding", "resident", "file", "heap_in_use", "heap_held",
                      "networks", "catalog_bytes", "building", "replay"]
        print(header.map { padded($0, 11) }.joined())
        var rows: [[String]] = []
        let (samples, log) = try soak.run(seconds: minutes * 60, progress: { sample in
            let s = sample.status, m = s.memory
            func mib(_ bytes: Int?) -> String { bytes.map { String(format: "%.1f", Double($0) / 1_048_576) } ?? "-" }
            let row = [String(format: "%.1f", sample.seconds / 60), "\(s.store.items)", "\(s.training.step)",
                       String(format: "%.0f", s.training.imagesPerSecond), "\(s.model.version)", "\(s.catalog.version)",
                       s.catalog.building.map { "\($0)" } ?? "-", mib(m?.residentBytes), mib(m?.residentFileBytes), mib(m?.heapInUseBytes),
                       mib(m?.heapHeldBytes), mib(m?.networksBytes), mib(m?.catalogBytes), mib(m?.catalogBuildingBytes),
                       mib(m?.replayBytes)]
            rows.append(row)
            print(row.map { padded($0, 11) }.joined())
        })
        print("(MiB but for the first seven columns)")
        trainingWhileRebuilding(samples)
        if let tsv {
            let text = ([header] + rows).map { $0.joined(separator: "\t") }.joined(separator: "\n") + "\n"
            try text.write(toFile: tsv, atomically: true, encoding: .utf8)
        }
        summarise(samples)
        if samples.isEmpty { print(log.suffix(4000)) }
    }

    /// Training's images/s in samples taken while a catalog was being built, against the others:
    /// what rebuilds cost training (the basis of index.rebuild_share).
    private func trainingWhileRebuilding(_ samples: [Soak.Sample]) {
        let training = samples.filter { $0.status.training.imagesPerSecond > 0 }
        let (during, outside) = (training.filter { $0.status.catalog.building != nil }, training.filter { $0.status.catalog.building == nil })
        func mean(_ s: [Soak.Sample]) -> Double { s.map(\.status.training.imagesPerSecond).reduce(0, +) / Double(max(1, s.count)) }
        print(String(format: "training while a catalog was built: %.1f images/s (%d samples); otherwise %.1f images/s (%d samples); ratio %.2f",
                     mean(during), during.count, mean(outside), outside.count, mean(outside) > 0 ? mean(during) / mean(outside) : .nan))
    }

    /// Each quantity between rebuilds (no catalog being built: the builder's buffers spike
    /// otherwise), its median over the first and over the last third after warm-up: flat means a
    /// ratio near 1. Peaks, rebuilds included, beside them.
    private func summarise(_ samples: [Soak.Sample]) {
        let after = samples.filter { $0.seconds > warmUpMinutes * 60 }
        let between = after.filter { $0.status.catalog.building == nil }.compactMap(\.status.memory)
        guard between.count >= 3 else { return print("too few samples between rebuilds after the warm-up (\(between.count))") }
        let third = between.count / 3
        let (first, last) = (Array(between.prefix(third)), Array(between.suffix(third)))
        print("after \(warmUpMinutes) minutes of warm-up, between rebuilds (\(between.count) samples): median of the first third → of the last third (ratio); peak with rebuilds")
        let parts: [(String, (StatusResult.Memory) -> Int)] = [
            ("resident", \.residentBytes), ("resident, file-backed", \.residentFileBytes), ("heap in use", \.heapInUseBytes),
            ("heap held", \.heapHeldBytes), ("networks", \.networksBytes), ("catalog", \.catalogBytes),
            ("catalog being built", \.catalogBuildingBytes), ("replay", \.replayBytes),
        ]
        func median(_ values: [Int]) -> Double { Double(values.sorted()[values.count / 2]) / 1_048_576 }
        for (name, bytes) in parts {
            let (start, end) = (median(first.map(bytes)), median(last.map(bytes)))
            let peak = Double(after.compactMap { $0.status.memory.map(bytes) }.max() ?? 0) / 1_048_576
            print("  " + padded(name, 24) + String(format: "%9.1f → %9.1f MiB  (%.2f); peak %9.1f MiB", start, end,
                                                   start > 0 ? end / start : .nan, peak))
        }
    }
}
