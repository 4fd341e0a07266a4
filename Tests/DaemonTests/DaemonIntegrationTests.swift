// glfd in this process, on real loopback sockets, with a real store of real CIFAR-10 JPEGs and a
// real (small) model training: ingest, training advances, a version is published and announced,
// knn of a stored image returns it first, embedding is stable within a version, garbage gets typed
// errors while others are served, and a restart keeps every acknowledged item and the model.
import Daemon
import Foundation
import GLF
import GLFDClient
import GLFDTesting
import Protocol
import Store
import Testing
import ZeroMQ

@Suite(.serialized) struct DaemonIntegrationTests {
    @Test func ingestTrainPublishQueryRestart() throws {
        let state = temporaryDaemonDirectory()
        let images = try cifarFiles(64)
        let context = try ZMQContext()
        var acknowledged: [UInt64] = []
        var versionBeforeRestart = 0
        do {
            let daemon = try GLFDaemon(settings: testDaemonSettings(state))
            daemon.start()
            let (requests, announcements) = daemon.server.boundEndpoints
            let subscriber = try ZMQSocket(context: context, type: .sub)
            try subscriber.subscribe(Array("model".utf8))
            try subscriber.set(.receiveTimeout, to: 600_000)
            try subscriber.connect(announcements)
            let client = try GLFDClient(endpoint: requests, context: context)

            for start in stride(from: 0, to: 64, by: 16) {
                let batch = images[start..<start + 16].map { ImagePayload($0, ImageDescriptor(source: start < 32 ? "a" : "b", meta: "file \(start)")) }
                acknowledged += try client.call(.ingest(batch)).result(as: IngestResult.self).ids
            }
            #expect(acknowledged == Array(1...64))

            // Training advances to its budget (64 × 2 / 16 = 8 steps) and publishes versions 2 and 3
            // (steps 4 and 8) after the initial one; the subscriber hears them.
            var heard: [Announcement] = []
            while heard.last?.step != 8 {
                heard.append(try Announcement.decode(try subscriber.receive()))
            }
            #expect(heard.last?.version == 3)
            let status = try client.call(.status).result(as: StatusResult.self)
            #expect(status.training.step == 8)
            #expect(status.store.items == 64)
            #expect(status.training.loss["total"].map(\.isFinite) == true)
            versionBeforeRestart = try client.call(.model).result(as: ModelResult.self).version
            #expect(versionBeforeRestart == 3)
            #expect(try client.call(.lastAnnouncement).result(as: LastAnnouncementResult.self).announcement == heard.last)

            // Queries run on the catalog of the newest version once it is built.
            var knn: KNNResult?
            for _ in 0..<200 {
                let reply = try client.call(.knn(KNNQuery(.image(ImagePayload(images[5])), k: 3, exact: true)))
                if let result = try? reply.result(as: KNNResult.self), result.version == 3 { knn = result; break }
                usleep(50_000)
            }
            let result = try #require(knn)
            #expect(result.neighbours.first?.id == 6, "\(result.neighbours)")
            #expect(abs((result.neighbours.first?.score ?? 0) - 1) < 1e-4)
            let byItem = try client.call(.knn(KNNQuery(.item(6), k: 5, source: "a"))).result(as: KNNResult.self)
            #expect(byItem.neighbours.first?.id == 6)
            #expect(byItem.neighbours.allSatisfy { $0.id <= 32 }, "source a holds ids 1–32: \(byItem.neighbours)")

            let first = try client.call(.embed([ImagePayload(images[9])]))
            let second = try client.call(.embed([ImagePayload(images[9])]))
            let dim = try first.result(as: EmbedResult.self).dim
            #expect(try first.result(as: EmbedResult.self).version == second.result(as: EmbedResult.self).version)
            #expect(VectorFrame.decode(first.payloads[0], dimension: dim) == VectorFrame.decode(second.payloads[0], dimension: dim))

            // By vector: the stored vector of item 6 finds item 6; export pages hold every item once.
            var exported: [UInt64] = [], vectors: [Float] = [], after: UInt64 = 0
            while true {
                let reply = try client.call(.export(after: after, limit: 25))
                let page = try reply.result(as: ExportResult.self)
                #expect(page.version == 3 && page.dim == dim)
                exported += page.ids
                vectors += VectorFrame.decode(reply.payloads[0], dimension: page.ids.count * dim) ?? []
                guard let next = page.nextAfter else { break }
                after = next
            }
            #expect(exported == Array(1...64))
            let sixth = Array(vectors[5 * dim..<6 * dim])
            let byVector = try client.call(.knn(KNNQuery(.vector(sixth), k: 1, exact: true))).result(as: KNNResult.self)
            #expect(byVector.neighbours.first?.id == 6)

            // Deleted items leave the answers at once, and knn by a deleted item is not_found.
            #expect(try client.call(.delete(ids: [6, 1000])).result(as: DeleteResult.self).deleted == [6])
            let afterDelete = try client.call(.knn(KNNQuery(.vector(sixth), k: 3, exact: true))).result(as: KNNResult.self)
            #expect(!afterDelete.neighbours.contains { $0.id == 6 })
            if case .failure(let error) = try client.call(.knn(KNNQuery(.item(6), k: 3))).outcome {
                #expect(error.code == .notFound)
            } else {
                Issue.record("knn by a deleted item succeeded")
            }

            // Garbage from another client: typed errors, and the first client is still served.
            let rogue = try ZMQSocket(context: context, type: .dealer)
            try rogue.set(.receiveTimeout, to: 10_000)
            try rogue.connect(requests)
            for garbage: [[UInt8]] in [[Array("hello".utf8)], [Array("glfd/1".utf8), Array("{not json".utf8)],
                                       [Array("glfd/1".utf8), Array("{\"cmd\":\"ingest\",\"images\":[{}]}".utf8), Array("no image".utf8)]] {
                try rogue.send(garbage)
                let reply = try Reply.decode(try rogue.receive())
                guard case .failure(let error) = reply.outcome else {
                    Issue.record("garbage \(garbage) was accepted")
                    continue
                }
                #expect([.unsupportedVersion, .badHeader, .badFrames, .badImage].contains(error.code), "\(error)")
            }
            #expect(try client.call(.get(ids: [1, 999], pixels: false)).result(as: GetResult.self).items.map { $0?.meta } == ["file 0", nil])
            daemon.stop()
        }

        // Restart on the same state: every acknowledged item is there, the model resumes.
        let daemon = try GLFDaemon(settings: testDaemonSettings(state))
        daemon.start()
        let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests, context: context)
        let items = try client.call(.get(ids: acknowledged, pixels: false)).result(as: GetResult.self).items
        #expect(items.compactMap { $0?.id } == acknowledged.filter { $0 != 6 })
        #expect(try client.call(.model).result(as: ModelResult.self).version == versionBeforeRestart)
        #expect(try client.call(.status).result(as: StatusResult.self).training.step == 8)
        daemon.stop()
    }
}
