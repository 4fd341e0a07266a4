// `history` (issue 17): every announcement since the state directory was made, kept in
// history.jsonl, in order, with its metrics, across a restart and past versions pruned from models/.
import Daemon
import Foundation
import GLFDClient
import GLFDTesting
import Protocol
import Testing

@Suite(.serialized) struct HistoryTests {
    @Test func theHistoryKeepsEveryAnnouncement() throws {
        let state = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: state) }
        var settings = testDaemonSettings(state)
        settings.trainer.publishEverySteps = 4
        settings.trainer.updatesPerImage = 10   // 64 images: 40 steps of 16, 10 versions
        settings.keepVersions = 2
        do {
            let daemon = try GLFDaemon(settings: settings)
            daemon.start()
            defer { daemon.stop() }
            let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests)
            _ = try client.result(.ingest(try cifarFiles(64).map { ImagePayload($0) }), as: IngestResult.self)
            #expect(waitUntil(seconds: 120) { (daemon.versions.latest?.version ?? 0) >= 5 })
        }
        let daemon = try GLFDaemon(settings: settings)
        daemon.start()
        defer { daemon.stop() }
        let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests)
        let all = try client.result(.history(after: 0, limit: 1000), as: HistoryResult.self)
        let versions = all.announcements.map(\.version)
        #expect(versions.count >= 5 && versions == Array(1...versions.count) && all.nextAfter == nil, "\(versions)")
        #expect(daemon.versions.all.count <= 2, "models/ keeps 2 versions; the history keeps them all")
        #expect(all.announcements.dropFirst().allSatisfy { $0.metrics["collapse"] != nil && $0.metrics.keys.contains { $0.hasPrefix("loss.") } })
        #expect(zip(all.announcements, all.announcements.dropFirst()).allSatisfy { $0.step < $1.step })
        // Pages.
        let first = try client.result(.history(after: 0, limit: 2), as: HistoryResult.self)
        let second = try client.result(.history(after: try #require(first.nextAfter), limit: 2), as: HistoryResult.self)
        #expect(first.announcements.map(\.version) == [1, 2] && second.announcements.map(\.version) == [3, 4])
    }
}
