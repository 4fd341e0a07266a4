// A trainer and a serve-only replica fed by the same JetStream stream on a three-node cluster
// (issue 16): both hold every acknowledged image exactly once, the replica even after every
// message it had was delivered to it again (its consumer deleted mid-stream and made anew); the
// replica installs the trainer's versions (fetched in chunks, checked, under the trainer's
// numbers) and serves each only once its own catalog of it is built; then, under one version,
// both give the same embeddings and the same exact neighbours. The replica trains nothing: it
// builds no trainer, and its own training settings do not matter.
import Daemon
import Foundation
import GLFDClient
import GLFDTesting
import NATS
import Protocol
import Store
import Testing
import ZeroMQ

@Suite(.serialized) struct ReplicaTests {
    @Test func aReplicaServesTheTrainersVersionsFromItsOwnCompleteCatalogs() throws {
        let nats = try NATSCluster(nodes: 3)
        let images = 2_000
        let trainerState = temporaryDaemonDirectory("trainer"), replicaState = temporaryDaemonDirectory("replica")
        defer {
            try? FileManager.default.removeItem(at: trainerState)
            try? FileManager.default.removeItem(at: replicaState)
        }
        var trainerSettings = testDaemonSettings(trainerState)
        trainerSettings.training = smallLearningConfig()
        trainerSettings.jetStream.servers = nats.urls
        trainerSettings.jetStream.consumer = "trainer"
        trainerSettings.jetStream.replicas = 3  // the trainer creates the stream, once the cluster has a leader
        trainerSettings.trainer.publishEverySteps = 8
        let trainer = try GLFDaemon(settings: trainerSettings)
        trainer.start()
        defer { trainer.stop() }

        var replicaSettings = testDaemonSettings(replicaState)
        replicaSettings.training = smallLearningConfig()
        // A replica's own training settings play no part: another method here.
        replicaSettings.training.method = .byol
        replicaSettings.trainingEnabled = false
        replicaSettings.jetStream.servers = nats.urls
        replicaSettings.jetStream.consumer = "replica"
        replicaSettings.replica.follow = trainer.server.boundEndpoints.requests
        replicaSettings.replica.pollSeconds = 0.2
        // Optional, so that the first replica is gone before the second opens its LMDB environment.
        var replica: GLFDaemon! = try GLFDaemon(settings: replicaSettings)
        replica.start()
        defer { replica?.stop() }

        let js = try NATSConnection(servers: nats.urls).jetStream()
        #expect(waitUntil(seconds: 60) { trainer.jetStream!.status.connected && replica.jetStream!.status.connected })
        let jpegs = try cifarFiles(images)
        var sequences: [UInt64] = []
        // While the stream arrives, the replica never serves a version ahead of its catalog (status
        // reads the served version before the catalog's, and a replica updates them the other way).
        var mixed: [String] = []
        var storedBeforeRedelivery = 0
        for (index, jpeg) in jpegs.enumerated() {
            sequences.append(try js.publish(subject: "glfd.ingest.cam\(index % 2)", payload: jpeg, messageID: "\(index)").sequence)
            if index % 20 == 0 {
                let s = replica.status()
                if s.model.version > s.catalog.version { mixed.append("model \(s.model.version), catalog \(s.catalog.version)") }
            }
            if index == images / 2 {
                // Forced redeliveries: the replica stops, its consumer and all its progress are
                // deleted, and a new consumer of the same name reads the stream from the start.
                #expect(waitUntil(seconds: 60) { replica.jetStream!.status.pending == 0 })
                replica.stop()
                storedBeforeRedelivery = replica.store.statistics.items
                replica = nil
                try js.deleteConsumer(stream: "GLFD", consumer: "replica")
                replica = try GLFDaemon(settings: replicaSettings)
                replica.start()
            }
        }
        for daemon: GLFDaemon in [trainer, replica!] {
            #expect(waitUntil(seconds: 120) { daemon.jetStream!.status.pending == 0 && daemon.store.statistics.items == images },
                    "\(String(describing: daemon.jetStream?.status))")
            #expect(daemon.store.statistics.items == images)
            #expect(Set(try daemon.store.ids(forKeys: sequences).compactMap { $0 }).count == images)
        }
        #expect(storedBeforeRedelivery > 0 && replica.jetStream!.status.duplicates == storedBeforeRedelivery,
                "\(storedBeforeRedelivery) stored before the consumer was deleted; \(replica.jetStream!.status)")
        // Training spends its update budget and publishes its last steps; the replica catches up.
        let budget = Int(Double(images) * trainerSettings.trainer.updatesPerImage) / trainerSettings.training.batch
        #expect(waitUntil(seconds: 300) {
            let s = replica.status()
            if s.model.version > s.catalog.version { mixed.append("model \(s.model.version), catalog \(s.catalog.version)") }
            guard let last = trainer.versions.latest, last.step >= budget else { return false }
            return s.model.version == last.version && s.catalog.complete
        }, "trainer at version \(trainer.versions.latest?.version ?? 0), step \(trainer.versions.latest?.step ?? 0) of \(budget); replica serving \(replica.status().model.version)")
        #expect(mixed.isEmpty, "the replica served a version before its catalog: \(mixed.prefix(5))")
        let served = replica.status().model.version
        #expect(replica.status().role == "replica" && trainer.status().role == "trainer")
        #expect(replica.trainer == nil && replica.status().training.step == 0)
        #expect(served >= 2 && replica.status().replica?.installedVersion == served)
        #expect(waitUntil(seconds: 120) { trainer.status().catalog.version == served && trainer.status().catalog.complete })

        // Under one version, the same answers.
        let queries = try cifarFiles(images + 20).suffix(20).map { ImagePayload($0) }
        let context = try ZMQContext()
        let fromTrainer = try GLFDClient(endpoint: trainer.server.boundEndpoints.requests, context: context)
        let fromReplica = try GLFDClient(endpoint: replica.server.boundEndpoints.requests, context: context)
        let a = try fromTrainer.call(.embed(queries)), b = try fromReplica.call(.embed(queries))
        let (ea, eb) = (try a.result(as: EmbedResult.self), try b.result(as: EmbedResult.self))
        #expect(ea.version == served && eb.version == served && ea.dim == eb.dim)
        let va = a.payloads.flatMap { VectorFrame.decode($0, dimension: ea.dim) ?? [] }
        let vb = b.payloads.flatMap { VectorFrame.decode($0, dimension: eb.dim) ?? [] }
        #expect(va.count == 20 * ea.dim && vb.count == va.count)
        #expect(zip(va, vb).map { abs($0 - $1) }.max() ?? 1 < 1e-5)
        for query in queries.prefix(5) {
            let ka = try fromTrainer.result(.knn(KNNQuery(.image(query), k: 10, exact: true)), as: KNNResult.self)
            let kb = try fromReplica.result(.knn(KNNQuery(.image(query), k: 10, exact: true)), as: KNNResult.self)
            #expect(ka.version == served && kb.version == served)
            // Ids are each daemon's own (commit order); the scores of the ten nearest are the model's.
            #expect(zip(ka.neighbours, kb.neighbours).allSatisfy { abs($0.score - $1.score) < 1e-5 }, "\(ka.neighbours) vs \(kb.neighbours)")
        }

        // One client over both: its DEALER sends requests to them in turn.
        let both = try GLFDClient(endpoint: "\(trainer.server.boundEndpoints.requests),\(replica.server.boundEndpoints.requests)",
                                  context: context)
        let answeredByReplica = try (0..<10).map { _ in try both.result(.status, as: StatusResult.self).replica != nil }
        #expect(answeredByReplica.filter { $0 }.count == 5, "\(answeredByReplica)")
    }
}
