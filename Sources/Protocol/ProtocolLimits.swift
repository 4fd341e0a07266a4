// The version frame and the limits every message is checked against before anything else is done
// with it (protocol/PROTOCOL.md, "Limits").
public enum GLFDProtocol {
    /// Frame 0 of every request, reply and announcement body.
    public static let version = "glfd/1"
    public static var versionFrame: [UInt8] { Array(version.utf8) }
    /// The PUB topic of model announcements.
    public static let announcementTopic = "model"
    /// The PUB topic of drift alerts (a subscriber of `model` does not receive them).
    public static let driftTopic = "drift"
}

public struct ProtocolLimits: Sendable, Equatable {
    /// Large enough for every other limit at its edge: 10,000 ids of 20 digits (about 210 KB), or
    /// a `meta` of 64 KiB even when JSON escapes every byte of it (\u0000 is 6 bytes per byte).
    public var maxHeaderBytes = 1 << 20
    public var maxImagesPerRequest = 256
    /// One encoded image (or raw pixel frame); the decoder's own limits apply after this.
    public var maxImageBytes = 16 << 20
    public var maxRequestBytes = 64 << 20
    public var maxK = 1000
    public var maxIDsPerRequest = 10_000
    public var maxVectorDimension = 65_536
    /// The payload of one reply (the pixels of a `get`, the vectors of an `export` page): a reply
    /// a client does not read stays queued for it, up to the send high-water mark of them.
    public var maxReplyPayloadBytes = 4 << 20
    public var maxSourceBytes = 256
    public var maxMetaBytes = 64 << 10
    /// A header that fails as a whole is still read for its `id` up to this size, so the error
    /// reply can carry it; beyond it, reading would cost the request loop more than it is worth.
    public var maxIDPeekBytes = 4 << 20

    public init() {}
    public static let `default` = ProtocolLimits()
}
