// CURVE keys and Z85: generated keys decode to 32 bytes and encode back, a public key can be
// derived from its secret, and a CURVE connection works with the right server key only.
import Foundation
import Testing
import ZeroMQ

@Suite(.enabled(if: ZMQCurve.isAvailable, "this libzmq was built without CURVE (zmq_has(\"curve\") is false)"))
struct CurveTests {
    @Test func keyPairsRoundTripThroughZ85() throws {
        let pair = try ZMQCurve.generateKeyPair()
        #expect(pair.public.count == 40 && pair.secret.count == 40)
        #expect(pair.public != pair.secret)
        let secret = try ZMQCurve.z85Decode(pair.secret)
        #expect(secret.count == 32)
        #expect(try ZMQCurve.z85Encode(secret) == pair.secret)
        #expect(try ZMQCurve.publicKey(secret: pair.secret) == pair.public)
        #expect(try ZMQCurve.generateKeyPair().secret != pair.secret)
    }

    @Test func z85MatchesTheSpecificationAndRejectsBadInput() throws {
        // The example of ZeroMQ RFC 32 (Z85).
        let hello: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
        #expect(try ZMQCurve.z85Encode(hello) == "HelloWorld")
        #expect(try ZMQCurve.z85Decode("HelloWorld") == hello)
        #expect(try ZMQCurve.z85Encode([]) == "")
        let oddLength = #expect(throws: ZMQError.self) { try ZMQCurve.z85Encode([1, 2, 3]) }
        #expect(oddLength?.code == EINVAL)
        #expect(throws: ZMQError.self) { try ZMQCurve.z85Decode("Hell") }  // not a multiple of 5
        let notZ85 = #expect(throws: ZMQError.self) { try ZMQCurve.z85Decode("Hello Worl") }  // a space
        #expect(notZ85?.code == EINVAL)
        #expect(throws: ZMQError.self) { try ZMQCurve.publicKey(secret: "short") }
    }

    @Test func curveConnectsOnlyWithTheServersKey() throws {
        let server = try ZMQCurve.generateKeyPair()
        let client = try ZMQCurve.generateKeyPair()
        let context = try ZMQContext()
        let router = try socket(context, .router)
        try router.set(.curveServer, to: true)
        try router.set(.curveSecretKey, to: try ZMQCurve.z85Decode(server.secret))
        #expect(try router.get(.curveServer))
        #expect(try router.get(.curveSecretKey) == (try ZMQCurve.z85Decode(server.secret)))
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint

        func curveClient(serverKey: String) throws -> ZMQSocket {
            let dealer = try socket(context, .dealer, timeout: 300)
            try dealer.set(.curveServerKey, to: try ZMQCurve.z85Decode(serverKey))
            try dealer.set(.curvePublicKey, to: try ZMQCurve.z85Decode(client.public))
            try dealer.set(.curveSecretKey, to: try ZMQCurve.z85Decode(client.secret))
            try dealer.connect(endpoint)
            return dealer
        }

        let trusted = try curveClient(serverKey: server.public)
        try trusted.send([bytes("secret request")])
        let request = try router.receive()
        #expect(texts(Array(request[1...])) == ["secret request"])
        try router.send([request[0], bytes("secret reply")])
        #expect(texts(try trusted.receive()) == ["secret reply"])

        // With a wrong server key the handshake fails and nothing is delivered either way.
        let fooled = try curveClient(serverKey: try ZMQCurve.generateKeyPair().public)
        try fooled.send([bytes("lost")])
        try router.set(.receiveTimeout, to: 300)
        let error = #expect(throws: ZMQError.self) { try router.receive() }
        #expect(error?.isTimeout == true)
    }
}
