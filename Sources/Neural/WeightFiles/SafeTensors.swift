// safetensors: the weight file format shared with the PyTorch / Hugging Face ecosystem.
//
//   bytes [0, 8)          N: UInt64 little-endian, the header length
//   bytes [8, 8 + N)      header: UTF-8 JSON, padded with spaces so the data starts 8-aligned
//                           {"__metadata__": {string: string},
//                            name: {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
//   bytes [8 + N, end)    data: the tensors' raw little-endian values, C order; offsets are relative
//                         to the start of the data and must tile it exactly (no overlap, no hole)
//
// We write F32 only, tensors in the order given (the arena's), and the header with
// `__metadata__` first; we read any file that follows the format's rules, in any tensor order, and
// reject dtypes other than F32 with a typed error. The rules checked on reading are those of the
// reference implementation (huggingface/safetensors), so a file we accept is one it accepts.
//
// This reader never trusts the file: every length is checked before it is used, so truncated or
// corrupted files end in a WeightFileError, not in a trap.
import Foundation

/// A tensor as stored in a file: a name, a shape and its values in C order.
public struct NamedTensor: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]

    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// What a safetensors file holds.
public struct SafeTensorsContents: Sendable {
    /// In the order of their data in the file.
    public var tensors: [NamedTensor]
    public var metadata: [String: String]

    public init(tensors: [NamedTensor], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    public subscript(name: String) -> NamedTensor? { tensors.first { $0.name == name } }
}

public enum SafeTensors {
    /// The reference implementation refuses larger headers; so do we (it also bounds what a
    /// corrupted length field can make us allocate).
    public static let maximumHeaderLength = 100_000_000
    static let metadataKey = "__metadata__"

    // MARK: Writing

    public static func write(_ tensors: [NamedTensor], metadata: [String: String] = [:], to url: URL) throws(WeightFileError) {
        let bytes = try encode(tensors, metadata: metadata)
        try FileBytes.writeAtomically(bytes, to: url)
    }

    public static func encode(_ tensors: [NamedTensor], metadata: [String: String] = [:]) throws(WeightFileError) -> [UInt8] {
        for tensor in tensors {
            guard let count = checkedElementCount(tensor.shape, bytesPerElement: 4), count == tensor.values.count else {
                throw WeightFileError(.invalidShape, "tensor \(tensor.name): \(tensor.values.count) values do not fill shape \(tensor.shape)")
            }
        }
        return try encode(
            names: tensors.map(\.name), shapes: tensors.map(\.shape), metadata: metadata
        ) { index, destination in
            tensors[index].values.withUnsafeBufferPointer { copyLittleEndian(from: $0.baseAddress!, count: $0.count, to: destination) }
        }
    }

    /// The writer behind `encode` and `WeightFile.save`: `copyValues(i, destination)` writes tensor
    /// i's values, little-endian, into `destination` (4 · elements bytes, not necessarily aligned).
    static func encode(
        names: [String], shapes: [[Int]], metadata: [String: String],
        copyValues: (Int, UnsafeMutableRawPointer) -> Void
    ) throws(WeightFileError) -> [UInt8] {
        var seen = Set<String>()
        for name in names {
            guard name != metadataKey else { throw WeightFileError(.invalidHeader, "a tensor cannot be named \(metadataKey)") }
            guard seen.insert(name).inserted else { throw WeightFileError(.invalidHeader, "two tensors are named \(name)") }
        }

        // Header: metadata first (sorted, so the same model gives the same bytes), then the tensors
        // in the order given, their data laid out one after the other.
        var byteCounts: [Int] = []
        var header = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let entries = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            fields.append("\(jsonString(metadataKey)):{\(entries.joined(separator: ","))}")
        }
        var offset = 0
        for (name, shape) in zip(names, shapes) {
            guard let count = checkedElementCount(shape, bytesPerElement: 4) else {
                throw WeightFileError(.invalidShape, "tensor \(name) has an impossible shape \(shape)")
            }
            let byteCount = count * 4
            byteCounts.append(byteCount)
            let dimensions = shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(dimensions)],\"data_offsets\":[\(offset),\(offset + byteCount)]}")
            offset += byteCount
        }
        header += fields.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        // Pad with spaces so that 8 + N, where the data starts, is a multiple of 8 (as the
        // reference writer does; readers may then map the data as aligned floats).
        headerBytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8))

        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + headerBytes.count + offset)
        bytes.appendLittleEndian(UInt64(headerBytes.count))
        bytes.append(contentsOf: headerBytes)
        let dataStart = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: offset))
        bytes.withUnsafeMutableBytes { buffer in
            var position = dataStart
            for index in names.indices {
                copyValues(index, buffer.baseAddress! + position)
                position += byteCounts[index]
            }
        }
        return bytes
    }

    // MARK: Reading

    public static func read(from url: URL) throws(WeightFileError) -> SafeTensorsContents {
        let bytes = try FileBytes.read(url)
        do {
            return try decode(bytes)
        } catch {
            throw error.at(url.path)
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(WeightFileError) -> SafeTensorsContents {
        let header = try parseHeader(bytes)
        var tensors: [NamedTensor] = []
        tensors.reserveCapacity(header.entries.count)
        bytes.withUnsafeBytes { buffer in
            for entry in header.entries {
                var values = [Float](repeating: 0, count: entry.count)
                values.withUnsafeMutableBufferPointer {
                    copyFromLittleEndian(buffer.baseAddress! + header.dataStart + entry.begin, count: entry.count, to: $0.baseAddress!)
                }
                tensors.append(NamedTensor(name: entry.name, shape: entry.shape, values: values))
            }
        }
        return SafeTensorsContents(tensors: tensors, metadata: header.metadata)
    }

    /// A tensor's place in a validated file: its data is bytes [dataStart + begin, dataStart + begin + 4·count).
    struct Entry {
        var name: String
        var shape: [Int]
        var count: Int
        var begin: Int
    }

    struct Header {
        /// Sorted by offset.
        var entries: [Entry]
        var metadata: [String: String]
        var dataStart: Int
    }

    /// Checks everything the format promises and returns where each tensor's data is.
    static func parseHeader(_ bytes: [UInt8]) throws(WeightFileError) -> Header {
        guard bytes.count >= 8 else {
            throw WeightFileError(.truncated, "the file has \(bytes.count) bytes; a safetensors file starts with an 8-byte header length")
        }
        let announced = bytes.littleEndianUInt64(at: 0)
        guard announced <= UInt64(maximumHeaderLength) else {
            throw WeightFileError(.invalidLayout, "the header length field says \(announced) bytes, more than the format's limit of \(maximumHeaderLength) (not a safetensors file?)")
        }
        let headerLength = Int(announced)
        guard headerLength <= bytes.count - 8 else {
            throw WeightFileError(.truncated, "the header length field says \(headerLength) bytes but only \(bytes.count - 8) follow it")
        }
        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        guard headerLength > 0, bytes[8] == UInt8(ascii: "{") else {
            throw WeightFileError(.invalidHeader, "the header does not start with '{' (not a safetensors file?)")
        }

        let json: RawHeader
        do {
            json = try JSONDecoder().decode(RawHeader.self, from: Data(bytes[8..<dataStart]))
        } catch let error as DecodingError {
            throw WeightFileError(.invalidHeader, "the header is not safetensors JSON: \(describe(error))")
        } catch {
            throw WeightFileError(.invalidHeader, "the header is not safetensors JSON: \(error)")
        }

        var entries: [Entry] = []
        var ends: [Int] = []
        var names = Set<String>()
        for (name, raw) in json.tensors {
            guard names.insert(name).inserted else { throw WeightFileError(.invalidHeader, "the header names tensor \(name) twice") }
            guard raw.dtype == "F32" else {
                throw WeightFileError(.unsupportedDType, "tensor \(name) has dtype \(raw.dtype); glfd reads F32 only (convert with tensor.float() before saving)")
            }
            guard let count = checkedElementCount(raw.shape, bytesPerElement: 4) else {
                throw WeightFileError(.invalidShape, "tensor \(name) has an impossible shape \(raw.shape)")
            }
            guard raw.data_offsets.count == 2, raw.data_offsets[0] >= 0, raw.data_offsets[0] <= raw.data_offsets[1] else {
                throw WeightFileError(.invalidOffsets, "tensor \(name) has data_offsets \(raw.data_offsets); expected [begin, end] with 0 ≤ begin ≤ end")
            }
            guard raw.data_offsets[1] - raw.data_offsets[0] == count * 4 else {
                throw WeightFileError(.invalidOffsets, "tensor \(name) of shape \(raw.shape) needs \(count * 4) bytes but its data_offsets \(raw.data_offsets) span \(raw.data_offsets[1] - raw.data_offsets[0])")
            }
            entries.append(Entry(name: name, shape: raw.shape, count: count, begin: raw.data_offsets[0]))
            ends.append(raw.data_offsets[1])
        }

        // The tensors must tile the data exactly, in offset order.
        let order = entries.indices.sorted { (entries[$0].begin, ends[$0]) < (entries[$1].begin, ends[$1]) }
        var expectedBegin = 0
        for index in order {
            let entry = entries[index]
            guard entry.begin == expectedBegin else {
                throw WeightFileError(.invalidOffsets, entry.begin < expectedBegin
                    ? "tensor \(entry.name) starts at data byte \(entry.begin), inside the previous tensor (which ends at \(expectedBegin))"
                    : "tensor \(entry.name) starts at data byte \(entry.begin), leaving a hole after the previous tensor (which ends at \(expectedBegin))")
            }
            guard ends[index] <= dataLength else {
                throw WeightFileError(.truncated, "tensor \(entry.name) ends at data byte \(ends[index]) but the file holds only \(dataLength) bytes of data")
            }
            expectedBegin = ends[index]
        }
        guard expectedBegin == dataLength else {
            throw WeightFileError(.invalidLayout, "\(dataLength - expectedBegin) bytes of data after the last tensor (the header describes \(expectedBegin) of \(dataLength))")
        }
        return Header(entries: order.map { entries[$0] }, metadata: json.metadata, dataStart: dataStart)
    }

    // MARK: Helpers

    /// The header as JSON: one key per tensor, plus the optional "__metadata__".
    private struct RawHeader: Decodable {
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        struct Tensor: Decodable {
            var dtype: String
            var shape: [Int]
            var data_offsets: [Int]
        }

        var tensors: [(String, Tensor)] = []
        var metadata: [String: String] = [:]

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            for key in container.allKeys {
                if key.stringValue == SafeTensors.metadataKey {
                    if try !container.decodeNil(forKey: key) {
                        metadata = try container.decode([String: String].self, forKey: key)
                    }
                } else {
                    tensors.append((key.stringValue, try container.decode(Tensor.self, forKey: key)))
                }
            }
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.isEmpty ? "" : " at " + context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .dataCorrupted(let context): return context.debugDescription + path(context)
        case .keyNotFound(let key, let context): return "missing \"\(key.stringValue)\"" + path(context)
        case .typeMismatch(let type, let context): return "expected \(type)" + path(context) + " (\(context.debugDescription))"
        case .valueNotFound(let type, let context): return "expected \(type)" + path(context) + ", found null"
        @unknown default: return "\(error)"
        }
    }

    static func jsonString(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Floats → little-endian bytes, bit patterns preserved (NaN payloads, −0).
func copyLittleEndian(from source: UnsafePointer<Float>, count: Int, to destination: UnsafeMutableRawPointer) {
    #if _endian(little)
    destination.copyMemory(from: source, byteCount: count * 4)
    #else
    for i in 0..<count { destination.storeBytes(of: source[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
    #endif
}

/// Little-endian bytes (any alignment) → floats, bit patterns preserved.
func copyFromLittleEndian(_ source: UnsafeRawPointer, count: Int, to destination: UnsafeMutablePointer<Float>) {
    #if _endian(little)
    UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
    #else
    for i in 0..<count { destination[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
    #endif
}
