// SIGHUP: glfd re-reads its configuration, applies what is safe while serving (the log level, the
// CURVE allowlist), says that other changes wait for a restart, and keeps serving.
import Foundation
import GLFDTesting
import Testing

@Suite struct ReloadTests {
    @Test func sighupAppliesTheLogLevelAndNamesWhatWaitsForARestart() throws {
        let glfd = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("glfd").path
        try #require(FileManager.default.isExecutableFile(atPath: glfd), "\(glfd) is not built")
        let state = temporaryDaemonDirectory()
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let config = state.appendingPathComponent("glfd.toml").path
        try "[logging]\nlevel = \"info\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: glfd)
        process.arguments = ["--config", config, "--set", "server.request_endpoint=tcp://127.0.0.1:*",
                             "--set", "server.announce_endpoint=tcp://127.0.0.1:*", "--set", "training.enabled=false",
                             "--set", "metrics.endpoint=127.0.0.1:0"]
        process.currentDirectoryURL = state
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        var log = ""
        func read(until marker: String, seconds: Double) { GLFDTesting.read(errors, into: &log, until: marker, seconds: seconds) }
        read(until: "started", seconds: 60)
        try "[logging]\nlevel = \"debug\"\n[training]\nbatch = 64\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        read(until: "next restart", seconds: 60)
        #expect(log.contains("<5>glfd: log level now debug"), "\(log)")
        #expect(log.contains("other changed settings take effect at the next restart"), "\(log)")
        process.terminate()
        read(until: "stopped", seconds: 60)
        #expect(waitForExit(process, seconds: 60), "glfd did not stop on SIGTERM: \(log)")
        #expect(process.terminationStatus == 0)
    }
}
