// The NATS C client's failures as one typed error that keeps its status, JetStream's own error code
// (when the server gave one), and the call that failed.
import CNATS

public struct NATSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The client's `natsStatus` (NATS_TIMEOUT, NATS_NOT_FOUND, NATS_NO_SERVER, ...).
    public let status: UInt32
    /// JetStream's error code from the server (10059 stream not found, ...), 0 when there is none.
    public let jetStreamCode: UInt32
    /// The C function that failed and what it was given, e.g. "js_AddStream(glfd)".
    public let operation: String
    /// The client's wording: `natsStatus_GetText`, and the detail of the thread's last error.
    public let message: String

    init(status: natsStatus, jetStreamCode: jsErrCode = jsErrCode(rawValue: 0), operation: String) {
        self.status = status.rawValue
        self.jetStreamCode = jetStreamCode.rawValue
        self.operation = operation
        var lastStatus = NATS_OK
        let detail = nats_GetLastError(&lastStatus).map { String(cString: $0) } ?? ""
        let text = String(cString: natsStatus_GetText(status))
        message = detail.isEmpty || detail == text ? text : "\(text): \(detail)"
    }

    public var description: String {
        "\(operation): \(message) (status \(status)\(jetStreamCode != 0 ? ", JetStream error \(jetStreamCode)" : ""))"
    }

    /// The stream or consumer named does not exist.
    public var isNotFound: Bool {
        status == NATS_NOT_FOUND.rawValue || jetStreamCode == JSStreamNotFoundErr.rawValue
            || jetStreamCode == JSConsumerNotFoundErr.rawValue
    }}

/// Turns a client status (and JetStream's error code, for the calls that give one) into a thrown `NATSError`.
@inline(__always)
func check(_ status: natsStatus, _ jetStreamCode: jsErrCode, _ operation: @autoclosure () -> String) throws(NATSError) {
    guard status != NATS_OK else { return }
    throw NATSError(status: status, jetStreamCode: jetStreamCode, operation: operation())
}

@inline(__always)
func check(_ status: natsStatus, _ operation: @autoclosure () -> String) throws(NATSError) {
    try check(status, jsErrCode(rawValue: 0), operation())
}
