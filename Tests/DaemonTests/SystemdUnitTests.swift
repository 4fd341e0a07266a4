// The unit file as systemd reads it: `systemd-analyze verify` prints nothing (with ExecStart
// pointed at the glfd just built, since /usr/local/bin/glfd exists only once installed), and
// `systemd-analyze security --offline=yes` rates its exposure at 2.0 or less.
import Foundation
import Testing

@Suite struct SystemdUnitTests {
    static let unit = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../systemd/glfd.service").standardized

    static func analyze(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// The unit with ExecStart on the glfd built beside this test bundle, in a temporary folder.
    static func unitWithBuiltBinary() throws -> String {
        let glfd = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("glfd").path
        let text = try String(contentsOf: unit, encoding: .utf8).replacingOccurrences(of: "/usr/local/bin/glfd", with: glfd)
        let directory = NSTemporaryDirectory() + "glfd-unit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/glfd.service"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func verifyPrintsNothing() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"), "install systemd (tools/setup does)")
        let (status, output) = try Self.analyze(["verify", try Self.unitWithBuiltBinary()])
        #expect(status == 0)
        #expect(output.isEmpty, "\(output)")
    }

    @Test func exposureIsAtMostTwo() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"), "install systemd (tools/setup does)")
        let (_, output) = try Self.analyze(["security", "--offline=yes", try Self.unitWithBuiltBinary()])
        let match = output.range(of: #"Overall exposure level for glfd\.service: ([0-9.]+)"#, options: .regularExpression)
        let level = match.flatMap { Double(output[$0].split(separator: " ").last ?? "") }
        let exposure = try #require(level, "no exposure level in: \(output.suffix(400))")
        #expect(exposure <= 2.0, "exposure \(exposure)")
    }
}
