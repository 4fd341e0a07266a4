// Helpers for the ZeroMQ tests: text frames, byte comparison that is fast in debug builds, and
// sockets that give up after a while instead of hanging a failing test.
import Foundation
import ZeroMQ

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func text(_ frame: [UInt8]) -> String { String(decoding: frame, as: UTF8.self) }

/// Frames as text, for readable expectations (only for frames that are text).
func texts(_ frames: [[UInt8]]) -> [String] { frames.map(text) }

/// memcmp, not Array ==: element by element, megabytes take long in a debug build.
func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return a.withUnsafeBytes { a in b.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 } }
}

/// A socket whose blocking calls fail with `isTimeout` after `timeout` milliseconds.
func socket(_ context: ZMQContext, _ type: ZMQSocketType, timeout: Int32 = 2000) throws -> ZMQSocket {
    let socket = try ZMQSocket(context: context, type: type)
    try socket.set(.receiveTimeout, to: timeout)
    try socket.set(.sendTimeout, to: timeout)
    return socket
}


/// `count` bytes that differ from place to place, made quickly even in a debug build.
func pattern(count: Int) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        var state: UInt32 = 2_463_534_242
        for index in 0..<count {
            state ^= state << 13; state ^= state >> 17; state ^= state << 5  // xorshift32
            buffer[index] = UInt8(truncatingIfNeeded: state)
        }
        initialized = count
    }
}
