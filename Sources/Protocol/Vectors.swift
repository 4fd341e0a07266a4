// Embeddings on the wire: little-endian float32, dimension given in the header.
import Foundation

public enum VectorFrame {
    public static func encode(_ vector: some Collection<Float>) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(vector.count * 4)
        for value in vector { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        return bytes
    }

    /// The floats of a frame of exactly `dimension` × 4 bytes, or nil.
    public static func decode(_ bytes: [UInt8], dimension: Int) -> [Float]? {
        guard dimension >= 0, bytes.count == dimension * 4 else { return nil }
        return bytes.withUnsafeBytes { raw in
            (0..<dimension).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }
}
