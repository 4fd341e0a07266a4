// Errors a glfd reply can carry: a stable code a client can switch on, a message for people, and
// for per-image failures the index of the image in the request. The codes are part of the protocol
// (protocol/PROTOCOL.md, "Errors"); never rename one.
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    /// Wrong number of frames, or a frame where none was expected.
    case badFrames = "bad_frames"
    /// The first frame does not name a protocol version this server speaks.
    case unsupportedVersion = "unsupported_version"
    /// The header is not a JSON object, or a field has the wrong type or an invalid value.
    case badHeader = "bad_header"
    /// `cmd` names no command of this protocol version.
    case unknownCommand = "unknown_command"
    /// A frame, the header, or a count (images, ids, k) is over its limit.
    case tooLarge = "too_large"
    /// An image could not be decoded, or its declared size is over the limits.
    case badImage = "bad_image"
    /// The stored item (knn by id) does not exist.
    case notFound = "not_found"
    /// The store reached its maximum size: ingest is refused, queries go on.
    case storeFull = "store_full"
    /// The disk holding the store is full: ingest is refused, queries go on.
    case diskFull = "disk_full"
    /// Too many of this client's ingests are in flight: retry after a reply.
    case busy = "busy"
    /// No model yet (embed, knn before the first version), or the index is being built.
    case notReady = "not_ready"
    /// The daemon is shutting down; the request was not applied.
    case shuttingDown = "shutting_down"
    /// A failure of the daemon itself; the request was not applied.
    case internalError = "internal"
}

public struct ProtocolError: Error, Equatable, Sendable, Codable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    /// For errors about one image of a request: its position (0-based) in the request.
    public var index: Int?

    public init(_ code: ErrorCode, _ message: String, index: Int? = nil) {
        self.code = code
        self.message = message
        self.index = index
    }

    public var description: String {
        "\(code.rawValue): \(message)" + (index.map { " (image \($0))" } ?? "")
    }
}
