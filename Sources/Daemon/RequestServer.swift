// The request loop: one thread owns the ROUTER socket (requests), the PUB socket (announcements)
// and the receiving end of a mailbox through which other threads hand back replies. It never waits
// on anything but zmq_poll: decoding a request is cheap and bounded by the protocol limits, and the
// work itself (ingest, queries) runs elsewhere and answers through the mailbox.
//
// Limits, so that one client cannot hurt the others: explicit high-water marks on both sockets, a
// per-frame maximum (ZMQ_MAXMSGSIZE) enforced by libzmq before a byte reaches us, the protocol's
// limits after, and a cap on each client's ingests in flight (`busy` beyond it).
import Foundation
import Protocol
import ZeroMQ

public struct ServerSettings: Sendable, Equatable {
    public var requestEndpoint = "tcp://127.0.0.1:5555"
    public var announceEndpoint = "tcp://127.0.0.1:5556"
    public var sendHighWaterMark: Int32 = 1000
    public var receiveHighWaterMark: Int32 = 1000
    public var maxInflightIngestsPerClient = 8
    public var limits = ProtocolLimits.default
    /// CURVE encryption and client authentication on both sockets; nil: plain (loopback only).
    public var curve: CurveSettings?
    public init() {}
}

public struct CurveSettings: Sendable, Equatable {
    /// The server's secret key, 32 bytes (Z85-decoded).
    public var serverSecretKey: [UInt8]
    /// Public keys (32 bytes each) of the clients allowed in; everyone else is refused by ZAP.
    public var allowedClients: Set<[UInt8]>

    public init(serverSecretKey: [UInt8], allowedClients: Set<[UInt8]>) {
        self.serverSecretKey = serverSecretKey
        self.allowedClients = allowedClients
    }

    /// Reads a Z85 secret key file and an allowlist file (one Z85 public key per line, `#` comments).
    public static func load(secretKeyFile: String, allowedClientsFile: String) throws -> CurveSettings {
        let allowed = allowedClientsFile.isEmpty ? [] : try keys(in: allowedClientsFile)
        return CurveSettings(serverSecretKey: try ZMQCurve.z85Decode(try key(in: secretKeyFile)),
                             allowedClients: Set(try allowed.map { try ZMQCurve.z85Decode($0) }))
    }

    /// The Z85 keys of a key file: the first word of each line; lines starting with '#' are
    /// comments. ('#' is a Z85 character, so a comment after a key needs a space before it.)
    public static func keys(in path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            .compactMap { $0.split(whereSeparator: \.isWhitespace).first.map(String.init) }
    }

    /// The first key of a key file (glfctl keygen's NAME.key or NAME.pub).
    public static func key(in path: String) throws -> String {
        guard let key = try keys(in: path).first else { throw ZMQError(code: EINVAL, operation: "no key in \(path)") }
        return key
    }
}

/// Who asked: enough to send the reply back and to count the client's ingests.
public struct ClientRef: Sendable, Hashable {
    let envelope: [[UInt8]]
    public var routingID: [UInt8] { envelope.first ?? [] }
}

/// What the server hands requests to. `respond` may be called from any thread, exactly once.
public protocol RequestHandling: AnyObject, Sendable {
    func handle(_ request: Request, from client: ClientRef, respond: @escaping @Sendable (Reply) -> Void)
}

public final class RequestServer: @unchecked Sendable {
    public let settings: ServerSettings
    /// The CURVE allowlist now: server thread only (SIGHUP replaces it through the mailbox).
    private var allowedClients: Set<[UInt8]>
    private let context: ZMQContext
    private let router: ZMQSocket
    private let publisher: ZMQSocket
    private let mailbox: Mailbox
    /// ZAP (ZeroMQ's authentication protocol, RFC 27) handler when CURVE is on: libzmq asks it,
    /// for each connecting peer, whether that public key may talk to us.
    private let authenticator: ZMQSocket?
    private weak var handler: (any RequestHandling)?
    private let finished = DispatchSemaphore(value: 0)
    private var inflightIngests: [[UInt8]: Int] = [:]  // server thread only
    /// Told each time the loop goes round (at least once a second even when idle): the watchdog.
    public var heartbeat: (@Sendable () -> Void)?

    /// Binds both sockets: once this returns, clients can connect (and wait until `start`).
    public init(settings: ServerSettings) throws(ZMQError) {
        self.settings = settings
        allowedClients = settings.curve?.allowedClients ?? []
        context = try ZMQContext()
        if settings.curve != nil {
            // Bound before any CURVE socket, so no handshake happens without it.
            let zap = try ZMQSocket(context: context, type: .rep)
            try zap.bind("inproc://zeromq.zap.01")
            authenticator = zap
        } else {
            authenticator = nil
        }
        router = try ZMQSocket(context: context, type: .router)
        try router.set(.sendHighWaterMark, to: settings.sendHighWaterMark)
        try router.set(.receiveHighWaterMark, to: settings.receiveHighWaterMark)
        try router.set(.maxMessageSize, to: Int64(settings.limits.maxImageBytes + settings.limits.maxHeaderBytes))
        publisher = try ZMQSocket(context: context, type: .pub)
        try publisher.set(.sendHighWaterMark, to: settings.sendHighWaterMark)
        if let curve = settings.curve {
            for socket in [router, publisher] {
                try socket.set(.curveServer, to: true)
                try socket.set(.curveSecretKey, to: curve.serverSecretKey)
                try socket.set(.zapDomain, to: "glfd")
            }
        }
        try router.bind(settings.requestEndpoint)
        try publisher.bind(settings.announceEndpoint)
        mailbox = try Mailbox(context: context)
    }

    /// The endpoints as bound (a `:*` port resolved), for logs and tests.
    public var boundEndpoints: (requests: String, announcements: String) {
        ((try? router.lastEndpoint) ?? settings.requestEndpoint, (try? publisher.lastEndpoint) ?? settings.announceEndpoint)
    }

    /// Starts reading requests and handing them to `handler` (held weakly: once it is gone,
    /// requests are answered shutting_down).
    public func start(handler: any RequestHandling) {
        self.handler = handler
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "glfd-server"
        thread.start()
    }

    /// Stops the loop after it has sent every reply already handed back; later replies are dropped.
    public func stop() {
        mailbox.post(.stop)
        finished.wait()
    }

    /// Replaces the CURVE allowlist (SIGHUP): new connections are checked against it; connections
    /// already authenticated stay up.
    public func allowClients(_ keys: Set<[UInt8]>) { mailbox.post(.allowClients(keys)) }

    /// Sends an announcement on the PUB socket (from any thread).
    public func announce(_ announcement: Announcement) { mailbox.post(.publish(announcement.encode())) }

    /// Sends a drift alert on the PUB socket, topic `drift` (from any thread).
    public func announce(_ alert: DriftAlert) { mailbox.post(.publish(alert.encode())) }

    private func run() {
        var running = true
        while running {
            let ready: [ZMQEvents]
            do {
                // A finite wait: an idle loop still beats, so only a stuck loop starves the watchdog.
                var items: [(socket: ZMQSocket, events: ZMQEvents)] = [(router, .readable), (mailbox.receiver, .readable)]
                if let authenticator { items.append((authenticator, .readable)) }
                ready = try ZeroMQ.poll(items, timeoutMilliseconds: 1000)
                heartbeat?()
            } catch {
                if error.isInterrupted { continue }
                break
            }
            if ready[1].contains(.readable) {
                for letter in mailbox.take() {
                    switch letter {
                    case .reply(let client, let frames, let wasIngest):
                        if wasIngest { release(client) }
                        try? router.send(client.envelope + frames, dontWait: true)
                    case .publish(let frames):
                        try? publisher.send(frames, dontWait: true)
                    case .allowClients(let keys):
                        allowedClients = keys
                    case .stop:
                        running = false
                    }
                }
            }
            if let authenticator, ready.count > 2, ready[2].contains(.readable) {
                authenticate(authenticator)
            }
            // Drain what is queued, a bounded number per turn so replies are not starved.
            for _ in 0..<64 where running {
                guard let message = try? router.receive(dontWait: true) else { break }
                serve(message)
            }
        }
        router.close()
        publisher.close()
        authenticator?.close()
        mailbox.close()
    }

    /// Answers one ZAP request: 200 for an allowed CURVE client key, 400 for anything else.
    /// Request frames: version "1.0", request id, domain, address, routing id, mechanism, credentials.
    private func authenticate(_ zap: ZMQSocket) {
        guard let request = try? zap.receive(dontWait: true) else { return }
        let requestID = request.count > 1 ? request[1] : []
        let mechanism = request.count > 5 ? String(decoding: request[5], as: UTF8.self) : ""
        let allowed = request.count >= 7 && request[0] == Array("1.0".utf8) && mechanism == "CURVE"
            && allowedClients.contains(request[6])
        let status = allowed ? ("200", "OK") : ("400", mechanism == "CURVE" ? "client key not allowed" : "CURVE required")
        let user: [UInt8] = allowed ? Array(((try? ZMQCurve.z85Encode(request[6])) ?? "").utf8) : []
        try? zap.send([Array("1.0".utf8), requestID, Array(status.0.utf8), Array(status.1.utf8), user, []])
    }

    private func serve(_ message: [[UInt8]]) {
        guard let (envelope, body) = Envelope.split(message) else { return }
        let client = ClientRef(envelope: envelope.frames)
        switch Request.decode(body, limits: settings.limits) {
        case .failure(let failure):
            try? router.send(client.envelope + Reply.failure(id: failure.id, failure.error).encode(), dontWait: true)
        case .success(let request):
            let isIngest: Bool
            if case .ingest = request.command { isIngest = true } else { isIngest = false }
            if isIngest {
                let inflight = inflightIngests[client.routingID, default: 0]
                guard inflight < settings.maxInflightIngestsPerClient else {
                    let error = ProtocolError(.busy, "\(inflight) ingests of this client are in flight; wait for a reply")
                    try? router.send(client.envelope + Reply.failure(id: request.id, error).encode(), dontWait: true)
                    return
                }
                inflightIngests[client.routingID] = inflight + 1
            }
            guard let handler else {
                mailbox.post(.reply(client, Reply.failure(id: request.id, ProtocolError(.shuttingDown, "the daemon is stopping")).encode(), isIngest))
                return
            }
            let mailbox = self.mailbox
            handler.handle(request, from: client) { reply in
                mailbox.post(.reply(client, reply.encode(), isIngest))
            }
        }
    }

    private func release(_ client: ClientRef) {
        let remaining = inflightIngests[client.routingID, default: 1] - 1
        inflightIngests[client.routingID] = remaining > 0 ? remaining : nil
    }
}

/// Replies and announcements from other threads to the server thread: a locked queue, and a
/// one-byte wake-up over an inproc PAIR socket the server polls. The sending socket is shared under
/// the lock (ZeroMQ allows a socket to move between threads with a full memory barrier).
final class Mailbox: @unchecked Sendable {
    enum Letter {
        case reply(ClientRef, [[UInt8]], Bool)
        /// A message for the PUB socket: an announcement or a drift alert.
        case publish([[UInt8]])
        case allowClients(Set<[UInt8]>)
        case stop
    }

    let receiver: ZMQSocket
    private let sender: ZMQSocket
    private let lock = NSLock()
    private var letters: [Letter] = []
    private var closed = false

    init(context: ZMQContext) throws(ZMQError) {
        let endpoint = "inproc://glfd-mailbox-\(UUID().uuidString)"
        receiver = try ZMQSocket(context: context, type: .pair)
        try receiver.bind(endpoint)
        sender = try ZMQSocket(context: context, type: .pair)
        try sender.connect(endpoint)
    }

    func post(_ letter: Letter) {
        lock.withLock {
            guard !closed else { return }
            let wasEmpty = letters.isEmpty
            letters.append(letter)
            // One wake-up per batch of letters: the server takes them all at once.
            if wasEmpty { try? sender.send([[1]], dontWait: true) }
        }
    }

    /// Everything posted so far (server thread), with the wake-ups consumed.
    func take() -> [Letter] {
        while (try? receiver.receive(dontWait: true)) != nil {}
        return lock.withLock {
            defer { letters.removeAll() }
            return letters
        }
    }

    func close() {
        lock.withLock {
            closed = true
            sender.close()
        }
        receiver.close()
    }
}
