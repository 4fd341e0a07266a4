// CURVE on: a client whose public key is on the allowlist is served; a client with another key,
// and a plain client, get nothing (the handshake is refused by our ZAP handler).
import Daemon
import Foundation
import GLFDTesting
import Protocol
import Testing
import ZeroMQ

@Suite struct CurveSecurityTests {
    @Test(.enabled(if: ZMQCurve.isAvailable, "libzmq without CURVE"))
    func onlyAllowedKeysGetIn() throws {
        let server = try ZMQCurve.generateKeyPair(), allowed = try ZMQCurve.generateKeyPair(), stranger = try ZMQCurve.generateKeyPair()
        var settings = testDaemonSettings(temporaryDaemonDirectory())
        settings.trainingEnabled = false
        settings.server.curve = CurveSettings(serverSecretKey: try ZMQCurve.z85Decode(server.secret),
                                              allowedClients: [try ZMQCurve.z85Decode(allowed.public)])
        let daemon = try GLFDaemon(settings: settings)
        daemon.start()
        defer { daemon.stop() }
        let endpoint = daemon.server.boundEndpoints.requests
        let context = try ZMQContext()

        func client(_ pair: (public: String, secret: String)?) throws -> ZMQSocket {
            let socket = try ZMQSocket(context: context, type: .dealer)
            try socket.set(.receiveTimeout, to: pair == nil || pair!.public != allowed.public ? 1500 : 60_000)
            if let pair {
                try socket.set(.curveServerKey, to: try ZMQCurve.z85Decode(server.public))
                try socket.set(.curvePublicKey, to: try ZMQCurve.z85Decode(pair.public))
                try socket.set(.curveSecretKey, to: try ZMQCurve.z85Decode(pair.secret))
            }
            try socket.connect(endpoint)
            try socket.send(Request(id: .number(1), .status).encode())
            return socket
        }

        let good = try client(allowed)
        let reply = try Reply.decode(try good.receive())
        #expect(try reply.result(as: StatusResult.self).protocolVersion == "glfd/1")

        for (name, socket) in [("a stranger's key", try client(stranger)), ("a plain client", try client(nil))] {
            do {
                _ = try socket.receive()
                Issue.record("\(name) got a reply")
            } catch {
                #expect(error.isTimeout, "\(name): \(error)")
            }
        }
    }

    @Test func keyFilesLoadWithCommentsAndRefuseGarbage() throws {
        let pair = try ZMQCurve.generateKeyPair(), client = try ZMQCurve.generateKeyPair()
        let directory = temporaryDaemonDirectory()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let secret = directory.appendingPathComponent("server.key").path, allow = directory.appendingPathComponent("allowed").path
        try "# glfd CURVE secret key\n\(pair.secret)\n".write(toFile: secret, atomically: true, encoding: .utf8)
        try "# laptop\n\(client.public)  # alice\n\n".write(toFile: allow, atomically: true, encoding: .utf8)
        let loaded = try CurveSettings.load(secretKeyFile: secret, allowedClientsFile: allow)
        #expect(loaded.serverSecretKey == (try ZMQCurve.z85Decode(pair.secret)))
        #expect(loaded.allowedClients == [try ZMQCurve.z85Decode(client.public)])
        try "not a key\n".write(toFile: allow, atomically: true, encoding: .utf8)
        #expect(throws: (any Error).self) { _ = try CurveSettings.load(secretKeyFile: secret, allowedClientsFile: allow) }
    }
}
