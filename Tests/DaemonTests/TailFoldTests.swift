// Folding a catalog's tail in, with an HNSW graph: items ingested after a catalog was built are
// searched exactly from its tail until the tail passes `tailLimit` (a larger burst is not embedded
// before the answer at all); then the catalog is rebuilt with them in its base, and its graph is
// extended with them (not built again). Approximate answers must
// then find the new items, and no answer may name an item twice (while the graph is extended, the
// catalog it came from meets the new items in both its graph and its tail).
import Daemon
import Foundation
import GLFDClient
import GLFDTesting
import Protocol
import Testing
import ZeroMQ

@Suite(.serialized) struct TailFoldTests {
    /// A daemon without training on a fresh state, with `configure`d catalog settings, and a client.
    func startDaemon(_ configure: (inout CatalogSettings) -> Void) throws -> (GLFDaemon, GLFDClient) {
        var settings = testDaemonSettings(temporaryDaemonDirectory())
        settings.trainingEnabled = false
        configure(&settings.catalog)
        let daemon = try GLFDaemon(settings: settings)
        daemon.start()
        // The client's socket keeps its context alive.
        let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests, context: try ZMQContext())
        // The first catalog is built in the background (knn answers not_ready until then): the
        // tests below count on it, so they start once it is there.
        let first = try waitForCatalog(client) { $0.version == 1 && $0.building == nil }
        #expect(first.version == 1, "the first catalog was never built")
        return (daemon, client)
    }

    /// Polls status (up to 2 minutes) until `done` says so; returns the last catalog status.
    @discardableResult
    func waitForCatalog(_ client: GLFDClient, until done: (StatusResult.Catalog) -> Bool) throws -> StatusResult.Catalog {
        var catalog = try client.call(.status).result(as: StatusResult.self).catalog
        for _ in 0..<2400 where !done(catalog) {
            usleep(50_000)
            catalog = try client.call(.status).result(as: StatusResult.self).catalog
        }
        return catalog
    }

    @Test func approximateAnswersFindFoldedItemsAndNeverRepeatOne() throws {
        let images = try cifarFiles(700)
        let (daemon, client) = try startDaemon {
            $0.approximateMinItems = 200
            $0.tailLimit = 100
        }
        defer { daemon.stop() }
        func ingest(_ range: Range<Int>) throws -> [UInt64] {
            try stride(from: range.lowerBound, to: range.upperBound, by: 100).flatMap { start in
                let batch = images[start..<min(start + 100, range.upperBound)].map { ImagePayload($0) }
                return try client.call(.ingest(batch)).result(as: IngestResult.self).ids
            }
        }
        func knn(_ id: UInt64) throws -> KNNResult {
            try client.call(.knn(KNNQuery(.item(id), k: 10))).result(as: KNNResult.self)
        }
        /// Waits until the catalog holds `items` and nothing is being built (graph included).
        func settle(items: Int) throws {
            let catalog = try waitForCatalog(client) { $0.items == items && $0.building == nil }
            #expect(catalog.items == items && catalog.building == nil, "the catalog never settled at \(items) items")
        }

        // The initial version's catalog is built on an empty store; 300 items go to its tail, and
        // the first knn folds them in (300 > 100), with a graph built from scratch (300 ≥ 200).
        var ids = try ingest(0..<300)
        _ = try knn(ids[0])
        try settle(items: 300)
        #expect(try knn(ids[0]).exact == false)

        // Two more folds, each of 150 new items, each extending the graph: a burst past the tail
        // limit is folded in the background while knn answers without it (knn by one of its items
        // still puts that item first); smaller arrivals go to the tail until it passes the limit.
        for round in 0..<2 {
            var added: [UInt64] = []
            let first = 300 + round * 150
            if round == 0 {
                added = try ingest(first..<first + 150)
                #expect(try knn(added[149]).neighbours.first?.id == added[149])
            } else {
                added = try ingest(first..<first + 75)
                _ = try knn(added[0])  // 75 ≤ 100: embedded into the tail now, no fold
                added += try ingest(first + 75..<first + 150)
                _ = try knn(added[0])  // the tail passes 100: folded in
            }
            ids += added
            try settle(items: ids.count)
            for id in added.prefix(20) + ids.prefix(5) {
                let answer = try knn(id)
                #expect(!answer.exact, "round \(round): knn answered exactly after the graph was attached")
                #expect(answer.neighbours.first?.id == id, "round \(round): \(id) is not its own nearest neighbour")
                #expect(Set(answer.neighbours.map(\.id)).count == answer.neighbours.count, "an item named twice")
            }
        }
    }

    /// A backlog above `catchUpLimit` is embedded into the tail in the background: the knn that
    /// finds it answers at once (by one of its items: that item first), and the catalog holds it a
    /// moment later, without a rebuild.
    @Test func aBacklogIsEmbeddedInTheBackgroundWhileKnnAnswers() throws {
        let images = try cifarFiles(60)
        let (daemon, client) = try startDaemon {
            $0.catchUpLimit = 10
            $0.tailLimit = 100
        }
        defer { daemon.stop() }
        // The initial version's (empty) catalog first, so the items below are its backlog.
        try waitForCatalog(client) { $0.version == 1 && $0.building == nil }
        let ids = try client.call(.ingest(images.map { ImagePayload($0) })).result(as: IngestResult.self).ids
        let first = try client.call(.knn(KNNQuery(.item(ids[59]), k: 5))).result(as: KNNResult.self)
        #expect(first.neighbours.first?.id == ids[59])
        let catalog = try waitForCatalog(client) { $0.items == 60 }
        #expect(catalog.items == 60 && catalog.building == nil, "\(catalog)")
        for id in [ids[0], ids[30]] {
            let answer = try client.call(.knn(KNNQuery(.item(id), k: 5))).result(as: KNNResult.self)
            #expect(answer.neighbours.first?.id == id)
            #expect(Set(answer.neighbours.map(\.id)).count == answer.neighbours.count)
        }
    }
}
