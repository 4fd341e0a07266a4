// Messages are lists of frames. libzmq delivers a multipart message whole or not at all, so the
// API does too: `send` takes every frame of one message, `receive` returns every frame of one.
// Frames may be empty: that is how REQ and ROUTER mark where the routing envelope ends.
import CZeroMQ

extension ZMQSocket {
    /// Sends one message of `frames.count` parts (ZMQ_SNDMORE on all but the last), copying them.
    /// Only the first frame can wait (`sendTimeout`) or fail for a full queue or an unknown
    /// ROUTER peer: once it is accepted libzmq takes the rest of the message without waiting.
    /// With `dontWait` a full queue fails at once with `isTimeout` instead of blocking.
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws(ZMQError) {
        precondition(!frames.isEmpty, "a message has at least one frame")
        let socket = try handle("zmq_send")
        for (index, frame) in frames.enumerated() {
            var flags = dontWait ? ZMQ_DONTWAIT : 0
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            let code = frame.withUnsafeBytes { zmq_send(socket, $0.baseAddress, $0.count, flags) }
            try check(code, "zmq_send(frame \(index + 1) of \(frames.count), \(frame.count) bytes)")
        }
    }

    /// Receives the next message, all of its frames. Waits up to `receiveTimeout` (forever by
    /// default) and then fails with `isTimeout`; with `dontWait` it fails so at once if nothing
    /// is queued. A ROUTER's message starts with the sender's routing id.
    public func receive(dontWait: Bool = false) throws(ZMQError) -> [[UInt8]] {
        let socket = try handle("zmq_msg_recv")
        var frames: [[UInt8]] = []
        while true {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            // The rest of a message arrives with its first frame, so only the first may wait.
            let flags = frames.isEmpty && !dontWait ? 0 : ZMQ_DONTWAIT
            if zmq_msg_recv(&message, socket, flags) == -1 {
                let errno = zmq_errno()
                if errno == EINTR && !frames.isEmpty { continue }  // never leave a message half read
                throw ZMQError(code: errno, operation: "zmq_msg_recv")
            }
            frames.append(Array(UnsafeRawBufferPointer(start: zmq_msg_data(&message), count: zmq_msg_size(&message))))
            if zmq_msg_more(&message) == 0 { return frames }
        }
    }
}
