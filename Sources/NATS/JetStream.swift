// JetStream through one connection: streams (created or brought to a configuration), publishing
// with headers and a server acknowledgement, pull consumers, and what a stream and a consumer hold.
//
// A stream is a replicated, durable, acknowledged log of messages on a set of subjects; a durable
// consumer is a cursor into it that the server keeps: what it delivered, what was acknowledged,
// what is pending. glfd ingests by fetching from a durable pull consumer and acknowledging each
// message only after its own durable commit, so a crash between the two redelivers the message
// rather than losing it (and the stream sequence keeps the redelivery from being stored twice).
import CNATS
import Foundation

public final class JetStream: @unchecked Sendable {
    /// Keeps the connection alive as long as the context is.
    public let connection: NATSConnection
    let handle: OpaquePointer
    let waitMilliseconds: Int64

    init(connection: NATSConnection, waitMilliseconds: Int64) throws(NATSError) {
        self.connection = connection
        self.waitMilliseconds = waitMilliseconds
        var options = jsOptions()
        try check(jsOptions_Init(&options), "jsOptions_Init")
        options.Wait = waitMilliseconds
        var context: OpaquePointer?
        try check(natsConnection_JetStream(&context, connection.handle, &options), "natsConnection_JetStream")
        handle = context!
    }

    deinit {
        jsCtx_Destroy(handle)
    }

    // MARK: Streams

    public struct StreamConfiguration: Sendable, Equatable {
        public var name: String
        public var subjects: [String]
        /// Copies of each message across the cluster's servers (1, 3 or 5 in practice).
        public var replicas = 1
        /// Largest message the stream accepts, bytes (-1: the server's limit).
        public var maxMessageBytes: Int32 = -1
        /// Window in which a publish with the same message id (`Nats-Msg-Id`) is stored once, seconds.
        public var duplicateWindowSeconds: Double = 120

        public init(name: String, subjects: [String]) {
            self.name = name
            self.subjects = subjects
        }
    }

    public struct StreamState: Sendable, Equatable {
        public var messages: UInt64
        public var bytes: UInt64
        public var firstSequence: UInt64
        public var lastSequence: UInt64
        public var consumers: Int
    }

    /// Creates the stream, or updates it to `configuration` if it exists with other settings.
    @discardableResult
    public func addOrUpdateStream(_ configuration: StreamConfiguration) throws(NATSError) -> StreamState {
        let name = strdup(configuration.name)
        let subjects = configuration.subjects.map { strdup($0) }
        defer {
            free(name)
            subjects.forEach { free($0) }
        }
        var pointers = subjects.map { UnsafePointer<CChar>($0) }
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(rawValue: 0)
        let status: natsStatus = pointers.withUnsafeMutableBufferPointer { subjectList in
            var config = jsStreamConfig()
            _ = jsStreamConfig_Init(&config)
            config.Name = UnsafePointer(name)
            config.Subjects = subjectList.baseAddress
            config.SubjectsLen = Int32(subjectList.count)
            config.Replicas = Int64(configuration.replicas)
            config.Storage = js_FileStorage
            config.MaxMsgSize = configuration.maxMessageBytes
            config.Duplicates = Int64(configuration.duplicateWindowSeconds * 1e9)
            var status = js_AddStream(&info, handle, &config, nil, &code)
            if status != NATS_OK && code == JSStreamNameExistErr {
                code = jsErrCode(rawValue: 0)
                status = js_UpdateStream(&info, handle, &config, nil, &code)
            }
            return status
        }
        try check(status, code, "js_AddStream(\(configuration.name))")
        defer { jsStreamInfo_Destroy(info) }
        return Self.state(of: info!.pointee.State)
    }

    /// What the stream holds now; `isNotFound` if there is no such stream.
    public func streamState(_ name: String) throws(NATSError) -> StreamState {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(rawValue: 0)
        try check(js_GetStreamInfo(&info, handle, name, nil, &code), code, "js_GetStreamInfo(\(name))")
        defer { jsStreamInfo_Destroy(info) }
        return Self.state(of: info!.pointee.State)
    }


    private static func state(of state: jsStreamState) -> StreamState {
        StreamState(messages: state.Msgs, bytes: state.Bytes, firstSequence: state.FirstSeq, lastSequence: state.LastSeq,
                    consumers: Int(state.Consumers))
    }

    // MARK: Publishing

    /// The server's acknowledgement: the message is stored (on a majority of the stream's replicas).
    public struct PublishAck: Sendable, Equatable {
        public var stream: String
        public var sequence: UInt64
        /// The message id was seen within the duplicate window: nothing new was stored.
        public var duplicate: Bool
    }

    /// Publishes `payload` on `subject` with `headers` and waits for the stream's acknowledgement.
    /// A `messageID` makes retries of the same publish idempotent within the duplicate window.
    public func publish(subject: String, payload: [UInt8], headers: [(String, String)] = [],
                        messageID: String? = nil) throws(NATSError) -> PublishAck {
        var message: OpaquePointer?
        try check(payload.withUnsafeBytes { bytes in
            natsMsg_Create(&message, subject, nil, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        }, "natsMsg_Create(\(subject))")
        defer { natsMsg_Destroy(message) }
        for (key, value) in headers {
            try check(natsMsgHeader_Set(message, key, value), "natsMsgHeader_Set(\(key))")
        }
        var options = jsPubOptions()
        try check(jsPubOptions_Init(&options), "jsPubOptions_Init")
        var ack: UnsafeMutablePointer<jsPubAck>?
        var code = jsErrCode(rawValue: 0)
        let status: natsStatus = withOptionalCString(messageID) { id in
            options.MsgId = id
            return js_PublishMsg(&ack, handle, message, &options, &code)
        }
        try check(status, code, "js_PublishMsg(\(subject))")
        defer { jsPubAck_Destroy(ack) }
        return PublishAck(stream: String(cString: ack!.pointee.Stream), sequence: ack!.pointee.Sequence,
                          duplicate: ack!.pointee.Duplicate)
    }

    // MARK: Consumers

    public struct ConsumerState: Sendable, Equatable {
        /// Messages in the stream not yet delivered to this consumer: its lag.
        public var pending: UInt64
        /// Delivered and not yet acknowledged.
        public var ackPending: Int
        /// Delivered more than once.
        public var redelivered: Int
        /// The highest stream sequence below which every message is acknowledged.
        public var ackFloorStreamSequence: UInt64
    }

    /// The durable consumer's progress; `isNotFound` if there is no such consumer.
    public func consumerState(stream: String, consumer: String) throws(NATSError) -> ConsumerState {
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var code = jsErrCode(rawValue: 0)
        try check(js_GetConsumerInfo(&info, handle, stream, consumer, nil, &code), code, "js_GetConsumerInfo(\(stream), \(consumer))")
        defer { jsConsumerInfo_Destroy(info) }
        let i = info!.pointee
        return ConsumerState(pending: i.NumPending, ackPending: Int(i.NumAckPending), redelivered: Int(i.NumRedelivered),
                             ackFloorStreamSequence: i.AckFloor.Stream)
    }

    /// Removes the durable consumer and its progress: a consumer of that name created afterwards
    /// starts from the stream's first message again.
    public func deleteConsumer(stream: String, consumer: String) throws(NATSError) {
        var code = jsErrCode(rawValue: 0)
        try check(js_DeleteConsumer(handle, stream, consumer, nil, &code), code, "js_DeleteConsumer(\(stream), \(consumer))")
    }

    /// A durable pull consumer on `stream` (created if missing, bound if it exists) for the
    /// messages on `subject` (a filter: "glfd.ingest.>" takes every source). A message not
    /// acknowledged within `ackWaitSeconds` is delivered again; at most `maxAckPending` are out
    /// unacknowledged at once.
    public func pullConsumer(stream: String, subject: String, durable: String, ackWaitSeconds: Double = 30,
                             maxAckPending: Int = 4_096) throws(NATSError) -> PullConsumer {
        try PullConsumer(jetStream: self, stream: stream, subject: subject, durable: durable,
                         ackWaitSeconds: ackWaitSeconds, maxAckPending: maxAckPending)
    }
}

/// Calls `body` with a C string of `value`, or with nil.
func withOptionalCString<R>(_ value: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let value else { return body(nil) }
    return value.withCString { body($0) }
}
