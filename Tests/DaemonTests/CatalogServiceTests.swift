// The catalog service on its own (no daemon, no sockets): a real store of CIFAR-10 images and
// real model versions. Embed answers under a version as soon as it is served, knn once its catalog
// is built; knn reads the catalog as it is, and `keepUp` brings in the items stored since (a few
// at once, more by the tail in the background, reported by status until then); a newer version takes over only
// once its catalog is complete; and stop waits for every build.
import Foundation
import GLF
import GLFDTesting
import Neural
import Protocol
import Store
import Testing
@testable import Daemon

@Suite(.serialized) struct CatalogServiceTests {
    /// A version of a small, freshly initialised model (seeded by `seed`), published into `versions`.
    func publish(_ versions: ModelVersions, seed: UInt64) throws -> PublishedVersion {
        var config = smallTrainingConfig()
        config.seed = seed
        let trainer = Trainer(config)
        return try versions.publish(step: Int(seed), metrics: [:]) { staging in try trainer.saveModel(to: staging) }
    }

    /// Runs `body` with a service over a new state directory: a store of `items` CIFAR-10 images
    /// (or the one `makeStore` opens there), model versions keeping `keep`, the service's catalogs
    /// beside them. Afterwards the service is stopped, the store closed and the directory removed.
    func withService<T>(items: Int = 0, keep: Int = 5, settings: CatalogSettings = CatalogSettings(),
                        store makeStore: ((URL) throws -> ImageStore)? = nil,
                        _ body: (ImageStore, ModelVersions, CatalogService) throws -> T) throws -> T {
        let state = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: state) }
        let storeDirectory = state.appendingPathComponent("store")
        let store = try makeStore?(storeDirectory) ?? cifarStore(storeDirectory, count: items)
        defer { store.close() }
        let versions = try ModelVersions(directory: state.appendingPathComponent("models"), keep: keep)
        let service = try CatalogService(store: store, versions: versions, settings: settings,
                                         directory: state.appendingPathComponent("catalog"), maxReplyPayloadBytes: 4 << 20,
                                         logger: .init(label: "test"))
        defer { service.stop() }
        return try body(store, versions, service)
    }

    func onQueryQueue<T: Sendable>(_ service: CatalogService, _ body: @escaping @Sendable () -> T) -> T {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        service.query { box.value = body(); done.signal() }
        done.wait()
        return box.value!
    }

    final class Box<T>: @unchecked Sendable { var value: T? }

    /// Under a rebuild share of 10%, a new version's rebuild waits 9 times as long as the last one
    /// took: embed moves on to each version at once, the catalog stays on the one it has (complete,
    /// and saying when the next rebuild starts), and when it starts it builds the newest version,
    /// skipping those between.
    @Test func newVersionsWaitForTheRebuildShareAndTheNewestIsBuilt() throws {
        var settings = CatalogSettings()
        settings.rebuildShare = 0.1
        try withService(items: 300, settings: settings) { store, versions, service in
            func status() -> StatusResult.Catalog { service.status(newestItem: store.nextID - 1) }

            service.serve(try publish(versions, seed: 1))
            #expect(waitUntil(seconds: 120) { status().complete }, "the first catalog does not wait")
            let waitingSince = Date()
            for seed in UInt64(2)...4 { service.serve(try publish(versions, seed: seed)) }
            service.waitUntilServing()
            #expect(service.servedVersion?.version == 4, "embed answers under the newest version at once")
            // While it waits: nothing is being built, and the catalog is complete under version 1.
            var waiting: StatusResult.Catalog?
            #expect(waitUntil(seconds: 30) {
                let s = status()
                if s.nextBuildAt != nil && s.building == nil { waiting = s }
                return waiting != nil || s.version == 4
            })
            let seenWaiting = try #require(waiting, "no status showed the rebuild waiting")
            #expect(seenWaiting.version == 1 && seenWaiting.complete, "\(seenWaiting)")
            #expect(try #require(seenWaiting.nextBuildAt) > waitingSince.timeIntervalSince1970)

            var seen: Set<Int> = []
            #expect(waitUntil(seconds: 300) {
                let s = status()
                seen.insert(s.version)
                return s.version == 4 && s.complete
            })
            #expect(seen.isSubset(of: [1, 4]), "the catalog served versions \(seen.sorted()): 2 and 3 were superseded while it waited")
            #expect(status().nextBuildAt == nil)
        }
    }

    /// A rebuild builds the newest version published by the time it starts, not the one it was
    /// asked for. (It used to skip a version superseded while it waited, and with versions
    /// published faster than the queue drained every rebuild was skipped and knn stayed on one
    /// version for good.) Here version 3 is published but not yet served when version 2's rebuild
    /// starts: that rebuild builds version 3.
    @Test func aRebuildBuildsTheNewestVersionPublished() throws {
        try withService(items: 100) { store, versions, service in
            func status() -> StatusResult.Catalog { service.status(newestItem: store.nextID - 1) }
            service.serve(try publish(versions, seed: 1))
            #expect(waitUntil(seconds: 120) { status().complete })
            let second = try publish(versions, seed: 2)
            _ = try publish(versions, seed: 3)
            service.serve(second)
            #expect(waitUntil(seconds: 120) { status().version == 3 && status().complete }, "\(status())")
            // Knn answers under version 3, its query embedded by version 3's encoder (never mixed).
            let answer = try onQueryQueue(service) { service.knn(KNNQuery(.item(1), k: 3), id: nil) }.result(as: KNNResult.self)
            #expect(answer.version == 3 && answer.neighbours.first?.id == 1, "\(answer)")
        }
    }

    /// A store held at 200 items by retention, with new items folded into one version's catalog
    /// again and again: removed items stay in an HNSW graph as marked nodes, so a graph extended
    /// fold after fold grew with every item ever stored. Its catalog's memory must stay bounded.
    @Test func foldsUnderRetentionKeepTheCatalogBounded() throws {
        var settings = CatalogSettings()
        (settings.approximateMinItems, settings.tailLimit, settings.catchUpLimit) = (50, 30, 8)
        let files = try cifarFiles(1800)
        let retained = { (directory: URL) in try ImageStore(StoreConfiguration(directory: directory.path, maxItems: 200)) }
        try withService(keep: 3, settings: settings, store: retained) { store, versions, service in
            let decoder = IngestDecoder(canonical: store.configuration.canonical)
            _ = try store.ingestAndWait(try files[0..<200].map { try decoder.item(encoded: $0) })
            func settled() -> Bool { let s = service.status(newestItem: store.nextID - 1); return s.complete }
            service.serve(try publish(versions, seed: 1))
            #expect(waitUntil(seconds: 120) { settled() })
            var bytes: [Int] = []
            for round in 0..<40 {
                let start = 200 + round * 40
                _ = try store.ingestAndWait(try files[start..<start + 40].map { try decoder.item(encoded: $0) })
                _ = onQueryQueue(service) { service.keepUp() }     // past the tail limit: a fold
                #expect(waitUntil(seconds: 120) { settled() }, "round \(round)")
                bytes.append(service.memory.served)
            }
            #expect(store.statistics.items == 200)
            // The graph is extended until its nodes outnumber the items twice, then built anew: the
            // bytes rise and fall in cycles of a few folds (measured: 7). Without the new graphs they
            // rose with the nodes, by steps as the graph's buffers double (measured: 98 KB to 203 KB
            // over 15 folds; 40 folds reach the next doubling).
            let (early, late) = (bytes.prefix(8).max()!, bytes.suffix(5).max()!)
            #expect(Double(late) <= 1.25 * Double(early), "the catalog grew from \(early) to \(late) bytes: \(bytes)")
        }
    }

    @Test func servesVersionsKeepsUpWithTheStoreAndSwapsOnlyWhenBuilt() throws {
        var settings = CatalogSettings()
        settings.catchUpLimit = 8
        settings.tailLimit = 64
        try withService(items: 200, keep: 3, settings: settings) { store, versions, service in
            let image = ImagePayload(try cifarFiles(1)[0])

            // Nothing served yet: typed not_ready, never a crash.
            #expect(onQueryQueue(service) { service.knn(KNNQuery(.item(1), k: 3), id: nil) }.outcome.failureCode == .notReady)
            let first = try publish(versions, seed: 1)
            let heard = Box<Int>()
            service.serve(first) { heard.value = $0.version }
            service.waitUntilServing()
            #expect(service.servedVersion?.version == 1 && heard.value == 1)
            let embedded = onQueryQueue(service) { service.embed([image], id: nil) }
            #expect(try embedded.result(as: EmbedResult.self).version == 1)

            #expect(waitUntil(seconds: 120) { service.status(newestItem: store.nextID - 1).complete })
            #expect(service.status(newestItem: store.nextID - 1).items == 200)
            let byItem = try onQueryQueue(service) { service.knn(KNNQuery(.item(5), k: 3), id: nil) }.result(as: KNNResult.self)
            #expect(byItem.version == 1 && byItem.neighbours.first?.id == 5)

            // A few new items are embedded by the knn that meets them; more go to the tail meanwhile.
            let decoder = IngestDecoder(canonical: store.configuration.canonical)
            let files = try cifarFiles(240)
            _ = try store.ingestAndWait(try files[200..<205].map { try decoder.item(encoded: $0) })
            let before = try onQueryQueue(service) { service.knn(KNNQuery(.item(203), k: 3), id: nil) }.result(as: KNNResult.self)
            #expect(before.neighbours.first?.id == 203 && service.status(newestItem: store.nextID - 1).items == 200,
                    "knn reads the catalog as it is")
            let withNew = try onQueryQueue(service) { () -> Reply in
                #expect(service.keepUp() == nil)
                return service.knn(KNNQuery(.item(203), k: 1), id: nil)
            }.result(as: KNNResult.self)
            #expect(withNew.neighbours.first?.id == 203)
            #expect(service.status(newestItem: store.nextID - 1).items == 205)
            _ = try store.ingestAndWait(try files[205..<240].map { try decoder.item(encoded: $0) })
            _ = onQueryQueue(service) { service.keepUp() }
            #expect(waitUntil(seconds: 120) { service.status(newestItem: store.nextID - 1).items == 240 })

            // A newer version: embed moves at once, knn once its catalog is built, and never back.
            let second = try publish(versions, seed: 2)
            service.serve(second)
            service.waitUntilServing()
            #expect(try onQueryQueue(service) { service.embed([image], id: nil) }.result(as: EmbedResult.self).version == 2)
            #expect(waitUntil(seconds: 120) {
                (try? onQueryQueue(service) { service.knn(KNNQuery(.item(7), k: 2), id: nil) }.result(as: KNNResult.self).version) == 2
            })
            let status = service.status(newestItem: store.nextID - 1)
            #expect(status.version == 2 && status.items == 240)
        }
    }
}

extension Result where Failure == ProtocolError {
    var failureCode: ErrorCode? { if case .failure(let error) = self { error.code } else { nil } }
}
