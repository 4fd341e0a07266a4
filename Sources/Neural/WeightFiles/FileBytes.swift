// Whole-file reads and atomic whole-file writes for the weight file formats.
//
// A write goes to a temporary file in the destination's directory (same file system, so the rename
// is atomic), is fsync'ed, renamed over the destination, and the directory is fsync'ed so the
// rename itself survives a crash. A reader therefore sees the old file or the new one, never half
// of one.
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum FileBytes {
    static func read(_ url: URL) throws(WeightFileError) -> [UInt8] {
        do {
            return [UInt8](try Data(contentsOf: url))
        } catch {
            throw WeightFileError(.unreadable, "cannot read the file (\(error.localizedDescription))", path: url.path)
        }
    }

    static func writeAtomically(_ bytes: [UInt8], to url: URL) throws(WeightFileError) {
        let path = url.path
        let directory = url.deletingLastPathComponent().path
        let temporaryPath = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        func failure(_ what: String) -> WeightFileError {
            WeightFileError(.unwritable, "\(what) (\(String(cString: strerror(errno))))", path: path)
        }

        let fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("cannot create the temporary file \(temporaryPath)") }
        var renamed = false
        defer { if !renamed { unlink(temporaryPath) } }

        var written = 0
        let writeFailed: Bool = bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let n = write(fd, buffer.baseAddress! + written, buffer.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return true
                }
                written += n
            }
            return false
        }
        if writeFailed {
            let error = failure("cannot write \(bytes.count) bytes to \(temporaryPath)")
            close(fd)
            throw error
        }
        if fsync(fd) != 0 {
            let error = failure("cannot fsync \(temporaryPath)")
            close(fd)
            throw error
        }
        if close(fd) != 0 { throw failure("cannot close \(temporaryPath)") }
        if rename(temporaryPath, path) != 0 { throw failure("cannot rename \(temporaryPath) over the destination") }
        renamed = true

        // Make the rename durable. Not every file system supports fsync on a directory; the data is
        // already safe, so a failure here is not worth failing the save for.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }
}

/// Little-endian scalar access on byte arrays, bounds checked by the callers.
extension Array where Element == UInt8 {
    func littleEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }

    func littleEndianUInt32(at offset: Int) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(self[offset + i]) << (8 * i) }
        return value
    }

    func littleEndianUInt64(at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(self[offset + i]) << (8 * i) }
        return value
    }

    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

/// Element count of a shape, or nil when a dimension is negative or the element or byte count
/// overflows Int (a corrupted header must not wrap around to a small, plausible size).
func checkedElementCount(_ shape: [Int], bytesPerElement: Int) -> Int? {
    var count = 1
    for dimension in shape {
        guard dimension >= 0 else { return nil }
        let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
        guard !overflow else { return nil }
        count = product
    }
    let (bytes, overflow) = count.multipliedReportingOverflow(by: bytesPerElement)
    return overflow ? nil : (bytes >= 0 ? count : nil)
}
