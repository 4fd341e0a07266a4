// A ZeroMQ socket: its kind, its endpoints and its lifetime. Sending and receiving are in
// ZMQSocket+Messaging.swift, options in ZMQSocketOption.swift.
//
// libzmq sockets are not thread-safe, so neither is this class: one thread at a time uses a socket
// (creating it on the thread that will use it is simplest). To wake a thread blocked in a socket
// call, shut the context down from another thread, or poll the socket together with an inproc
// socket that other threads send to.
import CZeroMQ

/// The socket patterns glfd uses: the daemon answers on a ROUTER and announces on a PUB; clients
/// ask with a DEALER or REQ and listen with a SUB; PAIR and PUSH/PULL connect threads over inproc.
public enum ZMQSocketType: Sendable, Equatable, CaseIterable {
    case router, dealer, req, rep, pub, sub, pair, push, pull

    var cValue: Int32 {
        switch self {
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .pair: ZMQ_PAIR
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        }
    }
}

public final class ZMQSocket {
    public let type: ZMQSocketType
    /// Held so the context outlives the socket (zmq_ctx_term would wait for it forever).
    public let context: ZMQContext
    private var socket: UnsafeMutableRawPointer?

    /// `linger` (milliseconds) is how long pending outgoing messages may delay the context's
    /// termination once the socket is closed. libzmq's default is forever; ours is 0: whatever is
    /// still queued is dropped, so shutting the daemon down never hangs on an absent peer.
    public init(context: ZMQContext, type: ZMQSocketType, linger: Int32 = 0) throws(ZMQError) {
        guard let socket = zmq_socket(context.handle, type.cValue) else {
            throw ZMQError(code: zmq_errno(), operation: "zmq_socket(\(type))")
        }
        self.socket = socket
        self.type = type
        self.context = context
        try set(.linger, to: linger)
    }

    deinit { close() }

    /// Closes the socket; later calls on it fail with ENOTSOCK. Never blocks (see `linger`).
    public func close() {
        if let socket { zmq_close(socket) }
        socket = nil
    }

    public var isClosed: Bool { socket == nil }

    /// The libzmq socket, or ENOTSOCK once closed.
    func handle(_ operation: @autoclosure () -> String) throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let socket else { throw ZMQError(code: ENOTSOCK, operation: operation()) }
        return socket
    }

    // MARK: Endpoints

    /// Accepts connections on `endpoint`, e.g. "tcp://127.0.0.1:5555", "tcp://127.0.0.1:*" (a free
    /// port; read it back from `lastEndpoint`), "ipc:///run/glfd.sock" or "inproc://replies".
    public func bind(_ endpoint: String) throws(ZMQError) {
        try check(zmq_bind(handle("zmq_bind"), endpoint), "zmq_bind(\(endpoint))")
    }

    /// Connects to `endpoint`. libzmq connects in the background and reconnects after failures, so
    /// this succeeds even if nobody listens yet; messages wait in the socket's queue meanwhile.
    public func connect(_ endpoint: String) throws(ZMQError) {
        try check(zmq_connect(handle("zmq_connect"), endpoint), "zmq_connect(\(endpoint))")
    }

    /// Stops listening on an endpoint given to `bind` (for a wildcard, the one `lastEndpoint` names).
    public func unbind(_ endpoint: String) throws(ZMQError) {
        try check(zmq_unbind(handle("zmq_unbind"), endpoint), "zmq_unbind(\(endpoint))")
    }

    public func disconnect(_ endpoint: String) throws(ZMQError) {
        try check(zmq_disconnect(handle("zmq_disconnect"), endpoint), "zmq_disconnect(\(endpoint))")
    }

    /// The endpoint last bound or connected, resolved: "tcp://127.0.0.1:41234" after binding
    /// "tcp://127.0.0.1:*". Empty if there is none.
    public var lastEndpoint: String {
        get throws(ZMQError) { try get(.lastEndpoint) }
    }
}
