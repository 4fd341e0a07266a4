// A ZeroMQ context: libzmq's I/O threads and the namespace of inproc:// endpoints.
//
// libzmq makes a context thread-safe, so one is shared by every thread of the process. Sockets
// keep their context alive, so it is terminated (zmq_ctx_term) only once its last socket is gone,
// and that cannot hang on an open socket. `shutdown()` is how another thread stops a socket's
// owner: every blocking call on the context's sockets then fails with `isTerminated`.
import CZeroMQ

public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// `ioThreads` move bytes between sockets and the network; one serves about a gigabyte a
    /// second, so the default of one is right unless the daemon's traffic says otherwise.
    public init(ioThreads: Int = 1) throws(ZMQError) {
        guard let context = zmq_ctx_new() else { throw ZMQError(code: zmq_errno(), operation: "zmq_ctx_new") }
        do {
            try check(zmq_ctx_set(context, ZMQ_IO_THREADS, Int32(ioThreads)), "zmq_ctx_set(ZMQ_IO_THREADS, \(ioThreads))")
        } catch {
            zmq_ctx_term(context)
            throw error
        }
        handle = context
    }

    deinit {
        // No socket refers to us any more, so this waits at most for their linger periods.
        while zmq_ctx_term(handle) == -1 && zmq_errno() == EINTR {}
    }

    /// Makes blocking calls on this context's sockets, in any thread, fail at once with
    /// `isTerminated`, as well as creating new sockets. Their owners should then close them.
    /// Safe to call from any thread, and more than once.
    public func shutdown() {
        zmq_ctx_shutdown(handle)
    }
}
