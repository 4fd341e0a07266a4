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

    func onQueryQueue<T: Sendable>(_ service: CatalogService, _ body: @escaping @Sendable () -> T) -> T {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        service.query { box.value = body(); done.signal() }
        done.wait()
        return box.value!
    }

    final class Box<T>: @unchecked Sendable { var value: T? }

    @Test func servesVersionsKeepsUpWithTheStoreAndSwapsOnlyWhenBuilt() throws {
        let state = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: state) }
        let store = try cifarStore(state.appendingPathComponent("store"), count: 200)
        defer { store.close() }
        let versions = try ModelVersions(directory: state.appendingPathComponent("models"), keep: 3)
        var settings = CatalogSettings()
        settings.catchUpLimit = 8
        settings.tailLimit = 64
        let service = try CatalogService(store: store, versions: versions, settings: settings,
                                         directory: state.appendingPathComponent("catalog"), maxReplyPayloadBytes: 4 << 20,
                                         logger: .init(label: "test"))
        defer { service.stop() }
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

extension Result where Failure == ProtocolError {
    var failureCode: ErrorCode? { if case .failure(let error) = self { error.code } else { nil } }
}
