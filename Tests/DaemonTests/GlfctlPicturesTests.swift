// glfctl against a running daemon (issue 17): `glfctl knn --item ID --montage` writes a PNG whose
// tiles are the stored pixels of the query item and of its neighbours, in the order knn answers,
// each scaled ×4; `glfctl ingest` with its standard error on a pipe prints its summary and no
// progress line.
import Daemon
import Foundation
import GLFDClient
import GLFDTesting
import Imaging
import Pictures
import Protocol
import Testing

@Suite(.serialized) struct GlfctlPicturesTests {
    static var glfctl: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("glfctl").path
    }

    @Test func offATerminalIngestDrawsNoProgressLine() throws {
        let state = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: state) }
        let daemon = try startedServingDaemon(state)
        defer { daemon.stop() }
        try FileManager.default.createDirectory(at: state.appendingPathComponent("images"), withIntermediateDirectories: true)
        for (index, jpeg) in try cifarFiles(3).enumerated() {
            try Data(jpeg).write(to: state.appendingPathComponent("images/\(index).jpg"))
        }
        let process = Process(), errors = Pipe()
        process.executableURL = URL(fileURLWithPath: Self.glfctl)
        process.arguments = ["ingest", "--endpoint", daemon.server.boundEndpoints.requests, state.appendingPathComponent("images").path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0 && text.contains("3 stored"), "\(text)")
        #expect(!text.contains("ingest  [") && !text.contains("\r"), "\(text)")
    }

    @Test func theMontagesTilesAreTheStoredPixels() throws {
        let state = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: state) }
        let daemon = try startedServingDaemon(state)
        defer { daemon.stop() }
        let endpoint = daemon.server.boundEndpoints.requests
        let client = try GLFDClient(endpoint: endpoint)
        let ids = try client.result(.ingest(try cifarFiles(20).map { ImagePayload($0, ImageDescriptor(source: "cifar")) }), as: IngestResult.self).ids
        let answer = try client.result(.knn(KNNQuery(.item(ids[3]), k: 5)), as: KNNResult.self)

        let out = state.appendingPathComponent("knn.png").path
        let glfctl = Self.glfctl
        try #require(FileManager.default.isExecutableFile(atPath: glfctl), "\(glfctl) is not built")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: glfctl)
        process.arguments = ["knn", "--endpoint", endpoint, "--item", "\(ids[3])", "--k", "5", "--montage", out]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)

        let png = try ImageDecoder().decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: out))), to: .rgb)
        let shown = [ids[3]] + answer.neighbours.map(\.id)   // the query item first
        let reply = try client.call(.get(ids: shown, pixels: true))
        #expect(reply.payloads.count == 6)
        for (index, pixels) in reply.payloads.enumerated() {
            let (x, y) = Montage.origin(of: index, side: 128, perRow: 6, captionLines: 3)
            for (row, column) in [(0, 0), (7, 19), (31, 31), (20, 5)] {
                let i = (row * 32 + column) * 3, j = ((y + row * 4 + 1) * png.width + x + column * 4 + 2) * 3
                #expect(Array(png.pixels[j..<j + 3]) == Array(pixels[i..<i + 3]), "tile \(index) (item \(shown[index])) pixel (\(row), \(column))")
            }
        }
        #expect(png.width == Montage.margin + 6 * (128 + Montage.margin))
    }
}
