// Socket options as typed keys: `try socket.set(.receiveTimeout, to: 500)`,
// `try socket.get(.sendHighWaterMark)`. Each key knows its libzmq name and how its value is laid
// out (int, int64, bool as int, bytes or text), so a wrong type does not compile. Most options take
// effect only for connections made after they are set: set them before `bind` and `connect`.
import CZeroMQ

public struct ZMQSocketOption<Value>: Sendable {
    /// libzmq's option number (ZMQ_SNDHWM, ...) and its name, for error messages.
    public let name: Int32
    public let label: String
    /// Bytes offered to zmq_getsockopt; for CURVE keys the size also picks binary over Z85.
    let capacity: Int
    let encode: @Sendable (Value) -> [UInt8]
    let decode: @Sendable (UnsafeRawBufferPointer) -> Value
}

extension ZMQSocketOption where Value == Int32 {
    static func int32(_ name: Int32, _ label: String) -> Self {
        Self(name: name, label: label, capacity: 4,
             encode: { withUnsafeBytes(of: $0, Array.init) },
             decode: { $0.loadUnaligned(as: Int32.self) })
    }

    /// Messages queued per peer before sending blocks or drops (by socket type); 0 is no limit.
    /// Default 1000.
    public static var sendHighWaterMark: Self { .int32(ZMQ_SNDHWM, "ZMQ_SNDHWM") }
    /// Messages queued per peer on the receiving side before libzmq stops reading from it.
    public static var receiveHighWaterMark: Self { .int32(ZMQ_RCVHWM, "ZMQ_RCVHWM") }
    /// Milliseconds unsent messages may hold up the context's termination after `close`; -1 forever.
    public static var linger: Self { .int32(ZMQ_LINGER, "ZMQ_LINGER") }
    /// Milliseconds `receive` waits before failing with `isTimeout`; -1 (the default) forever.
    public static var receiveTimeout: Self { .int32(ZMQ_RCVTIMEO, "ZMQ_RCVTIMEO") }
    /// Milliseconds `send` waits for room in a full queue before failing with `isTimeout`; -1 forever.
    public static var sendTimeout: Self { .int32(ZMQ_SNDTIMEO, "ZMQ_SNDTIMEO") }
    /// TCP keepalive (SO_KEEPALIVE): -1 the OS default, 0 off, 1 on. Finds peers that vanished
    /// without closing their connection (a pulled cable, a suspended laptop).
    public static var tcpKeepalive: Self { .int32(ZMQ_TCP_KEEPALIVE, "ZMQ_TCP_KEEPALIVE") }
    /// Seconds idle before the first keepalive probe (TCP_KEEPIDLE); -1 the OS default.
    public static var tcpKeepaliveIdle: Self { .int32(ZMQ_TCP_KEEPALIVE_IDLE, "ZMQ_TCP_KEEPALIVE_IDLE") }
    /// Seconds between keepalive probes (TCP_KEEPINTVL); -1 the OS default.
    public static var tcpKeepaliveInterval: Self { .int32(ZMQ_TCP_KEEPALIVE_INTVL, "ZMQ_TCP_KEEPALIVE_INTVL") }
    /// Unanswered probes before the connection is dropped (TCP_KEEPCNT); -1 the OS default.
    public static var tcpKeepaliveCount: Self { .int32(ZMQ_TCP_KEEPALIVE_CNT, "ZMQ_TCP_KEEPALIVE_CNT") }
}

extension ZMQSocketOption where Value == Int64 {
    /// Largest inbound frame in bytes; -1 (the default) is no limit. libzmq checks each frame, not
    /// the whole multipart message, and a peer that sends a larger frame is disconnected: that frame
    /// and the rest of its message are never delivered. It protects the daemon's memory from one
    /// huge frame, not from many frames.
    public static var maxMessageSize: Self {
        Self(name: ZMQ_MAXMSGSIZE, label: "ZMQ_MAXMSGSIZE", capacity: 8,
             encode: { withUnsafeBytes(of: $0, Array.init) },
             decode: { $0.loadUnaligned(as: Int64.self) })
    }
}

extension ZMQSocketOption where Value == Bool {
    static func bool(_ name: Int32, _ label: String) -> Self {
        Self(name: name, label: label, capacity: 4,
             encode: { withUnsafeBytes(of: Int32($0 ? 1 : 0), Array.init) },
             decode: { $0.loadUnaligned(as: Int32.self) != 0 })
    }

    /// A ROUTER fails a send to an unknown routing id with `isHostUnreachable` instead of
    /// silently dropping it: the daemon learns that a client went away. Write-only in libzmq.
    public static var routerMandatory: Self { .bool(ZMQ_ROUTER_MANDATORY, "ZMQ_ROUTER_MANDATORY") }
    /// Queue messages only to completed connections, so a client with no server yet fails (or
    /// blocks) at once instead of piling requests up for a server that may never come.
    public static var immediate: Self { .bool(ZMQ_IMMEDIATE, "ZMQ_IMMEDIATE") }
    /// This socket is the CURVE server (it holds `curveSecretKey`; clients know its public key).
    public static var curveServer: Self { .bool(ZMQ_CURVE_SERVER, "ZMQ_CURVE_SERVER") }
}

extension ZMQSocketOption where Value == [UInt8] {
    static func bytes(_ name: Int32, _ label: String, capacity: Int) -> Self {
        Self(name: name, label: label, capacity: capacity, encode: { $0 }, decode: { Array($0) })
    }

    /// The identity a ROUTER peer sees for this socket (1 to 255 bytes, not starting with 0);
    /// without one the ROUTER makes up 5 bytes. Set before `connect`.
    public static var routingId: Self { .bytes(ZMQ_ROUTING_ID, "ZMQ_ROUTING_ID", capacity: 255) }
    /// CURVE keys: 32 bytes each (`ZMQCurve.z85Decode` turns the printable form into them).
    /// A server sets its secret key; a client sets its own key pair and the server's public key.
    public static var curveSecretKey: Self { .bytes(ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", capacity: 32) }
    public static var curvePublicKey: Self { .bytes(ZMQ_CURVE_PUBLICKEY, "ZMQ_CURVE_PUBLICKEY", capacity: 32) }
    public static var curveServerKey: Self { .bytes(ZMQ_CURVE_SERVERKEY, "ZMQ_CURVE_SERVERKEY", capacity: 32) }
}

extension ZMQSocketOption where Value == String {
    static func text(_ name: Int32, _ label: String, capacity: Int) -> Self {
        // libzmq takes text without its NUL and hands it back NUL-terminated.
        Self(name: name, label: label, capacity: capacity,
             encode: { Array($0.utf8) },
             decode: { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
    }

    /// The ZAP domain a server's connections are authenticated in (with CURVE, a ZAP handler
    /// decides which client keys are allowed; without one, any client with the server key is).
    public static var zapDomain: Self { .text(ZMQ_ZAP_DOMAIN, "ZMQ_ZAP_DOMAIN", capacity: 256) }
    static var lastEndpoint: Self { .text(ZMQ_LAST_ENDPOINT, "ZMQ_LAST_ENDPOINT", capacity: 1024) }
}

extension ZMQSocket {
    public func set<Value>(_ option: ZMQSocketOption<Value>, to value: Value) throws(ZMQError) {
        let socket = try handle("zmq_setsockopt(\(option.label))")
        let code = option.encode(value).withUnsafeBytes { zmq_setsockopt(socket, option.name, $0.baseAddress, $0.count) }
        try check(code, "zmq_setsockopt(\(option.label))")
    }

    public func get<Value>(_ option: ZMQSocketOption<Value>) throws(ZMQError) -> Value {
        let socket = try handle("zmq_getsockopt(\(option.label))")
        var buffer = [UInt8](repeating: 0, count: option.capacity)
        var size = option.capacity
        let code = buffer.withUnsafeMutableBytes { zmq_getsockopt(socket, option.name, $0.baseAddress, &size) }
        try check(code, "zmq_getsockopt(\(option.label))")
        return buffer.withUnsafeBytes { option.decode(UnsafeRawBufferPointer(rebasing: $0.prefix(size))) }
    }

    /// A SUB socket receives the messages whose first frame starts with one of its prefixes; it
    /// receives nothing until it subscribes. The empty prefix matches every message.
    public func subscribe(_ prefix: [UInt8] = []) throws(ZMQError) {
        try set(.bytes(ZMQ_SUBSCRIBE, "ZMQ_SUBSCRIBE", capacity: 0), to: prefix)
    }

    /// Removes one earlier `subscribe` of the same prefix (subscriptions are counted).
    public func unsubscribe(_ prefix: [UInt8] = []) throws(ZMQError) {
        try set(.bytes(ZMQ_UNSUBSCRIBE, "ZMQ_UNSUBSCRIBE", capacity: 0), to: prefix)
    }
}
