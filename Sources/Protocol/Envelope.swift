// The routing envelope a ROUTER socket puts in front of a message: the peer's routing id, plus an
// empty delimiter frame when the peer is a REQ socket. Replies go back with the same envelope, so
// DEALER and REQ clients are both served without the server knowing which is which.
public struct Envelope: Sendable, Equatable {
    public var frames: [[UInt8]]

    /// Splits a message received on a ROUTER socket into envelope and body. Nil when there is not
    /// even a routing id (cannot happen on a ROUTER socket, but the caller need not trust that).
    public static func split(_ message: [[UInt8]]) -> (envelope: Envelope, body: [[UInt8]])? {
        guard let routingID = message.first else { return nil }
        if message.count >= 2 && message[1].isEmpty {
            return (Envelope(frames: [routingID, []]), Array(message.dropFirst(2)))
        }
        return (Envelope(frames: [routingID]), Array(message.dropFirst()))
    }

    /// The envelope in front of a reply body.
    public func wrap(_ body: [[UInt8]]) -> [[UInt8]] { frames + body }
}
