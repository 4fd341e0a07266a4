// glfd ingesting from a real NATS JetStream stream (issue 16): CIFAR-10 JPEGs published with their
// descriptors in headers are stored once each, under their stream sequences, and acknowledged;
// messages that are not images, or break a limit, are terminated and counted, not stored and not
// redelivered, and the images around them are stored; a
// consumer that reads the whole stream again (every message delivered a second time) stores
// nothing twice; a restart goes on where the acknowledgements left off. And the faults, with glfd
// as a process: on a three-node cluster, one NATS node and then glfd itself killed (SIGKILL)
// mid-stream; every publish JetStream acknowledged is stored, none twice.
import Daemon
import Foundation
import GLFDClient
import GLFDTesting
import Imaging
import NATS
import Protocol
import Store
import Testing

@Suite(.serialized) struct JetStreamIngestTests {
    static func settings(_ state: URL, servers: [String], consumer: String = "glfd") -> DaemonSettings {
        var settings = testDaemonSettings(state)
        settings.trainingEnabled = false
        settings.jetStream.servers = servers
        settings.jetStream.consumer = consumer
        settings.jetStream.stream = "GLFD"
        settings.jetStream.batch = 64
        settings.jetStream.ackWaitSeconds = 2
        settings.jetStream.retrySeconds = 0.5
        return settings
    }

    @Test func storesEachAcknowledgedImageOnceAndTerminatesWhatIsNotAnImage() throws {
        let nats = try NATSCluster(nodes: 1)
        let state = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: state) }
        let jpegs = try cifarFiles(200)
        let js = try NATSConnection(servers: nats.urls).jetStream()
        try js.addOrUpdateStream(.init(name: "GLFD", subjects: ["glfd.ingest.>"]))
        var sequences: [UInt64] = []
        for (index, jpeg) in jpegs.enumerated() {
            sequences.append(try js.publish(subject: "glfd.ingest.cam\(index % 3)", payload: jpeg,
                                            headers: [("Glfd-Format", "jpeg"), ("Glfd-Meta", "frame \(index)")]).sequence)
            if index == 50 { _ = try js.publish(subject: "glfd.ingest.cam0", payload: Array("not an image".utf8)) }
            if index == 120 { _ = try js.publish(subject: "glfd.ingest.cam1", payload: [UInt8](repeating: 9, count: 48),
                                                 headers: [("Glfd-Format", "raw")]) }  // raw without its size
            if index == 150 {  // a source tag over the store's limit: refused alone, not with the batch around it
                _ = try js.publish(subject: "glfd.ingest." + String(repeating: "s", count: 300), payload: jpeg)
            }
        }

        do {
            let daemon = try GLFDaemon(settings: Self.settings(state, servers: nats.urls))
            daemon.start()
            defer { daemon.stop() }
            let ingest = try #require(daemon.jetStream)
            #expect(waitUntil(seconds: 60) { ingest.status.stored == 200 && ingest.status.rejected == 3 && ingest.status.pending == 0 },
                    "status: \(ingest.status)")
            #expect(daemon.store.statistics.items == 200)
            let ids = try daemon.store.ids(forKeys: sequences)
            #expect(ids.allSatisfy { $0 != nil } && Set(ids).count == 200)
            let item = try #require(try daemon.store.item(ids[7]!))
            #expect(item.source == "cam1" && item.metadata == Array("frame 7".utf8) && item.originalFormat == .jpeg)
            // Terminated: past the ack wait they are not delivered again.
            usleep(2_500_000)
            #expect(ingest.status.rejected == 3 && ingest.status.duplicates == 0)
            #expect(try js.consumerState(stream: "GLFD", consumer: "glfd").ackPending == 0)
        }

        // A restart with more published meanwhile: only the new ones are stored.
        for (index, jpeg) in jpegs.prefix(20).enumerated() {
            sequences.append(try js.publish(subject: "glfd.ingest.late", payload: jpeg, messageID: "late-\(index)").sequence)
        }
        do {
            let daemon = try GLFDaemon(settings: Self.settings(state, servers: nats.urls))
            daemon.start()
            defer { daemon.stop() }
            let ingest = try #require(daemon.jetStream)
            #expect(waitUntil(seconds: 30) { ingest.status.stored == 20 && ingest.status.pending == 0 }, "status: \(ingest.status)")
            #expect(daemon.store.statistics.items == 220 && ingest.status.duplicates == 0)
        }

        // A second consumer reads the whole stream again: every message is a redelivery of one
        // stored before, and nothing is stored twice.
        let daemon = try GLFDaemon(settings: Self.settings(state, servers: nats.urls, consumer: "again"))
        daemon.start()
        defer { daemon.stop() }
        let ingest = try #require(daemon.jetStream)
        #expect(waitUntil(seconds: 30) { ingest.status.duplicates == 220 && ingest.status.pending == 0 }, "status: \(ingest.status)")
        #expect(ingest.status.stored == 0 && ingest.status.rejected == 3)
        #expect(daemon.store.statistics.items == 220)
        #expect(Set(try daemon.store.ids(forKeys: sequences).compactMap { $0 }).count == 220)
    }

    @Test func aDaemonStartedBeforeNATSServesAndConsumesOnceNATSIsUp() throws {
        // NATS down must not keep glfd from starting and serving its ZeroMQ socket; it consumes
        // once a server answers on the configured address.
        let port = try freeLoopbackPort()
        let state = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: state) }
        let daemon = try GLFDaemon(settings: Self.settings(state, servers: ["nats://127.0.0.1:\(port)"]))
        daemon.start()
        defer { daemon.stop() }
        let ingest = try #require(daemon.jetStream)
        #expect(waitUntil(seconds: 10) { ingest.status.lastError != nil })
        #expect(!ingest.status.connected)
        #expect(daemon.store.statistics.items == 0)

        let nats = try NATSCluster(nodes: 1, clientPorts: [port])
        // glfd creates the stream when it finds none (here, a single replica).
        #expect(waitUntil(seconds: 20) { ingest.status.connected }, "status: \(ingest.status)")
        let js = try NATSConnection(servers: nats.urls).jetStream()
        for jpeg in try cifarFiles(10) { _ = try js.publish(subject: "glfd.ingest.door", payload: jpeg) }
        #expect(waitUntil(seconds: 20) { ingest.status.stored == 10 }, "status: \(ingest.status)")
        #expect(daemon.store.statistics.items == 10)
    }

    @Test func killingANATSNodeAndGLFDMidStreamLosesNothingAndStoresNothingTwice() throws {
        let glfd = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("glfd").path
        try #require(FileManager.default.isExecutableFile(atPath: glfd), "\(glfd) is not built")
        let cluster = try NATSCluster(nodes: 3)
        let state = temporaryDaemonDirectory()
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: state) }
        let requestPort = try freeLoopbackPort()
        func startGLFD() throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: glfd)
            process.arguments = ["--set", "paths.state_directory=\(state.path)",
                                 "--set", "server.request_endpoint=tcp://127.0.0.1:\(requestPort)",
                                 "--set", "server.announce_endpoint=tcp://127.0.0.1:*", "--set", "training.enabled=false",
                                 "--set", "metrics.endpoint=", "--set", "ingest.jetstream_servers=\(cluster.urls.joined(separator: ","))",
                                 "--set", "ingest.jetstream_replicas=3", "--set", "ingest.jetstream_batch=64",
                                 "--set", "ingest.jetstream_ack_wait=2"]
            let log = state.appendingPathComponent("glfd.log")
            if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
            let handle = try FileHandle(forWritingTo: log)
            handle.seekToEndOfFile()
            process.standardError = handle
            process.standardOutput = handle
            try process.run()
            try handle.close()
            return process
        }
        func glfdLog() -> String { (try? String(contentsOf: state.appendingPathComponent("glfd.log"), encoding: .utf8)) ?? "" }
        func jetStreamStatus() -> StatusResult.JetStream? {
            guard let client = try? GLFDClient(endpoint: "tcp://127.0.0.1:\(requestPort)", timeoutMilliseconds: 2_000) else { return nil }
            return (try? client.result(.status, as: StatusResult.self))?.jetstream
        }

        var daemon = try startGLFD()
        // glfd creates the stream with three replicas once the cluster has a metadata leader.
        try #require(waitUntil(seconds: 60) { jetStreamStatus()?.connected == true }, "glfd did not connect: \(glfdLog().suffix(2_000))")
        let js = try NATSConnection(servers: cluster.urls).jetStream()
        let jpegs = try cifarFiles(300)
        var acknowledged: [UInt64] = []
        for index in 0..<3_000 {
            if index == 1_000 { cluster.kill(2) }  // a NATS node dies: two of three keep the stream
            if index == 2_000 {
                kill(daemon.processIdentifier, SIGKILL)  // glfd dies mid-batch, acknowledged or not
                daemon.waitUntilExit()
                daemon = try startGLFD()
            }
            var ack: JetStream.PublishAck?
            let retryUntil = Date().addingTimeInterval(20)
            while ack == nil && Date() < retryUntil {
                ack = try? js.publish(subject: "glfd.ingest.cam\(index % 4)", payload: jpegs[index % jpegs.count],
                                      headers: [("Glfd-Meta", "\(index)")], messageID: "frame-\(index)")
            }
            acknowledged.append(try #require(ack, "publish \(index) not acknowledged").sequence)
        }
        #expect(Set(acknowledged).count == 3_000)
        #expect(waitUntil(seconds: 120) { jetStreamStatus().map { $0.pending == 0 && $0.connected } ?? false },
                "status: \(String(describing: jetStreamStatus())); log: \(glfdLog().suffix(2_000))")
        usleep(3_000_000)  // past the ack wait: any message delivered and not acknowledged comes back now
        #expect(waitUntil(seconds: 60) { jetStreamStatus().map { $0.pending == 0 } ?? false })
        daemon.terminate()
        #expect(waitForExit(daemon, seconds: 60), "glfd did not stop: \(glfdLog().suffix(2_000))")

        let store = try ImageStore(StoreConfiguration(directory: state.appendingPathComponent(DaemonSettings.storeFolder).path))
        let ids = try store.ids(forKeys: acknowledged)
        #expect(ids.allSatisfy { $0 != nil }, "\(ids.filter { $0 == nil }.count) acknowledged publishes not stored")
        #expect(Set(ids.compactMap { $0 }).count == 3_000)
        #expect(store.statistics.items == 3_000, "stored \(store.statistics.items) items for 3,000 acknowledged publishes")
        let metas = try store.items(ids.compactMap { $0 }).compactMap { $0.map { String(decoding: $0.metadata, as: UTF8.self) } }
        #expect(Set(metas) == Set((0..<3_000).map { "\($0)" }))
    }

    /// PROTOCOL.md §9 from a stranger's side: a producer in Python's standard library alone
    /// (tools/python/jetstream_publish.py, the NATS client protocol by hand), no NATS library.
    @Test func aProducerWrittenFromTheSpecAloneIsStored() throws {
        let nats = try NATSCluster(nodes: 1)
        let state = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: state) }
        let daemon = try GLFDaemon(settings: Self.settings(state, servers: nats.urls))
        daemon.start()
        defer { daemon.stop() }
        let ingest = try #require(daemon.jetStream)
        #expect(waitUntil(seconds: 20) { ingest.status.connected })  // the stream exists from here
        let directory = NSTemporaryDirectory() + "glfd-jetstream-images-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let paths = try cifarFiles(12).enumerated().map { index, bytes in
            let path = String(format: "\(directory)/%02d.jpg", index)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
        let arguments = ["--server", nats.urls[0], "--source", "py", "--meta", "from python"]
        var (status, text) = try PythonClientScenarioTests.python("jetstream_publish.py", arguments: arguments + paths)
        #expect(status == 0 && text.contains("published 12 images, 0 duplicates"), "\(text)")
        // The same files again: JetStream's duplicate window (Nats-Msg-Id) stores none of them.
        (status, text) = try PythonClientScenarioTests.python("jetstream_publish.py", arguments: arguments + paths)
        #expect(status == 0 && text.contains("published 12 images, 12 duplicates"), "\(text)")
        #expect(waitUntil(seconds: 20) { ingest.status.stored == 12 && ingest.status.pending == 0 }, "status: \(ingest.status)")
        let items = try daemon.store.items(after: 0, limit: 100)
        #expect(items.count == 12 && items.allSatisfy { $0.source == "py" && $0.metadata == Array("from python".utf8) })
    }
}
