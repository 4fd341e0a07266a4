// Waiting on several sockets at once (zmq_poll): the daemon's server loop waits on its ROUTER for
// requests and on an inproc socket for the replies its workers hand back, in one thread.
import CZeroMQ

public struct ZMQEvents: OptionSet, Sendable, Hashable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// At least one whole message can be received without waiting.
    public static let readable = ZMQEvents(rawValue: Int16(ZMQ_POLLIN))
    /// At least one message can be sent without waiting (a queue has room).
    public static let writable = ZMQEvents(rawValue: Int16(ZMQ_POLLOUT))
}

extension ZeroMQ {
    /// Waits until one of the sockets has one of the events asked of it, or `timeoutMilliseconds`
    /// pass (0 checks and returns at once, -1 waits forever). Returns, for each socket in order,
    /// the events it has now: empty for all of them after a timeout. Like every socket call, it must
    /// run on the thread that owns the sockets. A signal makes it fail with `isInterrupted`, a shut
    /// down context with `isTerminated`.
    public static func poll(_ items: [(socket: ZMQSocket, events: ZMQEvents)],
                            timeoutMilliseconds: Int) throws(ZMQError) -> [ZMQEvents] {
        var pollItems: [zmq_pollitem_t] = []
        pollItems.reserveCapacity(items.count)
        for item in items {
            let socket = try item.socket.handle("zmq_poll")
            pollItems.append(zmq_pollitem_t(socket: socket, fd: 0, events: item.events.rawValue, revents: 0))
        }
        // The sockets must stay open while libzmq holds their handles.
        let code = withExtendedLifetime(items) { zmq_poll(&pollItems, Int32(pollItems.count), timeoutMilliseconds) }
        try check(code, "zmq_poll(\(items.count) sockets, \(timeoutMilliseconds) ms)")
        return pollItems.map { ZMQEvents(rawValue: $0.revents) }
    }
}
