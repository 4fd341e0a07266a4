// A durable pull consumer: the client asks for up to N messages and gets what the stream has for
// it, each to be acknowledged (or refused) on its own. Nothing arrives unasked, so the consumer's
// pace is the store's, and the server holds the rest (its `pending`, the consumer's lag).
//
// One thread at a time fetches (the C subscription is not meant for concurrent fetches); the
// messages it returns may be acknowledged from any thread.
import CNATS
import Foundation

public final class PullConsumer: @unchecked Sendable {
    public let jetStream: JetStream
    public let stream: String
    public let durable: String
    let handle: OpaquePointer

    init(jetStream: JetStream, stream: String, subject: String, durable: String, ackWaitSeconds: Double,
         maxAckPending: Int) throws(NATSError) {
        self.jetStream = jetStream
        self.stream = stream
        self.durable = durable
        // The consumer is created (or brought to this configuration) on its own, and the
        // subscription only binds to it: a consumer the client library created, it deletes when
        // the subscription goes, and a durable's progress must outlive every process that reads it.
        var code = jsErrCode(rawValue: 0)
        let created: natsStatus = durable.withCString { name in
            subject.withCString { filter in
                var config = jsConsumerConfig()
                _ = jsConsumerConfig_Init(&config)
                config.Durable = name
                config.FilterSubject = filter
                config.AckPolicy = js_AckExplicit
                config.DeliverPolicy = js_DeliverAll
                config.AckWait = Int64(ackWaitSeconds * 1e9)
                config.MaxAckPending = Int64(maxAckPending)
                var info: UnsafeMutablePointer<jsConsumerInfo>?
                var status = js_AddConsumer(&info, jetStream.handle, stream, &config, nil, &code)
                if status != NATS_OK && (code == JSConsumerNameExistErr || code == JSConsumerExistingActiveErr) {
                    code = jsErrCode(rawValue: 0)
                    status = js_UpdateConsumer(&info, jetStream.handle, stream, &config, nil, &code)
                }
                if let info { jsConsumerInfo_Destroy(info) }
                return status
            }
        }
        try check(created, code, "js_AddConsumer(\(stream), \(durable), \(subject))")
        var subscription: OpaquePointer?
        code = jsErrCode(rawValue: 0)
        let bound: natsStatus = stream.withCString { streamName in
            durable.withCString { name in
                var options = jsSubOptions()
                _ = jsSubOptions_Init(&options)
                options.Stream = streamName
                options.Consumer = name
                return js_PullSubscribe(&subscription, jetStream.handle, subject, name, nil, &options, &code)
            }
        }
        try check(bound, code, "js_PullSubscribe(\(stream), \(durable))")
        handle = subscription!
    }

    deinit {
        // The consumer was bound, not created by the subscription: it stays on the server.
        natsSubscription_Destroy(handle)
    }

    /// Up to `batch` messages, waiting at most `timeoutMilliseconds` for the first; none (not an
    /// error) when the stream has nothing for the consumer within that time.
    public func fetch(batch: Int, timeoutMilliseconds: Int64) throws(NATSError) -> [JetStreamMessage] {
        var list = natsMsgList()
        var code = jsErrCode(rawValue: 0)
        let status = natsSubscription_Fetch(&list, handle, Int32(batch), timeoutMilliseconds, &code)
        var messages: [JetStreamMessage] = []
        messages.reserveCapacity(Int(list.Count))
        for index in 0..<Int(list.Count) {
            if let message = list.Msgs[index] {
                messages.append(JetStreamMessage(taking: message))
                list.Msgs[index] = nil  // now ours: natsMsgList_Destroy skips it
            }
        }
        natsMsgList_Destroy(&list)
        if status == NATS_TIMEOUT { return messages }
        try check(status, code, "natsSubscription_Fetch(\(stream), \(durable), \(batch))")
        return messages
    }

    /// The consumer's progress on the server.
    public func state() throws(NATSError) -> JetStream.ConsumerState {
        try jetStream.consumerState(stream: stream, consumer: durable)
    }
}

/// One message fetched from a stream: its body, headers and place in the stream, and the answers
/// a consumer owes the server for it.
public final class JetStreamMessage: @unchecked Sendable {
    let handle: OpaquePointer

    init(taking handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        natsMsg_Destroy(handle)
    }

    public var subject: String { String(cString: natsMsg_GetSubject(handle)) }

    /// The body's bytes, copied.
    public var payload: [UInt8] {
        let count = Int(natsMsg_GetDataLength(handle))
        guard count > 0, let data = natsMsg_GetData(handle) else { return [] }
        return data.withMemoryRebound(to: UInt8.self, capacity: count) { Array(UnsafeBufferPointer(start: $0, count: count)) }
    }

    /// The first value of header `key`, or nil.
    public func header(_ key: String) -> String? {
        var value: UnsafePointer<CChar>?
        guard natsMsgHeader_Get(handle, key, &value) == NATS_OK, let value else { return nil }
        return String(cString: value)
    }

    public struct Metadata: Sendable, Equatable {
        /// The message's sequence in the stream: the same on every delivery, so the key that makes
        /// redeliveries idempotent.
        public var streamSequence: UInt64
        public var consumerSequence: UInt64
        /// 1 on the first delivery, more on redeliveries.
        public var deliveries: UInt64
        /// Messages left for the consumer after this one.
        public var pending: UInt64
        /// When the stream stored it, nanoseconds since 1970.
        public var timestampNanoseconds: Int64
    }

    public func metadata() throws(NATSError) -> Metadata {
        var meta: UnsafeMutablePointer<jsMsgMetaData>?
        try check(natsMsg_GetMetaData(&meta, handle), "natsMsg_GetMetaData")
        defer { jsMsgMetaData_Destroy(meta) }
        let m = meta!.pointee
        return Metadata(streamSequence: m.Sequence.Stream, consumerSequence: m.Sequence.Consumer, deliveries: m.NumDelivered,
                        pending: m.NumPending, timestampNanoseconds: m.Timestamp)
    }

    /// Done with it: the server will not deliver it again. Sent without waiting (a batch's
    /// acknowledgements then cost one `NATSConnection.flush`); one lost on the way means a
    /// redelivery, which a consumer that keys on `streamSequence` stores once anyway.
    public func acknowledge() throws(NATSError) {
        try check(natsMsg_Ack(handle, nil), "natsMsg_Ack")
    }

    /// `acknowledge`, and wait for the server to confirm it.
    public func acknowledgeConfirmed() throws(NATSError) {
        var code = jsErrCode(rawValue: 0)
        try check(natsMsg_AckSync(handle, nil, &code), code, "natsMsg_AckSync")
    }

    /// Not now: deliver it again (after `delayMilliseconds`).
    public func refuse(delayMilliseconds: Int64 = 0) throws(NATSError) {
        try check(natsMsg_NakWithDelay(handle, delayMilliseconds, nil), "natsMsg_NakWithDelay")
    }

    /// Never: the message cannot be processed (malformed), so it is not delivered again.
    public func terminate() throws(NATSError) {
        try check(natsMsg_Term(handle, nil), "natsMsg_Term")
    }
}
