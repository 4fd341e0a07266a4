// glf-bench ingest: durable images/s through the store's whole ingest path (read JPEG bytes →
// decode → resize → group commit, acknowledged once on disk), beside the ceiling on the same disk
// in the same run: raw LMDB puts of records of the same size, 1000 per durable commit, with
// nothing else to do. The ratio is the share of that ceiling the store keeps.
import ArgumentParser
import Datasets
import Foundation
import Imaging
import LMDB
import Store

struct BenchIngest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Durable ingest of JPEGs through decode + store, against raw batched LMDB puts (the ceiling).")

    @Option(help: "Folder of JPEG/PNG files (e.g. CIFAR-10 unpacked); they are repeated up to --count.")
    var data: String

    @Option(help: "Images to ingest.")
    var count = 50_000

    @Option(help: "Threads decoding and submitting requests: more than cores, so decoding overlaps commits.")
    var workers = 4

    @Option(help: "Images per ingest request.")
    var batch = 256

    @Option(help: "Puts per durable commit for the raw LMDB ceiling.")
    var ceilingBatch = 1000

    @Option(help: "Where the temporary stores go (the same disk as the daemon's state, by default here).")
    var dir = "."

    @Flag(help: "Also measure the store's fast mode (acknowledged on commit, flushed every second).")
    var fast = false

    func run() throws {
        let files = try imageFiles([data])
        guard !files.isEmpty else { throw ValidationError("no images in \(data)") }
        let encoded = try (0..<min(count, files.count)).map { try [UInt8](Data(contentsOf: URL(fileURLWithPath: files[$0]))) }
        let work = (0..<count).map { encoded[$0 % encoded.count] }
        let canonical = CanonicalShape()
        let sample = try IngestDecoder(canonical: canonical).item(encoded: work[0], source: "bench")
        note("glf-bench ingest: \(count) images (\(encoded.count) distinct files from \(data)), stored as \(canonical), \(sample.recordBytes)-byte records, LMDB in \(dir)")

        let decodeRate = try measure(count: count) { try decodeOnly(work, canonical: canonical) }
        let ceiling = try measure(count: count) { try rawLMDBPuts(recordBytes: sample.recordBytes) }
        let durable = try measure(count: count) { try ingestThroughStore(work, canonical: canonical, durability: .syncOnCommit) }
        print(String(format: "  decode only (%d workers)          %9.0f images/s", workers, decodeRate))
        print(String(format: "  raw LMDB puts, %d per commit    %9.0f records/s   (ceiling, durable)", ceilingBatch, ceiling))
        print(String(format: "  glfd store: decode + store     %9.0f images/s    (durable, acknowledged)   %.2f of ceiling", durable, durable / ceiling))
        if fast {
            let fastRate = try measure(count: count) { try ingestThroughStore(work, canonical: canonical, durability: .syncOnDemand) }
            print(String(format: "  glfd store, fast mode          %9.0f images/s    (flushed every second)    %.2f of ceiling", fastRate, fastRate / ceiling))
        }
    }

    private func measure(count: Int, _ body: () throws -> Void) throws -> Double {
        let started = Date()
        try body()
        return Double(count) / Date().timeIntervalSince(started)
    }

    private func temporaryDirectory() throws -> String {
        let path = (dir as NSString).appendingPathComponent(".bench-ingest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func onWorkers(_ work: [[UInt8]], _ body: @escaping @Sendable (ArraySlice<[UInt8]>) throws -> Void) throws {
        let chunks = stride(from: 0, to: work.count, by: batch).map { work[$0..<min($0 + batch, work.count)] }
        let queue = WorkQueue(chunks)
        let threads = (0..<max(1, workers)).map { _ in
            Thread {
                while let chunk = queue.next() {
                    do { try body(chunk) } catch { queue.fail(error) }
                }
            }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { usleep(1000) }
        if let error = queue.error { throw error }
    }

    private func decodeOnly(_ work: [[UInt8]], canonical: CanonicalShape) throws {
        try onWorkers(work) { chunk in
            let decoder = IngestDecoder(canonical: canonical)
            for bytes in chunk { _ = try decoder.item(encoded: bytes) }
        }
    }

    private func ingestThroughStore(_ work: [[UInt8]], canonical: CanonicalShape,
                                    durability: LMDBEnvironment.Durability) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = StoreConfiguration(directory: directory, canonical: canonical)
        configuration.durability = durability
        let store = try ImageStore(configuration)
        defer { store.close() }
        try onWorkers(work) { chunk in
            let decoder = IngestDecoder(canonical: canonical)
            let items = try chunk.map { try decoder.item(encoded: $0, source: "bench") }
            _ = try store.ingestAndWait(items)
        }
    }

    private func rawLMDBPuts(recordBytes: Int) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let environment = try LMDBEnvironment(directory: directory, options: .init(mapSize: max(64 << 20, count * recordBytes * 2)))
        let database = try environment.database("items")
        let record = [UInt8](repeating: 0x5A, count: recordBytes)
        var id: UInt64 = 1
        while id <= UInt64(count) {
            try environment.write { txn in
                for _ in 0..<ceilingBatch where id <= UInt64(count) {
                    try txn.put(database, id, record, options: .append)
                    id += 1
                }
            }
        }
    }
}

private final class WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var chunks: [ArraySlice<[UInt8]>]
    private var index = 0
    private(set) var error: Error?

    init(_ chunks: [ArraySlice<[UInt8]>]) { self.chunks = chunks }

    func next() -> ArraySlice<[UInt8]>? {
        lock.withLock {
            guard error == nil, index < chunks.count else { return nil }
            index += 1
            return chunks[index - 1]
        }
    }

    func fail(_ error: Error) { lock.withLock { self.error = self.error ?? error } }
}
