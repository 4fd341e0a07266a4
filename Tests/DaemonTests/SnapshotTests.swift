// Snapshots (issue 17): taken while images stream in, restored into a new state directory, the
// restored daemon holds every image acknowledged before the snapshot was asked for, only images the
// original holds, and answers knn as the original does over the same items under the same version.
import Daemon
import Foundation
import GLFDClient
import GLFDTesting
import Protocol
import Testing

@Suite(.serialized) struct SnapshotTests {
    @Test func aSnapshotTakenUnderIngestRestoresEveryAcknowledgedItem() throws {
        let root = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        var settings = testDaemonSettings(root.appendingPathComponent("original"))
        settings.trainingEnabled = false
        let original = try GLFDaemon(settings: settings)
        original.start()
        defer { original.stop() }
        let endpoint = original.server.boundEndpoints.requests
        let files = try cifarFiles(400)

        // A producer streams batches of 10 until told to stop; every acknowledged id is kept.
        final class Produced: @unchecked Sendable {
            let lock = NSLock()
            var ids: [UInt64] = []
            var stop = false
        }
        let produced = Produced()
        let producer = Thread {
            guard let client = try? GLFDClient(endpoint: endpoint) else { return }
            for start in stride(from: 0, to: 380, by: 10) where !produced.lock.withLock({ produced.stop }) {
                guard let ids = try? client.result(.ingest(files[start..<start + 10].map { ImagePayload($0) }), as: IngestResult.self).ids else { return }
                produced.lock.withLock { produced.ids += ids }
            }
        }
        producer.start()
        #expect(waitUntil(seconds: 60) { produced.lock.withLock { produced.ids.count >= 100 } })

        let client = try GLFDClient(endpoint: endpoint, timeoutMilliseconds: 120_000)
        let snapshot = root.appendingPathComponent("snapshot")
        let acknowledgedBefore = Set(produced.lock.withLock { produced.ids })
        let result = try client.result(.snapshot(dir: snapshot.path), as: SnapshotResult.self)
        produced.lock.withLock { produced.stop = true }
        #expect(waitUntil(seconds: 60) { producer.isFinished })
        #expect(result.dir == snapshot.path && result.version == 1 && result.items >= acknowledgedBefore.count && result.bytes > 0)

        // Refusals: a directory in use, a relative path.
        for dir in [snapshot.path, "relative/dir"] {
            guard case .failure(let error) = try client.call(.snapshot(dir: dir)).outcome else {
                Issue.record("a snapshot into \(dir) was taken"); continue
            }
            #expect(error.code == .badHeader, "\(error)")
        }

        var restoredSettings = testDaemonSettings(root.appendingPathComponent("restored"))
        restoredSettings.trainingEnabled = false
        try GLFDaemon.restore(from: snapshot, into: restoredSettings)
        #expect(throws: SnapshotError.self) { try GLFDaemon.restore(from: snapshot, into: restoredSettings) }
        let restored = try GLFDaemon(settings: restoredSettings)
        restored.start()
        defer { restored.stop() }
        let restoredIDs = Set(try restored.store.items(after: 0, limit: 1_000).map(\.id))
        let originalIDs = Set(try original.store.items(after: 0, limit: 1_000).map(\.id))
        #expect(restoredIDs.count == result.items)
        #expect(restoredIDs.isSuperset(of: acknowledgedBefore), "lost: \(acknowledgedBefore.subtracting(restoredIDs).sorted())")
        #expect(restoredIDs.isSubset(of: originalIDs))
        let other = try GLFDClient(endpoint: restored.server.boundEndpoints.requests, timeoutMilliseconds: 120_000)
        #expect(try other.result(.model, as: ModelResult.self).version == result.version)

        // The same answers over the same items: the original's filtered to what the copy holds,
        // once each has embedded all it stores (a knn embeds some of the backlog itself). The
        // initial model puts every image within 0.001 of every other, so rows embedded in other
        // batches may swap places by a rounding: the scores must agree, rank by rank.
        let newest = try #require(restoredIDs.max())
        let cutoff = try #require(try client.result(.get(ids: [newest], pixels: false), as: GetResult.self).items[0]).ingestedAt
        func knn(_ on: GLFDClient, _ query: [UInt8], before: Double?) throws -> KNNResult {
            try on.result(.knn(KNNQuery(.image(ImagePayload(query)), k: 10, exact: true, ingestedBefore: before)), as: KNNResult.self)
        }
        #expect(waitUntil(seconds: 60) {
            [(client, cutoff + 1e-6), (other, nil)].allSatisfy { on, before in
                (try? knn(on, files[0], before: before)).map { !$0.isPartial } ?? false
            }
        })
        for query in files.suffix(5) {
            let (a, b) = (try knn(client, query, before: cutoff + 1e-6), try knn(other, query, before: nil))
            #expect(a.version == b.version && a.neighbours.count == 10 && b.neighbours.count == 10)
            #expect(zip(a.neighbours, b.neighbours).allSatisfy { abs($0.score - $1.score) < 1e-5 }, "\(a.neighbours) vs \(b.neighbours)")
            #expect(b.neighbours.allSatisfy { restoredIDs.contains($0.id) })
        }
    }
}
