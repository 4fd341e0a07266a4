// The catalog across stops and restarts, on a real store of 20,000 items: embed answers as soon as a
// version is loaded, long before its catalog is built; a stop cancels a build under way (nothing
// reads the store after it closes); a built catalog is saved, so a restart answers knn without
// re-embedding, and items deleted meanwhile leave it at the next start.
import Daemon
import Foundation
import GLFDClient
import GLFDTesting
import Index
import Protocol
import Store
import Testing
import ZeroMQ

@Suite(.serialized) struct CatalogLifecycleTests {
    static let itemCount = 20_000

    /// 20,000 stored items: 64 real CIFAR-10 JPEGs decoded once, stored over and over.
    func filledState() throws -> URL {
        let state = temporaryDaemonDirectory()
        let settings = testDaemonSettings(state)
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let store = try ImageStore(settings.store)
        let decoder = IngestDecoder(canonical: store.configuration.canonical)
        let items = try cifarFiles(64).map { try decoder.item(encoded: $0, source: "cifar") }
        for _ in 0..<(Self.itemCount / 1000) {
            _ = try store.ingestAndWait((0..<1000).map { items[$0 % items.count] })
        }
        store.close()
        return state
    }

    func daemon(_ state: URL) throws -> GLFDaemon {
        var settings = testDaemonSettings(state)
        settings.trainingEnabled = false
        return try GLFDaemon(settings: settings)
    }

    /// Polls status until the catalog of `version` is built.
    func waitForCatalog(_ client: GLFDClient, version: Int) throws -> StatusResult.Catalog {
        for _ in 0..<6000 {
            let catalog = try client.call(.status).result(as: StatusResult.self).catalog
            if catalog.version == version && catalog.building == nil { return catalog }
            usleep(50_000)
        }
        throw CatalogNeverBuilt()
    }
    struct CatalogNeverBuilt: Error {}

    func modificationDate(_ file: URL) throws -> Date {
        try #require(try FileManager.default.attributesOfItem(atPath: file.path)[.modificationDate] as? Date)
    }

    @Test func embedIsReadyAtOnceAStopCancelsTheBuildAndARestartReusesTheSavedCatalog() throws {
        let state = try filledState()
        let context = try ZMQContext()
        let saved = state.appendingPathComponent("catalog/000001.index")

        // Without training the initial version is still published, and embed answers under it
        // at once; the stop that follows cancels the catalog build, which saves nothing.
        do {
            let daemon = try daemon(state)
            daemon.start()
            let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests, context: context)
            let image = try cifarFiles(1)[0]
            let embedded = try client.call(.embed([ImagePayload(image)])).result(as: EmbedResult.self)
            #expect(embedded.version == 1)
            let status = try client.call(.status).result(as: StatusResult.self)
            #expect(status.model.version == 1)
            #expect(status.catalog.version == 0, "20,000 items cannot be embedded this fast: \(status.catalog)")
            daemon.stop()
            #expect(!FileManager.default.fileExists(atPath: saved.path), "the build ran to the end after stop()")
        }

        // A full build: every item, saved; knn by an item finds it.
        do {
            let daemon = try daemon(state)
            daemon.start()
            let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests, context: context)
            #expect(try waitForCatalog(client, version: 1).items == Self.itemCount)
            #expect(try ExactIndex(contentsOf: saved).count == Self.itemCount)
            let knn = try client.call(.knn(KNNQuery(.item(777), k: 3, exact: true))).result(as: KNNResult.self)
            // Item 777 has exact duplicates with lower ids (the 64 images repeat): it comes first all the same.
            #expect(knn.version == 1 && knn.neighbours.first == Protocol.Neighbour(id: 777, score: 1), "\(knn.neighbours)")
            #expect(try client.call(.delete(ids: [1, 2, 3])).result(as: DeleteResult.self).deleted == [1, 2, 3])
            daemon.stop()
        }

        // Restarted: the saved catalog minus the deleted items, saved again.
        do {
            let daemon = try daemon(state)
            daemon.start()
            let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests, context: context)
            #expect(try waitForCatalog(client, version: 1).items == Self.itemCount - 3)
            #expect(try ExactIndex(contentsOf: saved).ids.prefix(2) == [4, 5])
            daemon.stop()
        }

        // Restarted with nothing changed: the saved catalog is used as it is, not re-embedded.
        let before = try modificationDate(saved)
        let daemon = try daemon(state)
        daemon.start()
        let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests, context: context)
        #expect(try waitForCatalog(client, version: 1).items == Self.itemCount - 3)
        let knn = try client.call(.knn(KNNQuery(.item(777), k: 3, exact: true))).result(as: KNNResult.self)
        #expect(knn.version == 1 && knn.neighbours.first == Protocol.Neighbour(id: 777, score: 1), "\(knn.neighbours)")
        #expect(try modificationDate(saved) == before)
        daemon.stop()
    }

    /// A restart whose latest version has no saved catalog (the process stopped while it was
    /// built, or versions came faster than catalogs) answers knn at once from the newest saved one,
    /// under that one's version, while the latest version's is built; and the version a served
    /// catalog belongs to is kept on disk beyond `keep` until a newer catalog takes over.
    @Test func aRestartAnswersFromTheNewestSavedCatalogWhileTheLatestIsBuilt() throws {
        let state = try filledState()
        let context = try ZMQContext()
        var settings = testDaemonSettings(state)
        settings.trainingEnabled = false
        settings.catalog.approximate = false
        var daemon = try GLFDaemon(settings: settings)
        daemon.start()
        var client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests, context: context)
        #expect(try waitForCatalog(client, version: 1).items == Self.itemCount)
        daemon.stop()

        // Versions 2 and 3 published while the daemon was down (the weights of version 1 again); the
        // restart keeps 1 version, and version 1 besides while its catalog is the one served.
        let versions = try ModelVersions(directory: settings.modelsDirectory, keep: 5)
        for step in [1, 2] {
            try versions.publish(step: step, metrics: [:]) { directory in
                for file in try FileManager.default.contentsOfDirectory(atPath: versions.all[0].path) where file != ModelVersions.statsFileName {
                    try FileManager.default.copyItem(atPath: versions.all[0].path + "/" + file, toPath: directory.appendingPathComponent(file).path)
                }
            }
        }
        settings.keepVersions = 1
        daemon = try GLFDaemon(settings: settings)
        daemon.start()
        client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests, context: context)
        var first: KNNResult?
        for _ in 0..<3000 where first == nil {
            first = try? client.call(.knn(KNNQuery(.item(777), k: 1, exact: true))).result(as: KNNResult.self)
            if first == nil { usleep(10_000) }
        }
        #expect(first?.version == 1, "the first answer after the restart: \(String(describing: first))")
        #expect(try waitForCatalog(client, version: 3).items == Self.itemCount)
        // Version 3's catalog took over: version 1 and its saved catalog may go now, version 3's is saved.
        #expect(daemon.versions.all.map(\.version) == [3])
        let saved = try FileManager.default.contentsOfDirectory(atPath: state.appendingPathComponent("catalog").path).filter { $0.hasSuffix(".index") }
        #expect(saved == ["000003.index"], "\(saved)")
        daemon.stop()
    }
}
