// MinRed in the running daemon: the replay set is seen through the catalog, so when the set is
// full, copies of one image leave before any distinct image does. The store holds 100 distinct
// CIFAR-10 images, 10 of which are then ingested 5 more times each (150 members, the capacity): 10
// groups of 6 identical images. 40 more distinct images must evict 40 of those 60 copies, each
// group keeping at least one, where fifo would evict the oldest 40 items.
import Daemon
import Foundation
import GLFDClient
import GLFDTesting
import Neural
import Protocol
import Store
import Testing
import ZeroMQ

@Suite(.serialized) struct MinRedReplayTests {
    @Test func theDaemonEvictsCopiesBeforeDistinctImages() throws {
        let state = temporaryDaemonDirectory()
        var settings = testDaemonSettings(state)
        settings.trainingEnabled = false
        settings.store.replay = ReplayConfiguration(policy: .minred, capacity: 150)
        let images = try cifarFiles(140)
        let context = try ZMQContext()
        var distinct: [UInt64] = [], groups: [[UInt64]] = []
        do {
            let daemon = try GLFDaemon(settings: settings)
            daemon.start()
            defer { daemon.stop() }
            let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests, context: context)
            func ingest(_ files: [[UInt8]]) throws -> [UInt64] {
                try client.call(.ingest(files.map { ImagePayload($0) })).result(as: IngestResult.self).ids
            }
            let first = try ingest(Array(images[0..<100]))
            distinct = Array(first[10...])
            groups = first[0..<10].map { [$0] }
            for _ in 0..<5 {
                for (group, id) in try ingest(Array(images[0..<10])).enumerated() { groups[group].append(id) }
            }

            // Each arrival of unseen members has the catalog fold them in and the replay set
            // handed over again; once ingest stops, all 150 are seen.
            func waitUntilAllSeen() throws -> StatusResult.Store {
                var store = try client.call(.status).result(as: StatusResult.self).store
                for _ in 0..<2400 where store.replayEmbedded < store.replayMembers {
                    usleep(50_000)
                    store = try client.call(.status).result(as: StatusResult.self).store
                }
                return store
            }
            let full = try waitUntilAllSeen()
            #expect(full.replayPolicy == "minred")
            #expect(full.replayMembers == 150 && full.replayEmbedded == 150, "\(full)")
            distinct += try ingest(Array(images[100..<140]))
            let after = try waitUntilAllSeen()
            #expect(after.replayMembers == 150 && after.replayEmbedded == 150, "the last arrivals were never seen: \(after)")
        }
        // The replay set as committed: read it back from the store.
        let store = try ImageStore(settings.store)
        defer { store.close() }
        var rng = SeededGenerator(seed: 5)
        let members = Set(store.sampleReplay(60_000, using: &rng))
        #expect(members.count == 150)
        #expect(members.isSuperset(of: distinct), "distinct images evicted: \(Set(distinct).subtracting(members).sorted())")
        #expect(members.intersection(groups.flatMap { $0 }).count == 20)
        for group in groups { #expect(!members.isDisjoint(with: group), "every copy of one image was evicted: \(group)") }
    }
}
