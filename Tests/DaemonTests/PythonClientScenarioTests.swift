// The real glfd process, driven by Python clients written from protocol/PROTOCOL.md alone:
// tools/python/scenario.py (through glfd_client.py: ingest, training, announcement, knn, embed,
// garbage, SIGTERM and restart), tools/python/spec_conformance.py (every field, error, limit and
// edge the spec names) and tools/python/flood.py (1,100 idle connections must not lock new
// clients out). pyzmq comes from Debian's python3-zmq (tools/setup).
import Foundation
import GLFDTesting
import Testing

@Suite struct PythonClientScenarioTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized

    @Test func thePythonClientRunsTheScenarioAgainstARealDaemon() throws {
        let glfd = try Self.glfd()
        let images = try cifarFiles(64)
        let directory = NSTemporaryDirectory() + "glfd-scenario-images-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (i, bytes) in images.enumerated() {
            try Data(bytes).write(to: URL(fileURLWithPath: String(format: "\(directory)/%03d.jpg", i)))
        }
        let (status, text) = try Self.python("scenario.py", "--glfd", glfd, "--images", directory)
        #expect(status == 0, "scenario.py failed (pyzmq: apt-get install python3-zmq):\n\(text)")
        #expect(text.contains("all checks hold"), "\(text)")
    }

    /// PROTOCOL.md's promises, each checked by a client written from its text alone (issue 12).
    @Test func theDaemonKeepsEveryPromiseOfItsProtocol() throws {
        let (status, text) = try Self.python("spec_conformance.py", "--spawn", try Self.glfd())
        #expect(status == 0, "spec_conformance.py failed:\n\(text)")
        #expect(text.contains("conformance: ") && text.contains(" 0 failed"), "\(text)")
    }

    @Test func aConnectionFloodDoesNotLockOutNewClients() throws {
        let (status, text) = try Self.python("flood.py", "--glfd", try Self.glfd(), "--connections", "1100")
        #expect(status == 0, "flood.py failed:\n\(text)")
        #expect(text.contains("flood: all checks hold"), "\(text)")
    }

    static func glfd() throws -> String {
        let glfd = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("glfd").path
        try #require(FileManager.default.isExecutableFile(atPath: glfd), "\(glfd) is not built")
        return glfd
    }

    /// Runs tools/python/`script` with `arguments`: its exit status and everything it printed.
    static func python(_ script: String, _ arguments: String...) throws -> (Int32, String) {
        try python(script, arguments: arguments)
    }

    static func python(_ script: String, arguments: [String]) throws -> (Int32, String) {
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        python.arguments = [repository.appendingPathComponent("tools/python/\(script)").path] + arguments
        let output = Pipe()
        python.standardOutput = output
        python.standardError = output
        try python.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        return (python.terminationStatus, text)
    }
}
