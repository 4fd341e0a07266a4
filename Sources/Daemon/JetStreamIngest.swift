// glfd's second front door (issue 16): images published to a NATS JetStream stream, read by a
// durable pull consumer and stored in the replay store.
//
//   producers ──publish──▶ stream (subjects glfd.ingest.<source>, R replicas) ──fetch──▶ glfd
//
// What it promises, and how:
//   - Nothing acknowledged by JetStream is lost: glfd acknowledges a message only after the store's
//     durable commit holding it. A crash in between leaves it unacknowledged, and the server
//     delivers it again (after `ackWaitSeconds`, or at once to the restarted consumer).
//   - Nothing is stored twice: each item is stored under its stream sequence as the store's key
//     (`ImageStore.ingest(_:keys:)`, in the item's own transaction), so a redelivered message
//     names the item already stored and is acknowledged again, not stored again.
//   - A message that is not an image (undecodable, too large, a bad descriptor) is terminated:
//     never delivered again, logged and counted (`rejected`), and the rest of its batch goes on.
//   - A full disk or store stops the consumer without acknowledging: the server keeps the
//     messages (its `pending` grows) and the consumer tries again after a pause.
// The message: the image's bytes as the body (JPEG, PNG, or raw pixels), its descriptor in headers
// (PROTOCOL.md §6): Glfd-Format, Glfd-Width, Glfd-Height, Glfd-Channels for raw pixels, Glfd-Meta;
// the source tag is the subject's last token (glfd.ingest.<source>).
import Foundation
import Logging
import NATS
import Protocol
import Store

public final class JetStreamIngest: @unchecked Sendable {
    public struct Settings: Sendable, Codable, Equatable {
        /// nats://host:port of the cluster's servers; empty: JetStream ingest is off.
        public var servers: [String] = []
        public var stream = "GLFD"
        /// The subjects the stream holds and the consumer reads: `subjectPrefix` + "<source>".
        public var subjectPrefix = "glfd.ingest."
        /// The durable consumer's name: each glfd reading the stream (a trainer, each replica) has its own.
        public var consumer = "glfd"
        /// Replicas of the stream if glfd creates it (it exists already: left as it is).
        public var replicas = 1
        /// Messages per fetch, and so at most per store commit.
        public var batch = 256
        /// A message fetched and not acknowledged within this time is delivered again.
        public var ackWaitSeconds: Double = 30
        /// Pause after a failure (connection lost, store full) before trying again.
        public var retrySeconds: Double = 2
        public init() {}

        public var isEnabled: Bool { !servers.isEmpty }
    }

    public struct Status: Sendable, Equatable {
        public var connected = false
        /// Messages in the stream the consumer has not been delivered yet (its lag), as of the
        /// last check; nil before the first.
        public var pending: UInt64?
        public var stored = 0
        /// Redeliveries of messages already stored: acknowledged again, not stored again.
        public var duplicates = 0
        public var rejected = 0
        public var lastError: String?
    }

    private let settings: Settings
    private let store: ImageStore
    private let logger: Logger
    /// Told the ids of each batch stored (the trainer and the catalog follow ingest).
    private let onStored: @Sendable ([UInt64]) -> Void
    private let lock = NSLock()
    private var currentStatus = Status()
    private var connection: NATSConnection?
    private let loop = PollingThread(name: "glfd-jetstream")

    public init(settings: Settings, store: ImageStore, logger: Logger, onStored: @escaping @Sendable ([UInt64]) -> Void) {
        self.settings = settings
        self.store = store
        self.logger = logger
        self.onStored = onStored
    }

    public var status: Status { lock.withLock { currentStatus } }

    public func start() {
        loop.start { [self] in run() }
    }

    /// Stops fetching; a batch being stored is finished and acknowledged first.
    public func stop() {
        loop.stop()
        lock.withLock { connection }?.close()
    }

    private var shouldStop: Bool { loop.shouldStop }

    private func update(_ change: (inout Status) -> Void) { lock.withLock { change(&currentStatus) } }

    private func run() {
        while !shouldStop {
            do {
                try consume()
            } catch {
                update {
                    $0.connected = false
                    $0.lastError = "\(error)"
                }
                loop.warn(logger, "JetStream ingest paused; retrying", error: error, metadata: ["retry_seconds": "\(settings.retrySeconds)"])
                loop.pause(settings.retrySeconds)
            }
        }
    }

    /// Connects, makes sure the stream and the consumer exist, then fetches and stores until
    /// stopped or until something fails (thrown: `run` pauses and calls again).
    private func consume() throws {
        var options = NATSConnection.Options()
        options.name = "glfd \(settings.consumer)"
        let connection = try NATSConnection(servers: settings.servers, options: options)
        lock.withLock { self.connection = connection }
        let js = try connection.jetStream()
        if try !streamExists(js) {
            var configuration = JetStream.StreamConfiguration(name: settings.stream, subjects: [settings.subjectPrefix + ">"])
            configuration.replicas = settings.replicas
            try js.addOrUpdateStream(configuration)
            logger.info("JetStream stream created", metadata: ["stream": "\(settings.stream)", "replicas": "\(settings.replicas)"])
        }
        let consumer = try js.pullConsumer(stream: settings.stream, subject: settings.subjectPrefix + ">", durable: settings.consumer,
                                           ackWaitSeconds: settings.ackWaitSeconds, maxAckPending: settings.batch * 4)
        update {
            $0.connected = true
            $0.lastError = nil
        }
        logger.info("JetStream ingest consuming", metadata: ["stream": "\(settings.stream)", "consumer": "\(settings.consumer)"])
        var lastLagCheck = Date.distantPast
        let decoder = IngestDecoder(canonical: store.configuration.canonical)
        while !shouldStop {
            let messages = try consumer.fetch(batch: settings.batch, timeoutMilliseconds: 500)
            if !messages.isEmpty { try storeAndAcknowledge(messages, decoder: decoder, connection: connection) }
            if messages.isEmpty || Date().timeIntervalSince(lastLagCheck) > 1 {
                let pending = try consumer.state().pending
                update { $0.pending = pending }
                lastLagCheck = Date()
            }
        }
    }

    private func streamExists(_ js: JetStream) throws(NATSError) -> Bool {
        do {
            _ = try js.streamState(settings.stream)
            return true
        } catch {
            guard error.isNotFound else { throw error }
            return false
        }
    }

    /// Decodes each message, stores the images under their stream sequences in one commit, and
    /// only then acknowledges them; terminates the ones that are not images.
    private func storeAndAcknowledge(_ messages: [JetStreamMessage], decoder: IngestDecoder, connection: NATSConnection) throws {
        let sequences = try messages.map { try $0.metadata().streamSequence }
        // Messages stored before (a redelivery after a lost acknowledgement or a kill after the
        // commit; or a second consumer reading the stream again) are acknowledged, not decoded
        // again. The store's keys would not store them twice anyway; this counts them.
        let storedBefore = try store.ids(forKeys: sequences)
        var items: [NewItem] = [], keys: [UInt64] = [], accepted: [JetStreamMessage] = []
        var duplicates = 0, rejected = 0
        for (index, message) in messages.enumerated() {
            if storedBefore[index] != nil {
                duplicates += 1
                try message.acknowledge()
                continue
            }
            do {
                items.append(try Self.item(of: message, prefix: settings.subjectPrefix, decoder: decoder))
                keys.append(sequences[index])
                accepted.append(message)
            } catch {
                logger.warning("JetStream message rejected", metadata: [
                    "stream_sequence": "\(sequences[index])", "subject": "\(message.subject)", "error": "\(error)"])
                rejected += 1
                try message.terminate()
            }
        }
        var ids: [UInt64] = []
        if !items.isEmpty {
            do {
                ids = try store.ingestAndWait(items, keys: keys)
            } catch {
                // Not stored, so not acknowledged: the server delivers them again after the pause.
                for message in accepted { try? message.refuse(delayMilliseconds: Int64(settings.retrySeconds * 1000)) }
                throw error
            }
            for message in accepted { try message.acknowledge() }
        }
        try connection.flush()
        update {
            $0.stored += ids.count
            $0.duplicates += duplicates
            $0.rejected += rejected
        }
        if !ids.isEmpty { onStored(ids) }
    }

    /// A message as the store's item: the body decoded under the ingest limits, the descriptor
    /// from its headers, the source from its subject.
    static func item(of message: JetStreamMessage, prefix: String, decoder: IngestDecoder) throws -> NewItem {
        let subject = message.subject
        let source = subject.hasPrefix(prefix) ? String(subject.dropFirst(prefix.count)) : subject
        let format = message.header("Glfd-Format") ?? "auto"
        var item: NewItem
        switch format {
        case "raw":
            guard let width = message.header("Glfd-Width").flatMap(Int.init), let height = message.header("Glfd-Height").flatMap(Int.init),
                  let channels = message.header("Glfd-Channels").flatMap(Int.init) else {
                throw ProtocolError(.badHeader, "a raw image needs the headers Glfd-Width, Glfd-Height and Glfd-Channels")
            }
            item = try decoder.item(raw: message.payload, width: width, height: height, channels: channels)
        case "auto", "jpeg", "png":
            item = try decoder.item(encoded: message.payload)
            if format != "auto" && format != item.originalFormat.rawValue {
                throw ProtocolError(.badImage, "declared \(format), but the bytes are \(item.originalFormat.rawValue)")
            }
        default:
            throw ProtocolError(.badHeader, "Glfd-Format \(format): expected jpeg, png, raw or auto")
        }
        item.source = source
        item.metadata = Array((message.header("Glfd-Meta") ?? "").utf8)
        // Checked here, message by message: the store refuses a whole commit for one item over a
        // limit, and a batch refused for good would come back for ever.
        guard source.utf8.count <= NewItem.maxSourceBytes else {
            throw ProtocolError(.tooLarge, "source tag (the subject after the prefix) of \(source.utf8.count) bytes; at most \(NewItem.maxSourceBytes)")
        }
        guard item.metadata.count <= NewItem.maxMetadataBytes else {
            throw ProtocolError(.tooLarge, "Glfd-Meta of \(item.metadata.count) bytes; at most \(NewItem.maxMetadataBytes)")
        }
        return item
    }

}
