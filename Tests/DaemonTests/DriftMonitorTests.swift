// Why drift measures the k-th nearest replay member, on embeddings made to order: a camera's replay
// set holds each scene several times. With the nearest member, the copies make the set's spacing
// tiny and every new scene "drifts" far (a false alarm on a steady stream); with the 10th nearest,
// new scenes like the stored ones score near 1, and scenes from elsewhere still score high.
@testable import Daemon
import Foundation
import GLFDTesting
import Index
import Neural
import Store
import Testing

@Suite struct DriftMonitorTests {
    @Test func copiesInTheReplaySetDoNotMakeASteadyStreamDrift() throws {
        let directory = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // 600 stored CIFAR-10 images, all replay members: the first 500 stand for 100 scenes seen
        // 5 times each (the reference), the last 100 for arrivals.
        let store = try cifarStore(directory, count: 600)
        defer { store.close() }
        let ids = try store.items(after: 0, limit: 600).map(\.id)
        let d = 16
        var rng = SeededGenerator(seed: 3)
        func gaussian() -> Float {
            let u = Float(rng.next() % 1_000_000 + 1) / 1_000_001, v = Float(rng.next() % 1_000_000) / 1_000_000
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        /// A scene in the stream's world (around +e₁), or from elsewhere (around −e₁).
        func scene(elsewhere: Bool = false) -> [Float] { (0..<d).map { ($0 == 0 ? (elsewhere ? -2 : 2) : 0) + gaussian() } }
        func copy(of v: [Float]) -> [Float] { v.map { $0 + 0.01 * gaussian() } }
        var base = ExactIndex.Builder(dimension: d, version: 1)
        for s in 0..<100 {
            let v = scene()
            for c in 0..<5 { base.append(id: ids[s * 5 + c], vector: copy(of: v)) }
        }
        let reference = base.build()
        let version = PublishedVersion(version: 1, path: "", step: 0, publishedAt: 0, metrics: [:])

        /// The score of the newest 64 arrivals (ids 501-600), embedded as `arrival` says.
        func score(neighbour: Int, _ arrival: () -> [Float]) throws -> Double {
            var settings = DriftSettings()
            settings.neighbour = neighbour
            let monitor = DriftMonitor(store: store, settings: settings)
            monitor.setReference(version, base: reference, through: ids[499])
            try monitor.check(version: 1) { images in images.map { _ in arrival() } }
            let status = try #require(monitor.status)
            #expect(status.arrivals == 64 && status.referenceMembers == 500)
            return try #require(status.score)
        }
        let nearestOnly = try score(neighbour: 1) { scene() }
        let steady = try score(neighbour: 10) { scene() }
        let elsewhere = try score(neighbour: 10) { scene(elsewhere: true) }
        #expect(nearestOnly > 10, "the nearest member measures the copies: \(nearestOnly)")
        #expect(steady < DriftSettings().alertScore && steady > 0.8, "new scenes like the stored ones: \(steady)")
        #expect(elsewhere > DriftSettings().alertScore, "scenes from elsewhere: \(elsewhere)")
    }
}
