// A glfd/1 client over a DEALER socket, with several requests in flight for bulk ingest.
import Foundation
import Protocol
import ZeroMQ

final class GLFDClient {
    let socket: ZMQSocket
    private var nextID: Int64 = 1

    init(endpoint: String, timeoutMilliseconds: Int32, curve: ClientCurve? = nil) throws {
        socket = try ZMQSocket(context: try ZMQContext(), type: .dealer)
        try socket.set(.receiveTimeout, to: timeoutMilliseconds)
        try curve?.apply(to: socket)
        try socket.connect(endpoint)
    }

    /// Sends a request and returns its id (for `receive`).
    func send(_ command: Command) throws -> RequestID {
        let id = RequestID.number(nextID)
        nextID += 1
        try socket.send(Request(id: id, command).encode())
        return id
    }

    func receive() throws -> Reply {
        do {
            return try Reply.decode(try socket.receive())
        } catch let error as ZMQError where error.isTimeout {
            throw ClientError("no reply from glfd within the timeout (is it running? see --endpoint)")
        }
    }

    /// One request, its reply.
    func call(_ command: Command) throws -> Reply {
        let id = try send(command)
        while true {
            let reply = try receive()
            if reply.id == id { return reply }
        }
    }
}

struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// CURVE on a client socket: the server's public key and this client's key pair (Z85 text).
struct ClientCurve {
    var serverPublicKey: String
    var secretKey: String

    func apply(to socket: ZMQSocket) throws {
        try socket.set(.curveServerKey, to: try ZMQCurve.z85Decode(serverPublicKey))
        try socket.set(.curveSecretKey, to: try ZMQCurve.z85Decode(secretKey))
        try socket.set(.curvePublicKey, to: try ZMQCurve.z85Decode(try ZMQCurve.publicKey(secret: secretKey)))
    }
}
