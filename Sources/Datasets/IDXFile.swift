// IDX files (LeCun's MNIST format, also Fashion-MNIST), plain or gzip-compressed:
//
//   magic: 0x00 0x00 <type> <dimensions>   type 0x08 = unsigned byte (the only one images use)
//   dimensions × big-endian UInt32 sizes, then the values in C order
//
// images: [N, rows, columns] bytes; labels: [N] bytes.
import CZlib
import Foundation

public struct IDXError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

public struct IDXArray: Sendable {
    public var shape: [Int]
    public var bytes: [UInt8]
}

public enum IDXFile {
    /// Reads an IDX file of unsigned bytes; `.gz` files (any file with gzip's magic) are inflated.
    public static func read(_ path: String, maxBytes: Int = 1 << 30) throws(IDXError) -> IDXArray {
        let data = try inflate(path, maxBytes: maxBytes)
        func fail(_ message: String) -> IDXError { IDXError(path: path, message: message) }
        guard data.count >= 4, data[0] == 0, data[1] == 0 else { throw fail("not an IDX file (bad magic)") }
        guard data[2] == 0x08 else { throw fail(String(format: "element type 0x%02x is not unsigned byte (0x08)", data[2])) }
        let dimensions = Int(data[3])
        guard (1...4).contains(dimensions), data.count >= 4 + 4 * dimensions else { throw fail("\(dimensions) dimensions") }
        let shape = (0..<dimensions).map { d in
            (0..<4).reduce(0) { $0 << 8 | Int(data[4 + 4 * d + $1]) }
        }
        let header = 4 + 4 * dimensions
        let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        guard count == data.count - header else {
            throw fail("shape \(shape) needs \(count) bytes after the header, the file has \(data.count - header)")
        }
        return IDXArray(shape: shape, bytes: Array(data[header...]))
    }

    /// The file's bytes, inflated when it is gzip-compressed.
    static func inflate(_ path: String, maxBytes: Int) throws(IDXError) -> [UInt8] {
        guard let file = gzopen(path, "rb") else { throw IDXError(path: path, message: "cannot open: \(String(cString: strerror(errno)))") }
        defer { gzclose(file) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let read = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if read < 0 {
                var code: Int32 = 0
                throw IDXError(path: path, message: "corrupt gzip data: \(String(cString: gzerror(file, &code)))")
            }
            if read == 0 { break }
            result.append(contentsOf: buffer[0..<Int(read)])
            guard result.count <= maxBytes else { throw IDXError(path: path, message: "larger than \(maxBytes) bytes") }
        }
        return result
    }
}
