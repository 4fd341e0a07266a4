// glf-bench jetstream (issue 16): glfd's JetStream front door against its ZeroMQ one, on this
// machine, in one run:
//   ingest      the same JPEGs stored durably: through ZeroMQ `ingest` (one DEALER, requests of
//               --batch images, --inflight in flight: the peer), and through JetStream: the
//               producer's publish rate (each publish acknowledged by the stream, R replicas), the
//               rate glfd drains a backlog of them (fetch, decode, one commit, acknowledge), and
//               both at once (publishing while glfd consumes), with the consumer's largest lag
//   replica     a trainer and a serve-only replica fed by the stream at a steady --rate: the
//               consumer lag of each, and how long after the trainer publishes a version the
//               replica serves it (its catalog built)
//   queries     knn by image against one replica, then a client over two (one DEALER to both)
// Everything runs on loopback on this one machine: two replicas share its cores, so the query
// figure shows the requests spread, not two machines' capacity.
import ArgumentParser
import Daemon
import Datasets
import Foundation
import GLFDClient
import GLFDTesting
import NATS
import Protocol
import Store
import ZeroMQ

struct BenchJetStream: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jetstream",
        abstract: "JetStream ingest against ZeroMQ ingest, a replica's lag behind its trainer, knn over one and two replicas.")

    @Option(help: "Folder of JPEG/PNG files (e.g. CIFAR-10 unpacked); repeated up to --count.")
    var data: String
    @Option(help: "Images per ingest measurement.")
    var count = 20_000
    @Option(help: "NATS servers (JetStream, a cluster when above 1); the stream gets as many replicas.")
    var natsNodes = 3
    @Option(help: "Images per ZeroMQ ingest request.")
    var batch = 64
    @Option(help: "Messages per JetStream fetch (and so per commit): glfd's ingest.jetstream_batch.")
    var fetch = JetStreamIngest.Settings().batch
    @Option(help: "ZeroMQ ingest requests in flight.")
    var inflight = 8
    @Option(help: "Images/s streamed while the trainer trains and the replica follows.")
    var rate = 100.0
    @Option(help: "Seconds of that steady stream.")
    var steadySeconds = 180.0
    @Option(help: "knn queries per measurement.")
    var queries = 400
    @Option(help: "Where the temporary daemon states go (removed at the end).")
    var dir = "."

    func validate() throws {
        guard count >= 1, natsNodes >= 1, batch >= 1, fetch >= 1, inflight >= 1, rate > 0, steadySeconds > 0, queries >= 1 else {
            throw ValidationError("--count, --nats-nodes, --batch, --fetch, --inflight and --queries must be at least 1; --rate and --steady-seconds above 0")
        }
    }

    func run() throws {
        warnAboutOpenBLASCore()
        let files = try imageFiles([data])
        let distinct = try files.prefix(count).map { try [UInt8](Data(contentsOf: URL(fileURLWithPath: $0))) }
        let work = (0..<count).map { distinct[$0 % distinct.count] }
        let root = URL(fileURLWithPath: dir).appendingPathComponent(".bench-jetstream-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let nats = try NATSCluster(nodes: natsNodes, directory: root.appendingPathComponent("nats"))
        print("glf-bench jetstream: \(count) images (\(distinct.count) distinct files from \(data)); nats-server × \(natsNodes), "
              + "stream replicas \(natsNodes); glfd on its defaults, durable store, loopback")

        // 1. ZeroMQ ingest, the peer.
        let zeroMQ = try withDaemon(root.appendingPathComponent("zmq"), nats: nil) { daemon in
            let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests, timeoutMilliseconds: 600_000)
            let requests = stride(from: 0, to: work.count, by: batch).map { start in
                Command.ingest(work[start..<min(start + batch, work.count)].map { ImagePayload($0, ImageDescriptor(source: "bench")) })
            }
            let run = try client.pipeline(requests, inflight: inflight)
            for reply in run.replies { _ = try reply.result(as: IngestResult.self) }
            return Double(work.count) / run.seconds
        }
        report("ingest over ZeroMQ (peer)", String(format: "%9.0f images/s   (1 DEALER, %d × %d images in flight, acknowledged once durable)",
                                                   zeroMQ, inflight, batch))

        // 2. JetStream: publish a backlog, then let glfd drain it.
        let js = try NATSConnection(servers: nats.urls).jetStream(waitMilliseconds: 10_000)
        var stream = JetStream.StreamConfiguration(name: "GLFD", subjects: ["glfd.ingest.>"])
        stream.replicas = natsNodes
        try retrying(seconds: 30) { try js.addOrUpdateStream(stream) }
        let publishStarted = ContinuousClock.now
        for (index, image) in work.enumerated() {
            _ = try js.publish(subject: "glfd.ingest.bench", payload: image, messageID: "backlog-\(index)")
        }
        let publishRate = Double(work.count) / seconds(since: publishStarted)
        report("publish to JetStream", String(format: "%9.0f images/s   (one producer, each publish acknowledged by the stream, R %d)",
                                              publishRate, natsNodes))
        let drained = try withDaemon(root.appendingPathComponent("js"), nats: nats.urls) { daemon in
            let started = ContinuousClock.now
            try waitFor(seconds: 600, "glfd to store the backlog") { daemon.jetStream!.status.stored >= work.count }
            let drain = Double(work.count) / seconds(since: started)

            // Publishing while glfd consumes: end to end, and the consumer's largest lag.
            var largestLag: UInt64 = 0
            let streamStarted = ContinuousClock.now
            for (index, image) in work.enumerated() {
                _ = try js.publish(subject: "glfd.ingest.bench", payload: image, messageID: "live-\(index)")
                if index % 500 == 0 { largestLag = max(largestLag, daemon.jetStream!.status.pending ?? 0) }
            }
            try waitFor(seconds: 600, "glfd to store the live stream") { daemon.jetStream!.status.stored >= 2 * work.count }
            let live = Double(work.count) / seconds(since: streamStarted)
            return (drain, live, largestLag)
        }
        report("ingest through JetStream, backlog", String(format: "%9.0f images/s   (fetch %d, one commit, acknowledge; %.2f of ZeroMQ)",
                                                           drained.0, fetch, drained.0 / zeroMQ))
        report("ingest through JetStream, live", String(format: "%9.0f images/s   (publish and consume at once; %.2f of ZeroMQ; largest lag the consumer reported, once a second: %d messages)",
                                                        drained.1, drained.1 / zeroMQ, drained.2))

        // 3. A trainer and a replica under a steady stream.
        try trainerAndReplica(root: root, nats: nats, js: js, images: distinct)
    }

    private func trainerAndReplica(root: URL, nats: NATSCluster, js: JetStream, images: [[UInt8]]) throws {
        // A stream of their own, so that the consumers start level with the producer.
        func onSteadyStream(_ settings: inout DaemonSettings) {
            settings.jetStream.stream = "STEADY"
            settings.jetStream.subjectPrefix = "glfd.steady."
            settings.jetStream.replicas = natsNodes
        }
        var trainerSettings = settings(root.appendingPathComponent("trainer"), nats: nats.urls, consumer: "trainer")
        trainerSettings.trainer.publishEverySteps = 50
        onSteadyStream(&trainerSettings)
        var trainer: GLFDaemon! = try GLFDaemon(settings: trainerSettings)
        trainer.start()
        defer { trainer?.stop() }
        try waitFor(seconds: 60, "the trainer to create its stream") { trainer.jetStream!.status.connected }
        let replicas = try (1...2).map { index in
            var replicaSettings = settings(root.appendingPathComponent("replica-\(index)"), nats: nats.urls, consumer: "replica-\(index)")
            onSteadyStream(&replicaSettings)
            replicaSettings.trainingEnabled = false
            replicaSettings.replica.follow = trainer.server.boundEndpoints.requests
            let replica = try GLFDaemon(settings: replicaSettings)
            replica.start()
            return replica
        }
        defer { replicas.forEach { $0.stop() } }
        let replica = replicas[0]

        // Version → when the trainer published it, and when the first replica served it.
        var published: [Int: Double] = [:], served: [Int: Double] = [:]
        func noteVersions() {
            for version in trainer.versions.all where published[version.version] == nil { published[version.version] = version.publishedAt }
            let model = replica.status().model
            if model.version > 0 && served[model.version] == nil { served[model.version] = Date().timeIntervalSince1970 }
        }
        var trainerLag: [Double] = [], replicaLag: [Double] = []
        let started = Date()
        var sent = 0
        while Date().timeIntervalSince(started) < steadySeconds {
            let due = Int(Date().timeIntervalSince(started) * rate)
            while sent < due {
                _ = try js.publish(subject: "glfd.steady.cam", payload: images[sent % images.count], messageID: "steady-\(sent)")
                sent += 1
            }
            noteVersions()
            trainerLag.append(Double(trainer.jetStream!.status.pending ?? 0))
            replicaLag.append(Double(replica.jetStream!.status.pending ?? 0))
            usleep(50_000)
        }
        report("steady stream", String(format: "%9.0f images/s for %.0f s (%d sent); trainer at step %d, %d versions published",
                                       rate, steadySeconds, sent, trainer.trainer!.currentStatus.step, published.count))
        report("consumer lag, trainer / replica", String(format: "median %.0f / %.0f messages, max %.0f / %.0f",
                                                         trainerLag.median, replicaLag.median, trainerLag.max() ?? 0, replicaLag.max() ?? 0))

        // 4. Every version published in the window, followed until the replicas serve the last of
        // them (or a newer one; they skip a version published while they rebuild): a version still
        // rebuilding when the stream stops counts too, or the slowest would be left out.
        let latest = trainer.versions.latest?.version ?? 0
        var last = 0
        try waitFor(seconds: 600, "the replicas to serve the trainer's latest version, or a newer one, both the same") {
            noteVersions()
            let statuses = replicas.map { $0.status() }
            last = statuses[0].model.version
            return last >= latest && statuses.allSatisfy { $0.model.version == last && $0.catalog.complete }
        }
        let delays = published.keys.sorted().compactMap { version in served[version].map { (version, $0 - published[version]!) } }
        let skipped = published.keys.sorted().filter { served[$0] == nil && $0 <= last }
        report("published → served by the replica", delays.isEmpty ? "no version served"
               : String(format: "median %.1f s, max %.1f s over %d versions (fetch, install, its own catalog)",
                        delays.map(\.1).median, delays.map(\.1).max()!, delays.count))
        report("  by version", delays.map { String(format: "v%d %.1f s", $0.0, $0.1) }.joined(separator: ", ")
               + (skipped.isEmpty ? "" : "; skipped (published during a rebuild): " + skipped.map { "v\($0)" }.joined(separator: ", ")))
        // knn over one replica, then over both; the trainer stops first, so the replicas have the
        // cores (each answers on one query thread).
        trainer.stop()
        trainer = nil
        let query = Command.knn(KNNQuery(.image(ImagePayload(images[0])), k: 10))
        let endpoints = replicas.map(\.server.boundEndpoints.requests)
        let one = try GLFDClient(endpoint: endpoints[0], timeoutMilliseconds: 600_000)
            .pipeline(Array(repeating: query, count: queries), inflight: inflight)
        let two = try GLFDClient(endpoint: endpoints.joined(separator: ","), timeoutMilliseconds: 600_000)
            .pipeline(Array(repeating: query, count: queries), inflight: inflight)
        let (rateOne, rateTwo) = (Double(queries) / one.seconds, Double(queries) / two.seconds)
        report("knn, one replica", String(format: "%9.0f queries/s (%d in flight, version %d)", rateOne, inflight, last))
        report("knn, two replicas (one DEALER to both)", String(format: "%9.0f queries/s (%.2f of one; both on this machine's cores)",
                                                                rateTwo, rateTwo / rateOne))
    }

    /// glfd's defaults on `state`, loopback ports, JetStream ingest from `nats` (off when nil).
    private func settings(_ state: URL, nats: [String]?, consumer: String = "bench") -> DaemonSettings {
        var settings = DaemonSettings(stateDirectory: state)
        settings.server.requestEndpoint = "tcp://127.0.0.1:*"
        settings.server.announceEndpoint = "tcp://127.0.0.1:*"
        settings.server.maxInflightIngestsPerClient = max(inflight, 8)
        settings.trainer.minItems = min(settings.trainer.minItems, count)
        if let nats {
            settings.jetStream.servers = nats
            settings.jetStream.consumer = consumer
            settings.jetStream.batch = fetch
        }
        return settings
    }

    private func withDaemon<Result>(_ state: URL, nats: [String]?, _ body: (GLFDaemon) throws -> Result) throws -> Result {
        var settings = settings(state, nats: nats)
        settings.trainingEnabled = false
        let daemon = try GLFDaemon(settings: settings)
        daemon.start()
        defer { daemon.stop() }
        return try body(daemon)
    }

    private func report(_ what: String, _ figures: String) { print("  " + padded(what, 40) + figures) }
}

private struct BenchJetStreamError: Error, CustomStringConvertible {
    let description: String
}

private func waitFor(seconds: Double, _ what: String, _ condition: () -> Bool) throws {
    guard waitUntil(seconds: seconds, condition) else { throw BenchJetStreamError(description: "waited \(Int(seconds)) s for \(what)") }
}

private func retrying(seconds: Double, _ body: () throws -> Void) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        do {
            return try body()
        } catch where Date() < deadline {
            usleep(250_000)
        }
    }
}
