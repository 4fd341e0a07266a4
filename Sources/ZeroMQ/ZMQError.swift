// libzmq's failures as one typed error that keeps libzmq's own message and the call that failed.
import CZeroMQ
import Foundation

public struct ZMQError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The errno libzmq set: a system one (EAGAIN, EADDRINUSE, EHOSTUNREACH, ...) or one of its own
    /// (ETERM, EFSM, ...), which live above `ZMQ_HAUSNUMERO`.
    public let code: Int32
    /// The C function that failed and what it was given, e.g. "zmq_bind(tcp://127.0.0.1:5555)".
    public let operation: String
    /// `zmq_strerror(code)`: libzmq's wording, which covers its own codes and errno values.
    public let message: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
        self.message = String(cString: zmq_strerror(code))
    }

    public var description: String { "\(operation): \(message) (\(code))" }

    /// Nothing arrived (or could be queued) within the socket's timeout, or at once with `dontWait`.
    public var isTimeout: Bool { code == EAGAIN }
    /// A signal interrupted a blocking call; retry it, or check why the process was signalled.
    public var isInterrupted: Bool { code == EINTR }
    /// The context was shut down (`ZMQContext.shutdown`): close the socket and stop using it.
    public var isTerminated: Bool { code == ETERM }
    /// A ROUTER with `routerMandatory` was asked to send to a peer it does not know (any longer).
    public var isHostUnreachable: Bool { code == EHOSTUNREACH }
    /// libzmq was built without the capability asked for (CURVE, say).
    public var isNotSupported: Bool { code == ENOTSUP }
}

/// Turns a libzmq return code (-1 on failure, errno in `zmq_errno()`) into a thrown `ZMQError`.
@inline(__always)
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(ZMQError) {
    guard code == -1 else { return }
    let errno = zmq_errno()  // before building the operation's text, which may allocate
    throw ZMQError(code: errno, operation: operation())
}
