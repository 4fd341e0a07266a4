// A connection to a NATS cluster: the client library's connection, which reconnects by itself to
// any server of the list (and to the ones the cluster gossips) when the one it uses goes away.
//
// The C client's connection is thread-safe; so is this class. JetStream is reached through
// `jetStream(...)`, a context that keeps the connection alive.
import CNATS
import Foundation

public final class NATSConnection: @unchecked Sendable {
    let handle: OpaquePointer

    public struct Options: Sendable {
        /// Shown in the server's connection list (`nats-server` monitoring, `connz`).
        public var name = "glfd"
        /// Milliseconds to wait for a server to accept the connection.
        public var connectTimeoutMilliseconds: Int64 = 2_000
        /// Reconnection attempts per server after a loss (-1: for ever) and the pause between them.
        public var maxReconnects: Int32 = -1
        public var reconnectWaitMilliseconds: Int64 = 250
        public init() {}
    }

    /// Connects to the first server of `servers` (nats://host:port, …) that answers.
    public init(servers: [String], options: Options = Options()) throws(NATSError) {
        precondition(!servers.isEmpty, "at least one server")
        var opts: OpaquePointer?
        try check(natsOptions_Create(&opts), "natsOptions_Create")
        defer { natsOptions_Destroy(opts) }
        let strings = servers.map { strdup($0) }
        defer { strings.forEach { free($0) } }
        var pointers = strings.map { UnsafePointer<CChar>($0) }
        try check(pointers.withUnsafeMutableBufferPointer { natsOptions_SetServers(opts, $0.baseAddress, Int32($0.count)) },
                  "natsOptions_SetServers(\(servers.joined(separator: ",")))")
        try check(natsOptions_SetName(opts, options.name), "natsOptions_SetName")
        try check(natsOptions_SetTimeout(opts, options.connectTimeoutMilliseconds), "natsOptions_SetTimeout")
        try check(natsOptions_SetMaxReconnect(opts, options.maxReconnects), "natsOptions_SetMaxReconnect")
        try check(natsOptions_SetReconnectWait(opts, options.reconnectWaitMilliseconds), "natsOptions_SetReconnectWait")
        var connection: OpaquePointer?
        try check(natsConnection_Connect(&connection, opts), "natsConnection_Connect(\(servers.joined(separator: ",")))")
        handle = connection!
    }

    deinit {
        natsConnection_Destroy(handle)
    }

    /// Closes the connection: pending fetches and publishes fail. Idempotent.
    public func close() {
        natsConnection_Close(handle)
    }

    /// Waits until the server has processed everything sent so far (acknowledgements included).
    public func flush(timeoutMilliseconds: Int64 = 5_000) throws(NATSError) {
        try check(natsConnection_FlushTimeout(handle, timeoutMilliseconds), "natsConnection_FlushTimeout")
    }



    /// JetStream through this connection; its API calls wait up to `waitMilliseconds` for the server.
    public func jetStream(waitMilliseconds: Int64 = 5_000) throws(NATSError) -> JetStream {
        try JetStream(connection: self, waitMilliseconds: waitMilliseconds)
    }
}
