// Why the metrics could not be exposed: a code to switch on, a message an operator can act on.
public struct ObservabilityError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// `metrics.endpoint` is not host:port.
        case badEndpoint = "bad_endpoint"
        /// The endpoint's address could not be bound (in use, not local, no permission).
        case cannotListen = "cannot_listen"
        /// `metrics.textfile` cannot be written (no such directory, no permission, not *.prom).
        case cannotWriteTextfile = "cannot_write_textfile"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
