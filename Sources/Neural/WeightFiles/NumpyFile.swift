// .npy arrays: how images, embeddings and losses travel between glf and Python.
//
//   bytes [0, 6)     magic "\x93NUMPY"
//   bytes [6, 8)     format version (major, minor): 1.0 (UInt16 header length) or 2.0/3.0 (UInt32)
//   then             the header length, little-endian
//   then             header: a Python dict literal, space-padded and ending in '\n' so that the
//                    data starts at a multiple of 64:
//                      {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//   then             the values, C order
//
// We write '<f4' (float32, little-endian) in format 1.0 (2.0 only if the header does not fit).
// We read '<f4' and '<f8' (float64 is what NumPy makes by default; it is converted to Float), in C
// order; Fortran order, other dtypes, truncated or over-long files give a WeightFileError.
import Foundation

/// An n-dimensional float32 array as held in a .npy file.
public struct NumpyArray: Sendable, Equatable {
    public var shape: [Int]
    /// C order (row-major), shape.reduce(1, *) values.
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

public enum NumpyFile {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    /// NumPy aligns the data to 64 bytes.
    static let alignment = 64

    // MARK: Writing

    public static func write(_ array: NumpyArray, to url: URL) throws(WeightFileError) {
        try FileBytes.writeAtomically(try encode(array), to: url)
    }

    /// Writes a tensor's shape and values (e.g. features [N, D]).
    public static func write(_ tensor: Tensor, to url: URL) throws(WeightFileError) {
        try write(NumpyArray(shape: tensor.shape, values: tensor.array), to: url)
    }

    public static func encode(_ array: NumpyArray) throws(WeightFileError) -> [UInt8] {
        guard let count = checkedElementCount(array.shape, bytesPerElement: 4), count == array.values.count else {
            throw WeightFileError(.invalidShape, "\(array.values.count) values do not fill shape \(array.shape)")
        }
        let shape: String
        switch array.shape.count {
        case 0: shape = "()"
        case 1: shape = "(\(array.shape[0]),)"
        default: shape = "(" + array.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }".utf8)
        // Space padding, then '\n', up to the alignment; version 1.0 while the length fits 16 bits.
        func paddedLength(prefixLength: Int) -> Int {
            let unpadded = prefixLength + header.count + 1
            return header.count + 1 + (alignment - unpadded % alignment) % alignment
        }
        let version1 = paddedLength(prefixLength: magic.count + 4) <= Int(UInt16.max)
        let prefixLength = magic.count + 2 + (version1 ? 2 : 4)
        let headerLength = paddedLength(prefixLength: prefixLength)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: headerLength - header.count - 1))
        header.append(UInt8(ascii: "\n"))

        var bytes = magic
        bytes.reserveCapacity(prefixLength + header.count + 4 * count)
        if version1 {
            bytes += [1, 0]
            bytes.appendLittleEndian(UInt16(header.count))
        } else {
            bytes += [2, 0]
            bytes.appendLittleEndian(UInt32(header.count))
        }
        bytes += header
        let dataStart = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: 4 * count))
        bytes.withUnsafeMutableBytes { buffer in
            array.values.withUnsafeBufferPointer { copyLittleEndian(from: $0.baseAddress!, count: count, to: buffer.baseAddress! + dataStart) }
        }
        return bytes
    }

    // MARK: Reading

    public static func read(from url: URL) throws(WeightFileError) -> NumpyArray {
        let bytes = try FileBytes.read(url)
        do {
            return try decode(bytes)
        } catch {
            throw error.at(url.path)
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(WeightFileError) -> NumpyArray {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw WeightFileError(bytes.count < 10 ? .truncated : .invalidHeader,
                                  "not a .npy file: it does not start with \\x93NUMPY and a version")
        }
        let major = bytes[6]
        let headerStart: Int, headerLength: Int
        switch major {
        case 1:
            headerStart = 10
            headerLength = Int(bytes.littleEndianUInt16(at: 8))
        case 2, 3:
            guard bytes.count >= 12 else { throw WeightFileError(.truncated, "the file ends inside the .npy header length") }
            headerStart = 12
            headerLength = Int(bytes.littleEndianUInt32(at: 8))
        default:
            throw WeightFileError(.invalidHeader, ".npy format version \(major).\(bytes[7]) is not supported (1.0, 2.0 and 3.0 are)")
        }
        guard headerLength <= bytes.count - headerStart else {
            throw WeightFileError(.truncated, "the .npy header announces \(headerLength) bytes but only \(bytes.count - headerStart) follow")
        }
        let dataStart = headerStart + headerLength
        let header = try parseHeader(Array(bytes[headerStart..<dataStart]))

        let bytesPerValue: Int
        switch header.descr {
        case "<f4": bytesPerValue = 4
        case "<f8": bytesPerValue = 8
        default:
            throw WeightFileError(.unsupportedDType, "dtype '\(header.descr)' is not supported: glf reads float32 ('<f4') or float64 ('<f8'); convert with array.astype(np.float32)")
        }
        guard !header.fortranOrder else {
            throw WeightFileError(.invalidLayout, "the array is in Fortran order; save it in C order (np.ascontiguousarray)")
        }
        guard let count = checkedElementCount(header.shape, bytesPerElement: bytesPerValue) else {
            throw WeightFileError(.invalidShape, "impossible shape \(header.shape)")
        }
        let dataLength = bytes.count - dataStart
        guard dataLength >= count * bytesPerValue else {
            throw WeightFileError(.truncated, "shape \(header.shape) needs \(count * bytesPerValue) bytes of data but the file holds \(dataLength)")
        }
        guard dataLength == count * bytesPerValue else {
            throw WeightFileError(.invalidLayout, "\(dataLength - count * bytesPerValue) bytes after the data of shape \(header.shape)")
        }

        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { buffer in
            let source = buffer.baseAddress! + dataStart
            values.withUnsafeMutableBufferPointer { destination in
                if bytesPerValue == 4 {
                    copyFromLittleEndian(source, count: count, to: destination.baseAddress!)
                } else {
                    for i in 0..<count {
                        let bits = UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                        destination[i] = Float(Double(bitPattern: bits))
                    }
                }
            }
        }
        return NumpyArray(shape: header.shape, values: values)
    }

    struct Header: Equatable {
        var descr: String
        var fortranOrder: Bool
        var shape: [Int]
    }

    /// Parses the header's Python literal: a dict with exactly the keys 'descr' (a string),
    /// 'fortran_order' (True/False) and 'shape' (a tuple of ints), in any order, with or without a
    /// trailing comma, as NumPy's `ast.literal_eval` would.
    static func parseHeader(_ bytes: [UInt8]) throws(WeightFileError) -> Header {
        var parser = LiteralParser(bytes: bytes)
        do throws(LiteralParser.Failure) {
            let dictionary = try parser.parseDictionary()
            parser.skipWhitespace()
            guard parser.atEnd else { throw parser.error("unexpected text after the header dict") }
            guard Set(dictionary.keys) == ["descr", "fortran_order", "shape"] else {
                throw parser.error("the header has keys \(dictionary.keys.sorted()); expected descr, fortran_order and shape")
            }
            guard case .string(let descr) = dictionary["descr"]! else { throw parser.error("'descr' is not a string") }
            guard case .boolean(let fortranOrder) = dictionary["fortran_order"]! else { throw parser.error("'fortran_order' is not True or False") }
            guard case .tuple(let shape) = dictionary["shape"]! else { throw parser.error("'shape' is not a tuple of integers") }
            return Header(descr: descr, fortranOrder: fortranOrder, shape: shape)
        } catch {
            throw WeightFileError(.invalidHeader, "the .npy header \(String(decoding: bytes.prefix(200), as: UTF8.self).debugDescription) is invalid: \(error.message)")
        }
    }

    /// Just enough of Python's literal syntax for .npy headers.
    private struct LiteralParser {
        enum Value { case string(String), boolean(Bool), tuple([Int]) }
        struct Failure: Error { var message: String }

        let bytes: [UInt8]
        var position = 0

        var atEnd: Bool { position >= bytes.count }
        var current: UInt8? { atEnd ? nil : bytes[position] }

        func error(_ message: String) -> Failure { Failure(message: message + " (at byte \(position))") }

        mutating func skipWhitespace() {
            while let c = current, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { position += 1 }
        }

        mutating func expect(_ character: Character) throws(Failure) {
            skipWhitespace()
            guard current == character.asciiValue else { throw error("expected '\(character)'") }
            position += 1
        }

        mutating func parseDictionary() throws(Failure) -> [String: Value] {
            try expect("{")
            var dictionary: [String: Value] = [:]
            while true {
                skipWhitespace()
                if current == UInt8(ascii: "}") { position += 1; return dictionary }
                let key = try parseString()
                try expect(":")
                let value = try parseValue()
                guard dictionary.updateValue(value, forKey: key) == nil else { throw error("key '\(key)' appears twice") }
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                try expect("}")
                return dictionary
            }
        }

        mutating func parseString() throws(Failure) -> String {
            skipWhitespace()
            guard let quote = current, quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else { throw error("expected a quoted string") }
            position += 1
            let start = position
            while let c = current, c != quote {
                guard c != UInt8(ascii: "\\") else { throw error("escapes are not supported in header strings") }
                position += 1
            }
            guard !atEnd else { throw error("unterminated string") }
            let string = String(decoding: bytes[start..<position], as: UTF8.self)
            position += 1
            return string
        }

        mutating func parseValue() throws(Failure) -> Value {
            skipWhitespace()
            switch current {
            case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "("): return .tuple(try parseTuple())
            case UInt8(ascii: "T"), UInt8(ascii: "F"):
                for (word, value) in [("True", true), ("False", false)] where bytes[position...].starts(with: word.utf8) {
                    position += word.utf8.count
                    return .boolean(value)
                }
                throw error("expected True or False")
            default: throw error("expected a string, a tuple, True or False")
            }
        }

        /// (), (n,), (n, m), ... with optional Python 2 'L' suffixes.
        mutating func parseTuple() throws(Failure) -> [Int] {
            try expect("(")
            var values: [Int] = []
            while true {
                skipWhitespace()
                if current == UInt8(ascii: ")") { position += 1; break }
                values.append(try parseInteger())
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                try expect(")")
                break
            }
            return values
        }

        mutating func parseInteger() throws(Failure) -> Int {
            skipWhitespace()
            var value = 0
            var digits = 0
            while let c = current, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(Int(c - UInt8(ascii: "0")))
                guard !overflow1 && !overflow2 else { throw error("dimension too large") }
                value = sum
                digits += 1
                position += 1
            }
            guard digits > 0 else { throw error("expected a non-negative integer") }
            if current == UInt8(ascii: "L") { position += 1 }
            return value
        }
    }
}
