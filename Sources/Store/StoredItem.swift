// An item of the replay store and its on-disk record.
//
// Record layout (little-endian), version 1:
//
//   offset  size  field
//        0     1  record version (1)
//        1     1  channels of the canonical image (1 gray, 3 RGB)
//        2     2  canonical width
//        4     2  canonical height
//        6     1  original format (0 raw, 1 JPEG, 2 PNG)
//        7     1  reserved (0)
//        8     4  original width
//       12     4  original height
//       16     8  ingest time, microseconds since 1970-01-01 UTC
//       24     2  source tag length S
//       26     2  reserved (0)
//       28     4  metadata length M
//       32     P  pixels, height × width × channels, row-major (P = w·h·c)
//     32+P     S  source tag, UTF-8
//   32+P+S     M  metadata, verbatim
// 32+P+S+M     4  CRC-32 (zlib) of every byte before it
//
// The checksum makes a damaged record an error rather than a silently wrong training image.
import CZlib
import Foundation
import Imaging

/// What a client hands in: the image already decoded and resized to the store's canonical shape.
public struct NewItem: Sendable, Equatable {
    public var image: DecodedImage
    public var originalWidth: Int
    public var originalHeight: Int
    public var originalFormat: ImageFormat
    public var source: String
    public var metadata: [UInt8]

    public static let maxSourceBytes = 256
    public static let maxMetadataBytes = 64 << 10

    public init(image: DecodedImage, originalWidth: Int, originalHeight: Int, originalFormat: ImageFormat,
                source: String = "", metadata: [UInt8] = []) {
        self.image = image
        self.originalWidth = originalWidth
        self.originalHeight = originalHeight
        self.originalFormat = originalFormat
        self.source = source
        self.metadata = metadata
    }

    /// Bytes of this item's record on disk.
    public var recordBytes: Int { ItemRecord.size(of: self) }

    /// Checks the limits the record format and the store impose.
    func validate(canonical: CanonicalShape) throws(StoreError) {
        guard image.width == canonical.side, image.height == canonical.side, image.channels == canonical.channels else {
            throw .invalidItem("image is \(image.width)×\(image.height)×\(image.channels), the store keeps \(canonical)")
        }
        guard source.utf8.count <= Self.maxSourceBytes else {
            throw .invalidItem("source tag has \(source.utf8.count) bytes, at most \(Self.maxSourceBytes)")
        }
        guard metadata.count <= Self.maxMetadataBytes else {
            throw .invalidItem("metadata has \(metadata.count) bytes, at most \(Self.maxMetadataBytes)")
        }
        guard originalWidth > 0, originalHeight > 0, originalWidth <= Int(UInt32.max), originalHeight <= Int(UInt32.max) else {
            throw .invalidItem("original size \(originalWidth)×\(originalHeight) is not valid")
        }
    }
}

/// An item as read back: its id and everything it was ingested with.
public struct StoredItem: Sendable, Equatable {
    public let id: UInt64
    public let image: DecodedImage
    public let originalWidth: Int
    public let originalHeight: Int
    public let originalFormat: ImageFormat
    public let ingestedAt: Date
    public let source: String
    public let metadata: [UInt8]
    /// Bytes of the record on disk.
    public let recordBytes: Int
}

/// The shape every stored image has: the model's input.
public struct CanonicalShape: Codable, Sendable, Equatable, CustomStringConvertible {
    public var side: Int
    public var channels: Int
    public init(side: Int = 32, channels: Int = 3) {
        self.side = side
        self.channels = channels
    }
    public var color: ColorMode { channels == 1 ? .gray : .rgb }
    public var pixelBytes: Int { side * side * channels }
    public var description: String { "\(side)×\(side)×\(channels)" }
}

enum ItemRecord {
    static let version: UInt8 = 1
    static let headerBytes = 32

    static func size(of item: NewItem) -> Int {
        headerBytes + item.image.pixels.count + item.source.utf8.count + item.metadata.count + 4
    }

    static func formatCode(_ format: ImageFormat) -> UInt8 {
        switch format {
        case .raw: 0
        case .jpeg: 1
        case .png: 2
        }
    }

    /// Writes `item` into `buffer`, which has exactly `size(of: item)` bytes.
    static func write(_ item: NewItem, ingestedAt: Date, into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count == size(of: item))
        var offset = 0
        func put<T: FixedWidthInteger>(_ value: T) {
            buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
            offset += MemoryLayout<T>.size
        }
        func put(bytes: some Collection<UInt8>) {
            for byte in bytes {
                buffer[offset] = byte
                offset += 1
            }
        }
        put(version)
        put(UInt8(item.image.channels))
        put(UInt16(item.image.width))
        put(UInt16(item.image.height))
        put(formatCode(item.originalFormat))
        put(UInt8(0))
        put(UInt32(item.originalWidth))
        put(UInt32(item.originalHeight))
        put(Int64((ingestedAt.timeIntervalSince1970 * 1_000_000).rounded()))
        put(UInt16(item.source.utf8.count))
        put(UInt16(0))
        put(UInt32(item.metadata.count))
        item.image.pixels.withUnsafeBytes { pixels in
            UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + pixels.count]).copyMemory(from: pixels)
        }
        offset += item.image.pixels.count
        put(bytes: item.source.utf8)
        put(bytes: item.metadata)
        put(UInt32(checksum(UnsafeRawBufferPointer(rebasing: buffer[0..<offset]))))
    }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 { CRC32.checksum(bytes) }

    /// Parses and verifies a record.
    static func read(id: UInt64, _ record: UnsafeRawBufferPointer) throws(StoreError) -> StoredItem {
        func fail(_ message: String) -> StoreError { .corruptRecord(id: id, message) }
        guard record.count >= headerBytes + 4 else { throw fail("record of \(record.count) bytes is shorter than its header") }
        let stored = record.loadUnaligned(fromByteOffset: record.count - 4, as: UInt32.self).littleEndian
        guard stored == checksum(UnsafeRawBufferPointer(rebasing: record[0..<record.count - 4])) else {
            throw fail("checksum mismatch")
        }
        func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            T(littleEndian: record.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        guard record[0] == version else { throw fail("record version \(record[0]), expected \(version)") }
        let channels = Int(record[1]), width = Int(get(2, UInt16.self)), height = Int(get(4, UInt16.self))
        let format: ImageFormat
        switch record[6] {
        case 0: format = .raw
        case 1: format = .jpeg
        case 2: format = .png
        default: throw fail("unknown original format \(record[6])")
        }
        let sourceCount = Int(get(24, UInt16.self)), metadataCount = Int(get(28, UInt32.self))
        let pixelCount = width * height * channels
        guard headerBytes + pixelCount + sourceCount + metadataCount + 4 == record.count else {
            throw fail("field lengths do not add up to the record's \(record.count) bytes")
        }
        let pixelsEnd = headerBytes + pixelCount, sourceEnd = pixelsEnd + sourceCount
        let micros = get(16, Int64.self)
        return StoredItem(
            id: id,
            image: DecodedImage(width: width, height: height, channels: channels,
                                pixels: Array(record[headerBytes..<pixelsEnd])),
            originalWidth: Int(get(8, UInt32.self)), originalHeight: Int(get(12, UInt32.self)),
            originalFormat: format,
            ingestedAt: Date(timeIntervalSince1970: Double(micros) / 1_000_000),
            source: String(decoding: record[pixelsEnd..<sourceEnd], as: UTF8.self),
            metadata: Array(record[sourceEnd..<sourceEnd + metadataCount]),
            recordBytes: record.count)
    }
}

/// CRC-32 with zlib's polynomial: the records' checksum, and the one model files travel with.
public enum CRC32 {
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        UInt32(crc32(0, bytes.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt(bytes.count)))
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }
}
