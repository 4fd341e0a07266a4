// glf store: the replay store from the command line — ingest files into a store directory the way
// the daemon does (decode, resize, group commit, acknowledge once durable), show its statistics,
// check every record.
//
// `ingest` prints one line per acknowledged item, "<id>\t<path>", as soon as its commit is durable:
// the crash test kills it at random moments and checks that every printed id survived.
import ArgumentParser
import Datasets
import Foundation
import Imaging
import Store

struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Ingest images into a replay store, show its statistics, verify it.",
        subcommands: [StoreIngest.self, StoreStat.self, StoreVerify.self])
}

struct StoreOptions: ParsableArguments {
    @Option(help: "Store directory (an LMDB environment; created with mode 0700).")
    var state: String

    @Option(help: "Side of the canonical (stored) images.")
    var side = 32

    @Flag(help: "Store gray images instead of RGB.")
    var gray = false

    @Flag(help: "Fast mode: acknowledge on commit, flush to disk every second (a machine crash may lose the last second).")
    var fast = false

    @Option(name: .customLong("max-items"), help: "Retention: keep at most this many items (the oldest go first).")
    var maxItems: Int?

    @Option(name: .customLong("max-map-mib"), help: "Largest the LMDB map may grow to, in MiB.")
    var maxMapMiB = 65_536

    @Option(help: "Replay policy: fifo, reservoir, minred or reservoir-minred.")
    var replay = ReplayPolicyKind.fifo

    @Option(name: .customLong("replay-capacity"), help: "Members of the replay set.")
    var replayCapacity = 65_536

    var canonical: CanonicalShape { CanonicalShape(side: side, channels: gray ? 1 : 3) }

    func open() throws -> ImageStore {
        var configuration = StoreConfiguration(directory: state, canonical: canonical)
        configuration.durability = fast ? .syncOnDemand : .syncOnCommit
        configuration.maxItems = maxItems
        configuration.maxMapSize = maxMapMiB << 20
        configuration.replay = ReplayConfiguration(policy: replay, capacity: replayCapacity)
        return try ImageStore(configuration)
    }
}

extension ReplayPolicyKind: ExpressibleByArgument {}

struct StoreIngest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Decode JPEG/PNG files (or folders of them) and store them; prints \"<id>\\t<path>\" per acknowledged item.")

    @OptionGroup var store: StoreOptions

    @Option(help: "Source tag stored with every item.")
    var source = "glf-store-ingest"

    @Option(help: "Items per ingest request (requests from all workers share commits).")
    var batch = 64

    @Option(help: "Worker threads decoding and submitting.")
    var workers = 4

    @Option(help: "Ingest the list this many times (load and crash tests).")
    var `repeat` = 1

    @Argument(help: "Files or folders (searched recursively for .jpg, .jpeg, .png). Exit status 2 if any file was refused.")
    var paths: [String]

    func run() throws {
        let files = try imageFiles(paths)
        guard !files.isEmpty else { throw ValidationError("no .jpg, .jpeg or .png files in \(paths)") }
        let store = try self.store.open()
        let canonical = self.store.canonical
        let work = (0..<self.repeat).flatMap { _ in files }
        let chunks = stride(from: 0, to: work.count, by: batch).map { Array(work[$0..<min($0 + batch, work.count)]) }
        let progress = IngestProgress(chunks: chunks)
        let started = Date()
        let threads = (0..<max(1, workers)).map { _ in
            Thread { [source] in
                let decoder = IngestDecoder(canonical: canonical)
                while let chunk = progress.nextChunk() {
                    var items: [NewItem] = [], kept: [String] = []
                    for path in chunk {
                        do {
                            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
                            items.append(try decoder.item(encoded: bytes, source: source, metadata: Array(path.utf8)))
                            kept.append(path)
                        } catch {
                            progress.reject(path, error)
                        }
                    }
                    do {
                        progress.acknowledge(try store.ingestAndWait(items), kept)
                    } catch {
                        progress.fail(error)
                        return
                    }
                }
            }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { usleep(2000) }
        store.close()
        let seconds = Date().timeIntervalSince(started)
        let (acknowledged, rejected, failure) = progress.summary
        note(String(format: "glf store ingest: %d acknowledged, %d rejected in %.2f s (%.0f images/s)",
                    acknowledged, rejected, seconds, Double(acknowledged) / seconds))
        if let failure { throw failure }
        // Scripts can tell "all stored" from "some files were refused".
        if rejected > 0 { throw ExitCode(2) }
    }
}

/// Shared by the ingest workers: hands out chunks, prints acknowledgements in the order they come.
private final class IngestProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var chunks: [[String]]
    private var next = 0
    private var acknowledged = 0, rejected = 0
    private var failure: Error?

    init(chunks: [[String]]) { self.chunks = chunks }

    func nextChunk() -> [String]? {
        lock.withLock {
            guard failure == nil, next < chunks.count else { return nil }
            next += 1
            return chunks[next - 1]
        }
    }

    func acknowledge(_ ids: [UInt64], _ paths: [String]) {
        let lines = zip(ids, paths).map { "\($0)\t\($1)\n" }.joined()
        lock.withLock {
            acknowledged += ids.count
            FileHandle.standardOutput.write(Data(lines.utf8))
        }
    }

    func reject(_ path: String, _ error: Error) {
        lock.withLock { rejected += 1 }
        note("rejected \(path): \(error)")
    }

    func fail(_ error: Error) { lock.withLock { failure = failure ?? error } }

    var summary: (Int, Int, Error?) { lock.withLock { (acknowledged, rejected, failure) } }
}

struct StoreStat: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stat", abstract: "Print a store's statistics.")
    @OptionGroup var store: StoreOptions

    func run() throws {
        let store = try self.store.open()
        let s = store.statistics
        print("""
            items            \(s.items)
            record bytes     \(s.recordBytes)
            next id          \(s.nextID)
            ingested         \(s.ingested) (retired \(s.retired), deleted \(s.deleted))
            replay           \(s.replayPolicy.rawValue), \(s.replayMembers) members
            map              \(s.mapUsedBytes >> 20) MiB used of \(s.mapSize >> 20) MiB
            """)
        store.close()
    }
}

struct StoreVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check every record's checksum and the counters; exit 1 on damage.")
    @OptionGroup var store: StoreOptions

    func run() throws {
        let store = try self.store.open()
        let count = try store.verify()
        print("\(count) items verified")
        store.close()
    }
}
