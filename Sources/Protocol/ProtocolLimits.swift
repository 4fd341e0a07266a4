// The version frame and the limits every message is checked against before anything else is done
// with it (protocol/PROTOCOL.md, "Limits").
public enum GLFDProtocol {
    /// Frame 0 of every request, reply and announcement body.
    public static let version = "glfd/1"
    public static var versionFrame: [UInt8] { Array(version.utf8) }
    /// The PUB topic of model announcements.
    public static let announcementTopic = "model"
}

public struct ProtocolLimits: Sendable, Equatable {
    public var maxHeaderBytes = 64 << 10
    public var maxImagesPerRequest = 256
    /// One encoded image (or raw pixel frame); the decoder's own limits apply after this.
    public var maxImageBytes = 16 << 20
    public var maxRequestBytes = 64 << 20
    public var maxK = 1000
    public var maxIDsPerRequest = 10_000
    public var maxVectorDimension = 65_536

    public init() {}
    public static let `default` = ProtocolLimits()
}
