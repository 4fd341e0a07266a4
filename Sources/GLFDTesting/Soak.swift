// A soak: glfd, the real binary in a process of its own, under mixed work for a while: images
// ingested in rounds, knn queries between them, and versions published as training goes, each
// rebuilding the catalog. `status` is sampled as it goes, memory included. The short test
// (Tests/DaemonTests/MemorySoakTests) and the 30-minute benchmark (`glf-bench soak`) drive it.
//
// glfd runs in its own process so that its resident set is its own, not the client's.
import Foundation
import GLFDClient
import Protocol

public struct Soak {
    public struct Sample: Sendable {
        /// Since glfd answered its first request.
        public var seconds: Double
        public var status: StatusResult
    }

    /// The glfd binary.
    public var glfd: String
    /// Its working directory: `paths.state_directory` ("state") is made under it.
    public var directory: URL
    /// `key=value` settings for glfd's `--set` (loopback ports are set here).
    public var settings: [String]
    /// Encoded images ingested in order, round after round, from the first again at the end.
    public var images: [[UInt8]]
    public var ingestPerRound = 32
    public var queriesPerRound = 4
    /// Status is sampled at most this often (and at the end of every round after it).
    public var sampleEverySeconds = 1.0
    /// Images per second at most (nil: as fast as glfd acknowledges them).
    public var ingestPerSecond: Double?

    public init(glfd: String, directory: URL, settings: [String], images: [[UInt8]]) {
        (self.glfd, self.directory, self.settings, self.images) = (glfd, directory, settings, images)
    }

    /// Runs rounds until `done` says so (it sees every sample so far) or `seconds` pass; then
    /// stops glfd with SIGTERM. Returns the samples and what glfd logged.
    public func run(seconds: Double, until done: ([Sample]) -> Bool = { _ in false },
                    progress: (Sample) -> Void = { _ in }) throws -> (samples: [Sample], log: String) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: glfd)
        process.arguments = (["server.request_endpoint=tcp://127.0.0.1:*", "server.announce_endpoint=tcp://127.0.0.1:*",
                              "metrics.endpoint=127.0.0.1:0"] + settings).flatMap { ["--set", $0] }
        process.currentDirectoryURL = directory
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        var log = ""
        defer {
            if process.isRunning { process.terminate() }
            waitForExit(process, seconds: 120)
        }
        guard read(errors, into: &log, until: ", announcing on", seconds: 120),
              let endpoint = log.firstMatch(of: /on (tcp:\/\/\S+), announcing/)?.1 else {
            throw SoakError("glfd did not start: \(log)")
        }
        // Keep draining its log so that it never blocks on a full pipe; the text is kept.
        let logged = LogBuffer(log)
        errors.fileHandleForReading.readabilityHandler = { logged.append($0.availableData) }
        defer { errors.fileHandleForReading.readabilityHandler = nil }

        let client = try GLFDClient(endpoint: String(endpoint), timeoutMilliseconds: 120_000)
        let payloads = images.map { ImagePayload($0, ImageDescriptor(source: "soak")) }
        var samples: [Sample] = []
        var next = 0
        let started = Date()
        var lastSample = Date.distantPast
        var ingested = 0
        while Date().timeIntervalSince(started) < seconds {
            if let rate = ingestPerSecond {
                let due = Double(ingested) / rate - Date().timeIntervalSince(started)
                if due > 0 { Thread.sleep(forTimeInterval: due) }
            }
            let round = (0..<ingestPerRound).map { payloads[(next + $0) % payloads.count] }
            next = (next + ingestPerRound) % payloads.count
            _ = try client.result(.ingest(round), as: IngestResult.self)
            ingested += round.count
            for query in 0..<queriesPerRound {
                // Until the first catalog is built (moments after the start) knn is not_ready.
                let reply = try client.call(.knn(KNNQuery(.image(round[query % round.count]), k: 10)))
                if case .failure(let error) = reply.outcome, error.code == .notReady { continue }
                _ = try reply.result(as: KNNResult.self)
            }
            if Date().timeIntervalSince(lastSample) >= sampleEverySeconds {
                lastSample = Date()
                let sample = Sample(seconds: Date().timeIntervalSince(started), status: try client.result(.status, as: StatusResult.self))
                samples.append(sample)
                progress(sample)
                if done(samples) { break }
            }
        }
        process.terminate()
        guard waitForExit(process, seconds: 120) else { throw SoakError("glfd did not stop on SIGTERM") }
        return (samples, logged.text)
    }
}

public struct SoakError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

private final class LogBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var buffer: String
    init(_ text: String) { buffer = text }
    func append(_ data: Data) { lock.withLock { buffer += String(decoding: data, as: UTF8.self) } }
    var text: String { lock.withLock { buffer } }
}
