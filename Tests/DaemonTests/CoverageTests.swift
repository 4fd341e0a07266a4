// Knn is never silently empty: a burst of ingest into a fresh daemon is answered from its first
// items at once, each reply says what it covered (catalog_items of store_items), and versions
// published faster than their catalogs complete never make serving go backwards or empty.
import Daemon
import Foundation
import GLFDClient
import GLFDTesting
import Protocol
import Testing
import ZeroMQ

@Suite(.serialized) struct CoverageTests {
    @Test func aBurstIntoAFreshDaemonIsAnsweredAtOnceWithItsCoverage() throws {
        var settings = testDaemonSettings(temporaryDaemonDirectory())
        settings.trainingEnabled = false
        settings.catalog.tailLimit = 100
        settings.catalog.catchUpLimit = 32
        let daemon = try GLFDaemon(settings: settings)
        daemon.start()
        defer { daemon.stop() }
        let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests)
        let images = try cifarFiles(600).map { ImagePayload($0) }
        // The first catalog (of the empty store) is built in the background at start.
        #expect(waitUntil(seconds: 120) { (try? client.result(.status, as: StatusResult.self).catalog.version) == 1 })
        let empty = try client.result(.knn(KNNQuery(.image(images[0]), k: 5)), as: KNNResult.self)
        #expect(empty.neighbours.isEmpty && empty.catalogItems == 0 && empty.storeItems == 0)

        // 600 items, six times the tail limit, acknowledged before any of them is embedded.
        for start in stride(from: 0, to: 600, by: 100) {
            _ = try client.result(.ingest(Array(images[start..<start + 100])), as: IngestResult.self)
        }
        let first = try client.result(.knn(KNNQuery(.image(images[0]), k: 5)), as: KNNResult.self)
        #expect(!first.neighbours.isEmpty, "a burst is answered from its first items")
        #expect(first.storeItems == 600)
        #expect(first.catalogItems >= 32 && first.catalogItems <= 600)
        #expect(first.isPartial == (first.catalogItems < 600))

        // The fold brings the whole burst in; then the coverage is complete.
        var last = first
        for _ in 0..<1200 where last.catalogItems < 600 {
            usleep(50_000)
            last = try client.result(.knn(KNNQuery(.image(images[0]), k: 5)), as: KNNResult.self)
            #expect(!last.neighbours.isEmpty && last.catalogItems <= last.storeItems)
        }
        #expect(last.catalogItems == 600 && last.storeItems == 600 && !last.isPartial)
        #expect(last.neighbours.first?.score ?? 0 > 0.999, "the query image is stored: it comes first")
    }

    @Test func versionsFasterThanCatalogsNeverMakeServingGoBackwardsOrEmpty() throws {
        var settings = testDaemonSettings(temporaryDaemonDirectory())
        settings.trainer.publishEverySteps = 2     // a version every two steps of 16 images
        settings.trainer.updatesPerImage = 2
        let daemon = try GLFDaemon(settings: settings)
        daemon.start()
        defer { daemon.stop() }
        let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests)
        let images = try cifarFiles(300).map { ImagePayload($0) }
        for start in stride(from: 0, to: 300, by: 50) {
            _ = try client.result(.ingest(Array(images[start..<start + 50])), as: IngestResult.self)
        }
        // 300 × 2 / 16 ≈ 37 steps, about 18 versions, each re-embedding the store; the loop
        // ends once at least 6 versions were published and the catalog caught up with the newest.
        var versions: [Int] = []
        var settled: StatusResult.Catalog?
        var lastSeen: StatusResult?
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let reply = try client.result(.knn(KNNQuery(.item(UInt64(1 + versions.count % 300)), k: 3)), as: KNNResult.self)
            #expect(!reply.neighbours.isEmpty, "never empty while items are stored (version \(reply.version))")
            #expect(reply.storeItems == 300 && reply.catalogItems <= 300)
            if let previous = versions.last { #expect(reply.version >= previous, "serving went back from \(previous) to \(reply.version)") }
            versions.append(reply.version)
            let status = try client.result(.status, as: StatusResult.self)
            lastSeen = status
            // (Not "training finished": this small model may collapse and be rolled back for a
            // while, which is the trainer's business; what is tested here is serving.)
            if status.model.version >= 6, status.catalog.complete, status.catalog.version == status.model.version {
                settled = status.catalog
                break
            }
        }
        // Serving caught up with the trained versions, and knn answers from there on.
        let caughtUp = try #require(settled, "the catalog never caught up with training: knn answered \(Set(versions).sorted()); last status \(String(describing: lastSeen))")
        let final = try client.result(.knn(KNNQuery(.item(1), k: 3)), as: KNNResult.self)
        #expect(caughtUp.version > 1 && final.version >= caughtUp.version && !final.neighbours.isEmpty,
                "knn answered \(Set(versions).sorted()), then \(final.version); the settled catalog is version \(caughtUp.version)")
    }
}
