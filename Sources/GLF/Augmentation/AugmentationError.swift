// Errors from augmentation: settings read from a config file, or a pixel batch from outside.
// Internal shape mismatches (a caller's tensor) are preconditions, not errors.
import Foundation

public struct AugmentationError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    public enum Code: String, Sendable {
        /// A recipe value is out of range (a probability outside [0, 1], mean/std of the wrong length...).
        case invalidSetting
        /// The pixel batch does not match its declared shape, or the shape is unusable.
        case invalidImages
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
    public var errorDescription: String? { message }
}
