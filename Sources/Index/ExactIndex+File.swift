// An exact index on disk, so a restarted daemon answers knn from the embeddings it already computed
// instead of re-embedding its whole catalog (minutes for 100k items on 2 cores).
//
// Layout, little-endian, one file:
//   "GLFDIDX1"                      8 bytes of magic
//   version u64, dimension u32, count u64, tag count u32
//   tags                            per tag: byte length u32, UTF-8 bytes
//   ids                             count × u64
//   source codes                    count × u32
//   vectors                         count × dimension × f32 (unit rows)
//   CRC-32 u32                      of every byte before it
//
// Written to a temporary name, fsynced and renamed, so a reader sees the old file or the new one,
// never half of one; a damaged file is an error, never a wrong answer.
import CZlib
import Foundation

public enum IndexFileError: Error, CustomStringConvertible, Equatable {
    case io(String)
    case corrupt(String)

    public var description: String {
        switch self {
        case .io(let message): "index file: \(message)"
        case .corrupt(let message): "index file is damaged: \(message)"
        }
    }
}

extension ExactIndex {
    static let fileMagic = Array("GLFDIDX1".utf8)

    /// Writes the index to `url` atomically (temporary file, fsync, rename).
    public func write(to url: URL) throws(IndexFileError) {
        var bytes = Self.fileMagic
        bytes.reserveCapacity(64 + count * (12 + 4 * dimension))
        append(UInt64(version), to: &bytes)
        append(UInt32(dimension), to: &bytes)
        append(UInt64(count), to: &bytes)
        append(UInt32(tags.tags.count), to: &bytes)
        for tag in tags.tags {
            append(UInt32(tag.utf8.count), to: &bytes)
            bytes += tag.utf8
        }
        ids.withUnsafeBytes { bytes += $0 }
        sourceCodes.withUnsafeBytes { bytes += $0 }
        vectors.withUnsafeBytes { bytes += $0 }
        append(Self.crc(bytes[...]), to: &bytes)

        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io("open \(temporary.path): \(String(cString: strerror(errno)))") }
        var written = 0
        let failure: String? = bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let n = Foundation.write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return "write \(temporary.path): \(String(cString: strerror(errno)))"
                }
                written += n
            }
            return fsync(descriptor) == 0 ? nil : "fsync \(temporary.path): \(String(cString: strerror(errno)))"
        }
        close(descriptor)
        if let failure {
            unlink(temporary.path)
            throw .io(failure)
        }
        guard rename(temporary.path, url.path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(temporary.path)
            throw .io("rename to \(url.path): \(message)")
        }
    }

    /// Reads an index written by `write(to:)`.
    public init(contentsOf url: URL) throws(IndexFileError) {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .io("read \(url.path): \(error.localizedDescription)")
        }
        var reader = ByteReader(bytes: [UInt8](data))
        guard reader.bytes.count >= Self.fileMagic.count + 4, Array(reader.bytes.prefix(8)) == Self.fileMagic else {
            throw .corrupt("\(url.path) is not a glfd index file")
        }
        let body = reader.bytes.dropLast(4)
        let stored = reader.bytes.suffix(4).enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) }
        guard Self.crc(body) == stored else { throw .corrupt("\(url.path): checksum mismatch") }
        reader.offset = 8
        let version = Int(try reader.read(UInt64.self))
        let dimension = Int(try reader.read(UInt32.self))
        let count = Int(try reader.read(UInt64.self))
        let tagCount = Int(try reader.read(UInt32.self))
        var tags: [String] = []
        for _ in 0..<tagCount {
            let length = Int(try reader.read(UInt32.self))
            tags.append(String(decoding: try reader.take(length), as: UTF8.self))
        }
        let ids: [UInt64] = try reader.array(count)
        let codes: [UInt32] = try reader.array(count)
        let vectors: [Float] = try reader.array(count * dimension)
        guard reader.offset == body.count else { throw .corrupt("\(url.path): \(body.count - reader.offset) bytes left over") }
        var builder = Builder(dimension: dimension, version: version, capacity: count)
        for row in 0..<count {
            guard Int(codes[row]) < tags.count else { throw .corrupt("\(url.path): row \(row) has no source tag") }
            builder.append(id: ids[row], vector: Array(vectors[row * dimension..<(row + 1) * dimension]), source: tags[Int(codes[row])])
        }
        self = builder.build()
    }

    private static func crc(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { UInt32(crc32(0, $0.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt($0.count))) }
    }
}

private func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
}

/// Reads little-endian fields off the front of a byte array; running short is `corrupt`.
private struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    mutating func take(_ count: Int) throws(IndexFileError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - 4 - offset else { throw .corrupt("truncated") }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws(IndexFileError) -> T {
        let slice = try take(MemoryLayout<T>.size)
        return slice.reversed().reduce(T(0)) { $0 << 8 | T($1) }
    }

    mutating func array<T>(_ count: Int) throws(IndexFileError) -> [T] {
        let (size, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        guard !overflow else { throw .corrupt("truncated") }
        let slice = try take(size)
        return slice.withUnsafeBytes { raw in
            [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
                initialized = count
            }
        }
    }
}
