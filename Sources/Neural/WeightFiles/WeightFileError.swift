// WeightFileError: the one error type of Sources/Neural/WeightFiles (safetensors, .npy arrays,
// model directories). Parsers here never trap on bad input: every malformed or mismatched file ends
// in one of these, with a message that names the file, the tensor and what was expected.
import Foundation

public struct WeightFileError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    public enum Code: String, Sendable {
        /// The file could not be opened or read (missing, permissions, a directory...).
        case unreadable
        /// The file or its temporary twin could not be created, written, synced or renamed.
        case unwritable
        /// The file ends before the structure it announces (header or data).
        case truncated
        /// Bytes after the announced data, or header length beyond what the format allows.
        case invalidLayout
        /// The header is not the JSON / Python literal the format requires.
        case invalidHeader
        /// A tensor's dtype is not one this reader converts (safetensors: F32; .npy: <f4, <f8).
        case unsupportedDType
        /// A shape with negative dimensions or an element count that overflows.
        case invalidShape
        /// safetensors data offsets that overlap, leave holes, run past the data or disagree with
        /// the shape.
        case invalidOffsets
        /// Loading into an arena: a parameter the model has is not in the file.
        case missingTensor
        /// Loading into an arena: the file has a tensor the model does not.
        case unexpectedTensor
        /// Loading into an arena: same name, different shape.
        case shapeMismatch
        /// config.json is missing fields, has another format or a newer version, or describes an
        /// impossible model.
        case invalidConfig
    }

    public let code: Code
    public let message: String
    /// The file concerned, when there is one.
    public let path: String?

    public init(_ code: Code, _ message: String, path: String? = nil) {
        self.code = code
        self.message = message
        self.path = path
    }

    /// The same error, attributed to a file (parsers work on bytes; readers know the path).
    public func at(_ path: String) -> WeightFileError {
        WeightFileError(code, message, path: self.path ?? path)
    }

    public var description: String { path.map { "\($0): \(message)" } ?? message }
    public var errorDescription: String? { description }
}
