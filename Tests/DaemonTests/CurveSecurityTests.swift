// CURVE on: a client whose public key is on the allowlist is served; a client with another key,
// and a plain client, get nothing (the handshake is refused by our ZAP handler).
import Daemon
import Foundation
import GLFDClient
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

    /// A replica follows a trainer that has CURVE on with the trainer's public key and its own
    /// secret key (on the trainer's allowlist); a replica without keys installs nothing.
    @Test(.enabled(if: ZMQCurve.isAvailable, "libzmq without CURVE"))
    func aReplicaFollowsATrainerOverCurve() throws {
        let server = try ZMQCurve.generateKeyPair(), replicaKeys = try ZMQCurve.generateKeyPair()
        var trainerSettings = testDaemonSettings(temporaryDaemonDirectory("trainer"))
        trainerSettings.trainingEnabled = false  // it publishes its initial version all the same
        trainerSettings.server.curve = CurveSettings(serverSecretKey: try ZMQCurve.z85Decode(server.secret),
                                                     allowedClients: [try ZMQCurve.z85Decode(replicaKeys.public)])
        let trainer = try GLFDaemon(settings: trainerSettings)
        trainer.start()
        defer { trainer.stop() }

        func replica(_ name: String, curve: ClientCurve?) throws -> GLFDaemon {
            var settings = testDaemonSettings(temporaryDaemonDirectory(name))
            settings.trainingEnabled = false
            settings.replica.follow = trainer.server.boundEndpoints.requests
            settings.replica.pollSeconds = 0.2
            settings.replica.curve = curve
            let daemon = try GLFDaemon(settings: settings)
            daemon.start()
            return daemon
        }
        let keyed = try replica("keyed", curve: ClientCurve(serverPublicKey: server.public, secretKey: replicaKeys.secret))
        defer { keyed.stop() }
        let plain = try replica("plain", curve: nil)
        defer { plain.stop() }
        // Its catalog holds no item: it serves the version as soon as it is installed.
        #expect(waitUntil(seconds: 60) { keyed.status().model.version == 1 }, "\(String(describing: keyed.status().replica))")
        Thread.sleep(forTimeInterval: 1)  // five more polls
        #expect(plain.status().replica?.installedVersion == nil && plain.status().model.version == 0)
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
