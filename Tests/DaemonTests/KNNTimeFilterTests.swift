// knn's time filters (issue 17) on a running daemon: 300 CIFAR-10 images stored in four batches
// (100, 100, 98, 2) a moment apart, then served from a catalog with its approximate index (index.approximate_min_items
// lowered to 100). ingested_after / ingested_before keep exactly the items stored in between, by
// the approximate index when a third of the items match, and by exact search, said in the reply,
// when two do; the item itself leaves its own answer when the filter excludes it.
import Daemon
import Foundation
import GLFDClient
import GLFDTesting
import Protocol
import Testing

@Suite(.serialized) struct KNNTimeFilterTests {
    @Test func timeFiltersKeepTheItemsStoredInBetween() throws {
        let state = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: state) }
        var settings = testDaemonSettings(state)
        settings.trainingEnabled = false
        settings.catalog.approximateMinItems = 100
        let files = try cifarFiles(300)
        var batches: [[UInt64]] = []
        do {
            let daemon = try GLFDaemon(settings: settings)
            daemon.start()
            defer { daemon.stop() }
            let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests)
            for range in [0..<100, 100..<200, 200..<298, 298..<300] {
                batches.append(try client.result(.ingest(files[range].map { ImagePayload($0) }), as: IngestResult.self).ids)
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        // Restarted: the catalog is built from the store, with its graph.
        let daemon = try GLFDaemon(settings: settings)
        daemon.start()
        defer { daemon.stop() }
        let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests)
        func time(_ id: UInt64) throws -> Double {
            try #require(try client.result(.get(ids: [id], pixels: false), as: GetResult.self).items[0]).ingestedAt
        }
        let (endOfFirst, startOfThird) = (try time(batches[0][99]), try time(batches[2][0]))
        let middle = Set(batches[1])
        func knn(_ item: UInt64, after: Double?, before: Double?, exact: Bool = false) throws -> KNNResult {
            try client.result(.knn(KNNQuery(.item(item), k: 20, exact: exact, ingestedAfter: after, ingestedBefore: before)),
                              as: KNNResult.self)
        }
        #expect(waitUntil(seconds: 60) { (try? knn(batches[1][0], after: nil, before: nil))?.exact == false },
                "the approximate index answers unfiltered queries")

        // A third of the items: the graph, with only the middle batch in the answers.
        let approximate = try knn(batches[0][0], after: endOfFirst, before: startOfThird)
        #expect(!approximate.exact && approximate.neighbours.count == 20)
        #expect(approximate.neighbours.allSatisfy { middle.contains($0.id) }, "\(approximate.neighbours)")
        let exactly = try knn(batches[0][0], after: endOfFirst, before: startOfThird, exact: true)
        #expect(exactly.exact && exactly.neighbours.allSatisfy { middle.contains($0.id) })
        // The item itself is in the middle batch: it comes first; outside the filter it does not come at all.
        #expect(try knn(batches[1][5], after: endOfFirst, before: nil).neighbours.first?.id == batches[1][5])
        #expect(try !knn(batches[2][5], after: nil, before: startOfThird).neighbours.contains { $0.id == batches[2][5] })

        // The last two items (under 20% of the catalog): exact search, and the reply says so.
        let narrow = try knn(batches[0][0], after: try time(batches[2][97]), before: nil)
        #expect(narrow.exact && narrow.neighbours.map(\.id).sorted() == batches[3], "\(narrow)")
        // An empty window: no neighbours, no error.
        #expect(try knn(batches[0][0], after: startOfThird + 3600, before: nil).neighbours.isEmpty)
    }
}
