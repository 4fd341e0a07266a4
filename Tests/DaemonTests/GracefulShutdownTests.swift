// SIGTERM while clients ingest as fast as they can: glfd stops taking work, lets pending commits
// finish and their acknowledgements go out, and exits 0 well within TimeoutStopSec (90 s); after a
// restart every acknowledged item is there.
import Foundation
import GLFDTesting
import Protocol
import Testing
import ZeroMQ

@Suite struct GracefulShutdownTests {
    @Test func sigtermDuringHeavyIngestLosesNoAcknowledgedItem() throws {
        let glfd = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("glfd").path
        try #require(FileManager.default.isExecutableFile(atPath: glfd), "\(glfd) is not built")
        let images = try cifarFiles(40).map { ImagePayload($0) }
        let state = temporaryDaemonDirectory()
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let context = try ZMQContext()

        func start() throws -> (Process, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: glfd)
            process.arguments = ["--set", "server.request_endpoint=tcp://127.0.0.1:*", "--set", "server.announce_endpoint=tcp://127.0.0.1:*",
                                 "--set", "training.enabled=false", "--set", "metrics.endpoint=127.0.0.1:0"]
            process.currentDirectoryURL = state
            let errors = Pipe()
            process.standardError = errors
            try process.run()
            // Read the log until the line naming the endpoints, then keep draining it.
            var text = ""
            read(errors, into: &text, until: ", announcing on", seconds: 120)
            errors.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
            let endpoint = try #require(text.firstMatch(of: /on (tcp:\/\/\S+), announcing/)?.1, "\(text)")
            return (process, String(endpoint))
        }

        let (daemon, endpoint) = try start()
        let client = try ZMQSocket(context: context, type: .dealer)
        try client.set(.receiveTimeout, to: 120_000)
        try client.connect(endpoint)
        var acknowledged: [UInt64] = [], refusedWhileStopping = 0, inflight = 0, sent = 0
        var terminatedAt: Date?
        // Keep 6 requests of 20 images in flight; SIGTERM after the 30th reply; then read replies
        // until the daemon has gone (every request gets an answer or the connection ends).
        while true {
            while inflight < 6 && terminatedAt == nil {
                let batch = (0..<20).map { images[(sent * 20 + $0) % images.count] }
                try client.send(Request(id: .number(Int64(sent)), .ingest(batch)).encode())
                sent += 1
                inflight += 1
            }
            guard inflight > 0, let frames = try? client.receive() else { break }
            inflight -= 1
            let reply = try Reply.decode(frames)
            switch reply.outcome {
            case .success: acknowledged += try reply.result(as: IngestResult.self).ids
            case .failure(let error):
                #expect(error.code == .shuttingDown, "\(error)")
                refusedWhileStopping += 1
            }
            if acknowledged.count >= 600 && terminatedAt == nil {
                terminatedAt = Date()
                daemon.terminate()
            }
        }
        #expect(waitForExit(daemon, seconds: 120), "glfd did not stop on SIGTERM")
        let stopSeconds = Date().timeIntervalSince(try #require(terminatedAt))
        #expect(daemon.terminationReason == .exit && daemon.terminationStatus == 0)
        #expect(stopSeconds < 90, "stopping took \(stopSeconds) s")

        let (restarted, again) = try start()
        let checker = try ZMQSocket(context: context, type: .dealer)
        try checker.set(.receiveTimeout, to: 120_000)
        try checker.connect(again)
        try checker.send(Request(id: .number(1), .get(ids: acknowledged, pixels: false)).encode())
        let items = try Reply.decode(try checker.receive()).result(as: GetResult.self).items
        #expect(items.count == acknowledged.count && items.allSatisfy { $0 != nil }, "\(items.filter { $0 == nil }.count) acknowledged items missing")
        restarted.terminate()
        #expect(waitForExit(restarted, seconds: 120), "the restarted glfd did not stop on SIGTERM")
    }
}
