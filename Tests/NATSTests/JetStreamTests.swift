// The NATS wrapper against real nats-server processes with JetStream: a stream created and
// updated, publishes with headers and message ids (a repeated id stored once), a durable pull
// consumer that fetches, acknowledges and gets unacknowledged messages again after its ack wait,
// and keeps its place across connections; on a three-node cluster a stream of three replicas keeps
// accepting and delivering with one node killed.
import Foundation
import GLFDTesting
import NATS
import Testing

@Suite(.serialized) struct JetStreamTests {
    static func payload(_ index: Int) -> [UInt8] { Array("image \(index)".utf8) + [UInt8(index % 256), 0, 255] }

    @Test func publishesAndFetchesWithHeadersAndSequences() throws {
        let servers = try NATSCluster(nodes: 1)
        let js = try NATSConnection(servers: servers.urls).jetStream()
        let created = try js.addOrUpdateStream(.init(name: "images", subjects: ["glfd.ingest.>"]))
        #expect(created.messages == 0)
        var sequences: [UInt64] = []
        for index in 0..<50 {
            let ack = try js.publish(subject: "glfd.ingest.camera\(index % 2)", payload: Self.payload(index),
                                     headers: [("Glfd-Format", "raw"), ("Glfd-Index", "\(index)")], messageID: "m\(index)")
            #expect(ack.stream == "images" && !ack.duplicate)
            sequences.append(ack.sequence)
        }
        #expect(sequences == Array(1...50))
        // A producer's retry with the same id within the duplicate window is stored once.
        let retry = try js.publish(subject: "glfd.ingest.camera0", payload: Self.payload(0), messageID: "m0")
        #expect(retry.duplicate && retry.sequence == 1)
        #expect(try js.streamState("images").messages == 50)

        let consumer = try js.pullConsumer(stream: "images", subject: "glfd.ingest.>", durable: "glfd")
        var received: [JetStreamMessage] = []
        while received.count < 50 {
            let batch = try consumer.fetch(batch: 16, timeoutMilliseconds: 2_000)
            try #require(!batch.isEmpty, "the stream holds 50 messages, fetched \(received.count)")
            received += batch
        }
        for (index, message) in received.enumerated() {
            let meta = try message.metadata()
            #expect(meta.streamSequence == UInt64(index + 1) && meta.deliveries == 1)
            #expect(meta.pending == UInt64(49 - index))
            #expect(message.payload == Self.payload(index))
            #expect(message.subject == "glfd.ingest.camera\(index % 2)")
            #expect(message.header("Glfd-Index") == "\(index)" && message.header("Glfd-Format") == "raw")
            #expect(message.header("Missing") == nil)
            try message.acknowledge()
        }
        try js.connection.flush()
        #expect(waitUntil(seconds: 5) { (try? consumer.state())?.ackPending == 0 })
        let state = try consumer.state()
        #expect(state.pending == 0 && state.ackFloorStreamSequence == 50)
        #expect(try consumer.fetch(batch: 8, timeoutMilliseconds: 200).isEmpty)
    }

    @Test func unacknowledgedMessagesComeBackAndTheDurableKeepsItsPlace() throws {
        let servers = try NATSCluster(nodes: 1)
        do {
            let js = try NATSConnection(servers: servers.urls).jetStream()
            try js.addOrUpdateStream(.init(name: "images", subjects: ["in.>"]))
            for index in 0..<10 { _ = try js.publish(subject: "in.a", payload: Self.payload(index)) }
            let consumer = try js.pullConsumer(stream: "images", subject: "in.>", durable: "glfd", ackWaitSeconds: 1)
            let first = try consumer.fetch(batch: 10, timeoutMilliseconds: 2_000)
            #expect(first.count == 10)
            // Acknowledge the first six; the last four are left, as by a consumer that died before its commit.
            for message in first.prefix(6) { try message.acknowledgeConfirmed() }
            usleep(1_500_000)
            let again = try consumer.fetch(batch: 10, timeoutMilliseconds: 2_000)
            #expect(try again.map { try $0.metadata().streamSequence } == [7, 8, 9, 10])
            #expect(try again.allSatisfy { try $0.metadata().deliveries == 2 })
            try again.first!.acknowledgeConfirmed()
            try again[1].terminate()  // never again, whatever the ack wait
        }
        // A new connection binds the same durable: it goes on where the acknowledgements left it.
        let js = try NATSConnection(servers: servers.urls).jetStream()
        let consumer = try js.pullConsumer(stream: "images", subject: "in.>", durable: "glfd", ackWaitSeconds: 1)
        usleep(1_200_000)
        let rest = try consumer.fetch(batch: 10, timeoutMilliseconds: 2_000)
        #expect(try rest.map { try $0.metadata().streamSequence } == [9, 10])
    }

    @Test func errorsAreTypedAndSayWhatFailed() throws {
        let nobody = try freeLoopbackPort()
        let refused = #expect(throws: NATSError.self) {
            try NATSConnection(servers: ["nats://127.0.0.1:\(nobody)"])
        }
        #expect(refused?.description.contains("natsConnection_Connect(nats://127.0.0.1:\(nobody))") == true)
        let servers = try NATSCluster(nodes: 1)
        let js = try NATSConnection(servers: servers.urls).jetStream(waitMilliseconds: 2_000)
        let missing = #expect(throws: NATSError.self) { try js.streamState("absent") }
        #expect(missing?.isNotFound == true)
        try js.addOrUpdateStream(.init(name: "small", subjects: ["s.>"]))
        var limited = JetStream.StreamConfiguration(name: "small", subjects: ["s.>"])
        limited.maxMessageBytes = 64
        try js.addOrUpdateStream(limited)  // exists: updated, not refused
        let tooLarge = #expect(throws: NATSError.self) {
            try js.publish(subject: "s.x", payload: [UInt8](repeating: 7, count: 65))
        }
        #expect(tooLarge?.jetStreamCode != 0)
        #expect(try js.publish(subject: "s.x", payload: [UInt8](repeating: 7, count: 64)).sequence == 1)
    }

    @Test func aThreeNodeClusterKeepsAcceptingAndDeliveringWithOneNodeKilled() throws {
        let cluster = try NATSCluster(nodes: 3)
        let js = try NATSConnection(servers: cluster.urls).jetStream(waitMilliseconds: 5_000)
        var configuration = JetStream.StreamConfiguration(name: "images", subjects: ["glfd.ingest.>"])
        configuration.replicas = 3
        // The cluster elects its metadata leader after the routes connect: retry until it has.
        var created = false
        let deadline = Date().addingTimeInterval(30)
        while !created && Date() < deadline {
            created = (try? js.addOrUpdateStream(configuration)) != nil
            if !created { usleep(250_000) }
        }
        try #require(created, "no JetStream meta leader in 30 s: \(cluster.log(of: 0).suffix(1_500))")
        var acknowledged: Set<UInt64> = []
        for index in 0..<100 {
            acknowledged.insert(try js.publish(subject: "glfd.ingest.cam", payload: Self.payload(index), messageID: "m\(index)").sequence)
        }
        // A node dies: the other two are a majority of every replica group, so publishes still get
        // their acknowledgement (after a leader election, hence the retries with the same id).
        cluster.kill(1)
        for index in 100..<200 {
            var ack: JetStream.PublishAck?
            let retryUntil = Date().addingTimeInterval(20)
            while ack == nil && Date() < retryUntil {
                ack = try? js.publish(subject: "glfd.ingest.cam", payload: Self.payload(index), messageID: "m\(index)")
            }
            acknowledged.insert(try #require(ack, "publish \(index) not acknowledged with two of three nodes up").sequence)
        }
        #expect(acknowledged.count == 200)
        // Creating the consumer may meet the elections that follow the kill (a new metadata
        // leader): JetStream API calls time out until they are over.
        var bound: PullConsumer?
        let createUntil = Date().addingTimeInterval(30)
        while bound == nil && Date() < createUntil {
            bound = try? js.pullConsumer(stream: "images", subject: "glfd.ingest.>", durable: "glfd")
        }
        let consumer = try #require(bound, "no consumer within 30 s of the kill: \(cluster.log(of: 0).suffix(1_500))")
        var delivered: [UInt64: [UInt8]] = [:]
        let fetchUntil = Date().addingTimeInterval(30)
        while delivered.count < 200 && Date() < fetchUntil {
            for message in (try? consumer.fetch(batch: 64, timeoutMilliseconds: 1_000)) ?? [] {
                delivered[try message.metadata().streamSequence] = message.payload
                try message.acknowledge()
            }
        }
        #expect(Set(delivered.keys) == acknowledged)
        #expect(delivered.values.contains(Self.payload(150)))
        // The node comes back on the same store and rejoins: the stream is reached through it again.
        try cluster.start(1)
        #expect(waitUntil(seconds: 30) { (try? NATSConnection(servers: [cluster.nodes[1].url]).jetStream().streamState("images").messages) == 200 })
    }
}
