// Keys: raw bytes, strings, and 64-bit ids stored big-endian so that LMDB's byte order is the
// numeric order (the oldest id is the first key, the newest the last).
import Foundation

public protocol LMDBKey {
    func withKeyBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result
}

extension UInt64: LMDBKey {
    public func withKeyBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withUnsafeBytes(of: bigEndian, body)
    }

    /// Reads a key written by `withKeyBytes`.
    public init(keyBytes: UnsafeRawBufferPointer) {
        precondition(keyBytes.count == 8, "an id key has 8 bytes, not \(keyBytes.count)")
        self.init(bigEndian: keyBytes.loadUnaligned(as: UInt64.self))
    }
}

extension String: LMDBKey {
    public func withKeyBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        var copy = self
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}

extension Array: LMDBKey where Element == UInt8 {
    public func withKeyBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withUnsafeBytes(body)
    }
}
