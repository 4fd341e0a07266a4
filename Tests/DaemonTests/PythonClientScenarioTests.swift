// The real glfd process, driven by the Python client (tools/python/glfd_client.py, written from
// protocol/PROTOCOL.md alone) through tools/python/scenario.py: ingest, training, announcement,
// knn, embed, garbage, SIGTERM and restart. pyzmq comes from Debian's python3-zmq (tools/setup).
import Foundation
import Testing

@Suite struct PythonClientScenarioTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized

    @Test func thePythonClientRunsTheScenarioAgainstARealDaemon() throws {
        let glfd = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("glfd").path
        try #require(FileManager.default.isExecutableFile(atPath: glfd), "\(glfd) is not built")
        let images = try cifarFiles(64)
        let directory = NSTemporaryDirectory() + "glfd-scenario-images-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (i, bytes) in images.enumerated() {
            try Data(bytes).write(to: URL(fileURLWithPath: String(format: "\(directory)/%03d.jpg", i)))
        }
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        python.arguments = [Self.repository.appendingPathComponent("tools/python/scenario.py").path, "--glfd", glfd, "--images", directory]
        let output = Pipe()
        python.standardOutput = output
        python.standardError = output
        try python.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        #expect(python.terminationStatus == 0, "scenario.py failed (pyzmq: apt-get install python3-zmq):\n\(text)")
        #expect(text.contains("all checks hold"), "\(text)")
    }
}
