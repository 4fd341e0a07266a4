// CURVE keys (CurveZMQ: Curve25519 key exchange, encrypted and authenticated connections) and Z85,
// ZeroMQ's printable form of binary keys: 32 bytes are 40 characters, safe in config files.
// Not every libzmq build has CURVE; the functions that need it fail with `isNotSupported`.
import CZeroMQ

public enum ZMQCurve {
    /// Whether this libzmq can encrypt (built with libsodium or tweetnacl). Debian's can.
    public static var isAvailable: Bool { ZeroMQ.has("curve") }

    /// A new key pair, each key in Z85 (40 characters). The server keeps its secret key and gives
    /// clients its public key (`curveServerKey`); each client has a pair of its own.
    public static func generateKeyPair() throws(ZMQError) -> (public: String, secret: String) {
        try requireCurve("zmq_curve_keypair")
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        try check(zmq_curve_keypair(&publicKey, &secretKey), "zmq_curve_keypair")
        return (string(publicKey), string(secretKey))
    }

    /// The public key (Z85) that belongs to a secret key (Z85), so only the secret needs storing.
    public static func publicKey(secret: String) throws(ZMQError) -> String {
        try requireCurve("zmq_curve_public")
        guard secret.utf8.count == 40 else {
            throw ZMQError(code: EINVAL, operation: "zmq_curve_public(a secret key of \(secret.utf8.count) characters, not 40)")
        }
        var publicKey = [CChar](repeating: 0, count: 41)
        try check(zmq_curve_public(&publicKey, secret), "zmq_curve_public")
        return string(publicKey)
    }

    /// Z85 text of `bytes`, whose count must be a multiple of 4 (a key's 32 are).
    public static func z85Encode(_ bytes: [UInt8]) throws(ZMQError) -> String {
        guard bytes.count % 4 == 0 else {
            throw ZMQError(code: EINVAL, operation: "zmq_z85_encode(\(bytes.count) bytes, not a multiple of 4)")
        }
        var text = [CChar](repeating: 0, count: bytes.count / 4 * 5 + 1)
        guard zmq_z85_encode(&text, bytes, bytes.count) != nil else { throw ZMQError(code: zmq_errno(), operation: "zmq_z85_encode") }
        return string(text)
    }

    /// The bytes of Z85 `text`, whose length must be a multiple of 5; other characters fail.
    public static func z85Decode(_ text: String) throws(ZMQError) -> [UInt8] {
        let length = text.utf8.count
        guard length % 5 == 0 else {
            throw ZMQError(code: EINVAL, operation: "zmq_z85_decode(\(length) characters, not a multiple of 5)")
        }
        var bytes = [UInt8](repeating: 0, count: length / 5 * 4)
        guard zmq_z85_decode(&bytes, text) != nil else {
            throw ZMQError(code: EINVAL, operation: "zmq_z85_decode(not Z85 text)")
        }
        return bytes
    }

    private static func requireCurve(_ operation: String) throws(ZMQError) {
        guard isAvailable else { throw ZMQError(code: ENOTSUP, operation: "\(operation): libzmq was built without CURVE") }
    }

    private static func string(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
