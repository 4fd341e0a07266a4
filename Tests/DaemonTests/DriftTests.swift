// Drift (status's `drift`, DriftMonitor.swift): new items like the replay set score low, new kinds
// of items score high, on a real daemon with real CIFAR-10 images and a small model trained on the
// replay set first (untrained, its embeddings all lie within 0.001 of each other, and no distance
// means anything), then served with training off, so that no new version resets the reference
// halfway; and alerts go out on the PUB socket as the score crosses the level.
import Daemon
import Datasets
import Foundation
import GLFDClient
import GLFDTesting
import Protocol
import Testing
import ZeroMQ

@Suite(.serialized) struct DriftTests {
    @Test func driftRisesWhenItemsOfUnseenClassesArrive() throws {
        let state = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: state) }
        var settings = testDaemonSettings(state)
        let collection = try cifarCollection(perClass: 50)
        // Seen: vehicles (airplane 0, automobile 1, ship 8, truck 9); unseen: animals.
        let vehicles: Set = [0, 1, 8, 9]
        let seen = collection.labels.indices.filter { vehicles.contains(collection.labels[$0]) }
        let unseen = collection.labels.indices.filter { !vehicles.contains(collection.labels[$0]) }
        let stored = Array(seen.prefix(160)), heldOut = Array(seen.dropFirst(160).prefix(40))
        func payloads(_ indices: [Int], jitter: FrameJitter = .none) -> [ImagePayload] {
            let size = collection.bytesPerImage
            return indices.map { index in
                ImagePayload(jitter.apply(collection.pixels[index * size ..< (index + 1) * size], height: 32, width: 32, channels: 3),
                             ImageDescriptor(format: .raw, width: 32, height: 32, channels: 3))
            }
        }
        @discardableResult
        func ingest(_ images: [ImagePayload]) throws -> UInt64 {
            try client.result(.ingest(images), as: IngestResult.self).ids.last!
        }
        /// Status's drift once it has measured every arrival through `id`.
        func measured(through id: UInt64) -> StatusResult.Drift? {
            var drift: StatusResult.Drift?
            _ = waitUntil(seconds: 60) {
                drift = try? client.result(.status, as: StatusResult.self).drift
                return (drift?.checkedThrough ?? 0) >= id
            }
            return drift
        }

        // The replay set: 160 vehicles, which the small SimCLR model trains on (20 updates per
        // image: 100 steps of 32) until it publishes its last version.
        settings.training = smallLearningConfig()
        settings.trainer.updatesPerImage = 20
        settings.trainer.publishEverySteps = 1_000_000
        do {
            let daemon = try GLFDaemon(settings: settings)
            daemon.start()
            defer { daemon.stop() }
            let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests)
            _ = try client.result(.ingest(payloads(stored)), as: IngestResult.self)
            let trained = waitUntil(seconds: 180) {
                guard let s = try? client.result(.status, as: StatusResult.self) else { return false }
                return s.training.step >= 100 && s.model.step == s.training.step
            }
            let s = try client.result(.status, as: StatusResult.self)
            #expect(trained, "step \(s.training.step), version \(s.model.version) at step \(s.model.step), rolled back \(s.training.rolledBack), members \(s.store.replayMembers)")
        }
        // Restarted with training off: the last version is served, and the catalog built for it
        // makes its replay members the reference; no new version resets it from here on. The
        // window is one batch of arrivals, and the alert level lies between what the batches
        // below scored when this was written (0.84, 0.84, 1.37, 0.84).
        settings.trainingEnabled = false
        settings.catalog.drift.window = 40
        settings.catalog.drift.alertScore = 1.2
        let daemon = try GLFDaemon(settings: settings)
        daemon.start()
        defer { daemon.stop() }
        let endpoints = daemon.server.boundEndpoints
        let client = try GLFDClient(endpoint: endpoints.requests)
        let alerts = try ZMQSocket(context: try ZMQContext(), type: .sub)
        try alerts.subscribe(Array(GLFDProtocol.driftTopic.utf8))
        try alerts.set(.receiveTimeout, to: 30_000)
        try alerts.connect(endpoints.announcements)
        #expect(waitUntil(seconds: 120) { (try? client.result(.status, as: StatusResult.self).drift?.referenceMembers) == 160 })

        // Arrivals, 40 at a time (each check measures up to 64 of the newest): near-duplicates of
        // stored vehicles (a camera's next frames), new vehicles, animals, and near-duplicates again.
        let nearDuplicates = payloads(Array(stored.prefix(40)), jitter: FrameJitter(dx: 2, dy: -1, brightness: 1.1))
        var scores: [Double] = []
        for images in [nearDuplicates, payloads(heldOut), payloads(Array(unseen.prefix(40))), nearDuplicates] {
            let drift = try #require(measured(through: try ingest(images)))
            #expect(drift.arrivals == 40, "every arrival of the batch is measured, and only those")
            let distance = try #require(drift.arrivalDistance), score = try #require(drift.score)
            #expect(abs(score - distance / drift.replaySpacing) < 1e-9)
            scores.append(score)
        }
        // Distances are to the 10th nearest member: near-duplicates of stored vehicles lie as new
        // vehicles do (a copy is not drift), the animals beyond both.
        #expect(scores[0] < 1.2 && scores[1] < 1.2 && scores[3] < 1.2 && abs(scores[0] - scores[1]) < 0.1 * scores[1], "\(scores)")
        #expect(scores[2] > 1.2 && scores[2] > 1.3 * scores[1], "\(scores)")

        // The animals crossed the level (rising), the near-duplicates after them fell back below it (settled).
        let rising = try DriftAlert.decode(try alerts.receive()), settled = try DriftAlert.decode(try alerts.receive())
        #expect(rising.state == .rising && rising.score > 1.2 && rising.alertScore == 1.2 && rising.arrivals == 40)
        #expect(settled.state == .settled && settled.score < 1.2 && settled.checkedThrough > rising.checkedThrough)
        let status = try client.result(.status, as: StatusResult.self)
        #expect(status.drift?.version == status.model.version && status.drift?.referenceMembers == 160)
        #expect(rising.version == status.model.version)
    }
}
