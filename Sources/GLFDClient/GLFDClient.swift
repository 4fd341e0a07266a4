// The glfd/1 client in Swift (protocol/PROTOCOL.md): a DEALER socket, requests matched to their
// replies by id so that several may be in flight, CURVE, and typed errors. glfctl, the
// benchmarks and the daemon's tests all talk to glfd through it.
//
// One thread uses a client at a time: a ZeroMQ socket is not thread-safe. Threads that query in
// parallel each open their own.
import Foundation
import Protocol
import ZeroMQ

public final class GLFDClient {
    public let endpoint: String
    public let socket: ZMQSocket
    private let timeoutMilliseconds: Int32
    private var nextID: Int64 = 1

    /// Connects a DEALER socket to `endpoint`: one endpoint, or several separated by commas
    /// (replicas of one catalog, issue 16), to which the DEALER sends requests in turn. `context`
    /// defaults to a new one (the socket keeps its context alive); `timeoutMilliseconds` bounds
    /// every wait for a reply.
    public init(endpoint: String, context: ZMQContext? = nil, timeoutMilliseconds: Int32 = 300_000,
                curve: ClientCurve? = nil) throws {
        self.endpoint = endpoint
        self.timeoutMilliseconds = timeoutMilliseconds
        socket = try ZMQSocket(context: try context ?? ZMQContext(), type: .dealer)
        try socket.set(.receiveTimeout, to: timeoutMilliseconds)
        try curve?.apply(to: socket)
        for one in endpoint.split(separator: ",") { try socket.connect(String(one)) }
    }

    /// Sends a request without waiting; returns its id, which its reply will carry.
    @discardableResult
    public func send(_ command: Command) throws -> RequestID {
        let id = RequestID.number(nextID)
        nextID += 1
        try socket.send(Request(id: id, command).encode())
        return id
    }

    /// The next reply, whichever request it answers.
    public func receive() throws -> Reply {
        let frames: [[UInt8]]
        do {
            frames = try socket.receive()
        } catch where error.isTimeout {
            throw GLFDClientError.timeout(endpoint: endpoint, milliseconds: timeoutMilliseconds)
        }
        do {
            return try Reply.decode(frames)
        } catch {
            throw GLFDClientError.malformedReply(error)
        }
    }

    /// One request, its reply (replies to earlier requests that arrive first are dropped).
    public func call(_ command: Command) throws -> Reply {
        let id = try send(command)
        while true {
            let reply = try receive()
            if reply.id == id { return reply }
        }
    }

    /// One request, its result decoded; glfd's refusal is thrown as its `ProtocolError`.
    public func result<T: Decodable>(_ command: Command, as type: T.Type) throws -> T {
        try call(command).result(as: type)
    }

    /// What `pipeline` hands back: the replies in command order, each one's time from send to
    /// reply in seconds, and the wall time of the whole run.
    public struct PipelineRun {
        public var replies: [Reply]
        public var latencies: [Double]
        public var seconds: Double
    }

    /// Sends `commands`, keeping up to `inflight` of them unanswered (glfd allows 8 per client).
    public func pipeline(_ commands: [Command], inflight: Int) throws -> PipelineRun {
        precondition(inflight >= 1, "at least one request must be in flight")
        var replies = [Reply?](repeating: nil, count: commands.count)
        var latencies = [Double](repeating: 0, count: commands.count)
        var pending: [RequestID: (index: Int, sent: ContinuousClock.Instant)] = [:]
        var next = 0, done = 0
        let started = ContinuousClock.now
        while done < commands.count {
            while next < commands.count && pending.count < inflight {
                let sentAt = ContinuousClock.now
                pending[try send(commands[next])] = (next, sentAt)
                next += 1
            }
            let reply = try receive()
            guard let id = reply.id, let request = pending.removeValue(forKey: id) else { continue }
            latencies[request.index] = Self.seconds(since: request.sent)
            replies[request.index] = reply
            done += 1
        }
        return PipelineRun(replies: replies.map { $0! }, latencies: latencies, seconds: Self.seconds(since: started))
    }

    private static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }
}

/// What can go wrong on the client's side of a request. (glfd's own refusals are `ProtocolError`s,
/// thrown by `Reply.result(as:)`.)
public enum GLFDClientError: Error, CustomStringConvertible {
    /// No reply within the client's timeout: glfd is not running there, or is overloaded.
    case timeout(endpoint: String, milliseconds: Int32)
    /// A reply that is not glfd/1 (another service on the endpoint, or a bug in glfd).
    case malformedReply(ProtocolError)

    public var description: String {
        switch self {
        case .timeout(let endpoint, let milliseconds):
            "no reply from glfd at \(endpoint) within \(Double(milliseconds) / 1000) s (is it running there?)"
        case .malformedReply(let error):
            "a reply that is not glfd/1: \(error)"
        }
    }
}

/// CURVE on a client socket: the server's public key and this client's secret key (Z85 text);
/// the public key is derived from the secret one.
public struct ClientCurve: Sendable, Codable, Equatable {
    public var serverPublicKey: String
    public var secretKey: String

    public init(serverPublicKey: String, secretKey: String) {
        self.serverPublicKey = serverPublicKey
        self.secretKey = secretKey
    }

    public func apply(to socket: ZMQSocket) throws {
        try socket.set(.curveServerKey, to: try ZMQCurve.z85Decode(serverPublicKey))
        try socket.set(.curveSecretKey, to: try ZMQCurve.z85Decode(secretKey))
        try socket.set(.curvePublicKey, to: try ZMQCurve.z85Decode(try ZMQCurve.publicKey(secret: secretKey)))
    }
}
