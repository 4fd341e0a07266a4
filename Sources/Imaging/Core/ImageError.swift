// ImageError: the one error type of Imaging. Decoders never trap on bytes from outside: empty,
// oversized, truncated, corrupt or unsupported input ends in one of these, with a stable code a
// client can switch on and a message that says what was wrong and what the limit was.
import Foundation

public struct ImageError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    public enum Code: String, Sendable {
        /// No bytes at all.
        case empty
        /// More encoded bytes than `DecodingLimits.maxEncodedBytes`.
        case tooLarge
        /// Declared width × height (or one side) beyond `DecodingLimits`; found from the header,
        /// before any pixel memory is allocated.
        case tooManyPixels
        /// The bytes start with neither the JPEG nor the PNG signature.
        case unknownFormat
        /// The codec rejected the data: truncated, bit-flipped, bad chunk lengths or CRCs, bad
        /// Huffman codes... (JPEG warnings such as "premature end of data" count as corrupt.)
        case corrupt
        /// Valid data this module does not convert (CMYK JPEG, raw pixels with 2 channels...).
        case unsupported
        /// Raw pixels whose byte count is not width × height × channels.
        case rawSizeMismatch
        /// Zero or negative width or height given for raw pixels or an encoder.
        case invalidDimensions
        /// The codec library failed outside the data (could not allocate its state, encode failed).
        case codecFailure
    }

    public let code: Code
    /// The format concerned, when known.
    public let format: ImageFormat?
    public let message: String

    public init(_ code: Code, _ message: String, format: ImageFormat? = nil) {
        self.code = code
        self.message = message
        self.format = format
    }

    public var description: String {
        format.map { "\($0.rawValue): \(message) [\(code.rawValue)]" } ?? "\(message) [\(code.rawValue)]"
    }
    public var errorDescription: String? { description }
}
