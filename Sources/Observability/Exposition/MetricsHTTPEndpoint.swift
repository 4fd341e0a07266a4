// The smallest HTTP/1.1 server Prometheus needs: `GET /metrics` answers the exposition, every other
// path 404, and every connection is closed after one answer (Connection: close).
//
// POSIX sockets, one thread, one client at a time: a scrape every few seconds needs no more. What
// keeps it from ever hurting the daemon:
//   - non-blocking sockets and poll(2) with one deadline per connection (`clientTimeout`) for both
//     reading the request and writing the answer: a client that sends slowly or never reads is dropped;
//   - a request of at most `requestLimit` bytes (431 past it), and only its first line is parsed;
//   - MSG_NOSIGNAL, so a client that went away is an error return, not SIGPIPE;
//   - accept(2) failing for lack of descriptors backs off instead of spinning;
//   - stop() wakes the thread through a pipe, even in the middle of a slow client.
import Foundation
import Logging

final class MetricsHTTPEndpoint: @unchecked Sendable {
    static let requestLimit = 8192

    /// host:port as bound, the real port when 0 was asked for.
    let address: String
    let port: Int
    private let listener: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let clientTimeout: Double
    private let render: @Sendable () -> String
    private let logger: Logger
    private let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var state = State.bound

    private enum State { case bound, running, closed }

    init(endpoint: String, clientTimeout: Double, render: @escaping @Sendable () -> String, logger: Logger) throws {
        self.clientTimeout = clientTimeout
        self.render = render
        self.logger = logger
        let (host, service) = try Self.split(endpoint)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, service, &hints, &list)
        guard status == 0, let list else {
            throw ObservabilityError(.badEndpoint, "metrics.endpoint '\(endpoint)': cannot resolve '\(host)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var bound: Int32 = -1
        var failure: Int32 = 0
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let info = entry, bound < 0 {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                            info.pointee.ai_protocol)
            if fd < 0 { failure = errno; continue }
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 && listen(fd, 16) == 0 {
                bound = fd
            } else {
                failure = errno
                Foundation.close(fd)
            }
        }
        guard bound >= 0 else {
            throw ObservabilityError(.cannotListen, "cannot listen for metrics on \(endpoint): \(String(cString: strerror(failure))); "
                                     + "set metrics.endpoint to a free local host:port, or to \"\" to turn the endpoint off")
        }
        listener = bound
        (address, port) = Self.localAddress(bound)
        var pipe: [Int32] = [-1, -1]
        guard Foundation.pipe(&pipe) == 0 else {
            let reason = String(cString: strerror(errno))
            Foundation.close(bound)
            throw ObservabilityError(.cannotListen, "cannot listen for metrics on \(endpoint): no pipe for the server thread: \(reason)")
        }
        (wakeRead, wakeWrite) = (pipe[0], pipe[1])
        _ = fcntl(wakeRead, F_SETFD, FD_CLOEXEC)
        _ = fcntl(wakeWrite, F_SETFD, FD_CLOEXEC)
    }

    /// "host:port" or "[v6]:port" → (host, port); the port is 0 … 65535.
    static func split(_ endpoint: String) throws -> (host: String, port: String) {
        let problem = ObservabilityError(.badEndpoint, "metrics.endpoint '\(endpoint)' is not host:port (e.g. 127.0.0.1:9464)")
        guard let colon = endpoint.lastIndex(of: ":") else { throw problem }
        var host = String(endpoint[..<colon])
        let port = String(endpoint[endpoint.index(after: colon)...])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let number = Int(port), (0...65535).contains(number) else { throw problem }
        return (host, String(number))
    }

    private static func localAddress(_ fd: Int32) -> (String, Int) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let ok = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                getsockname(fd, address, &length) == 0
                    && getnameinfo(address, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
                                   NI_NUMERICHOST | NI_NUMERICSERV) == 0
            }
        }
        guard ok else { return ("?", 0) }
        let name = Self.string(host)
        let port = Int(Self.string(service)) ?? 0
        return (name.contains(":") ? "[\(name)]:\(port)" : "\(name):\(port)", port)
    }

    private static func string(_ characters: [CChar]) -> String {
        String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func start() {
        lock.withLock {
            guard state == .bound else { return }
            state = .running
            let thread = Thread { [self] in
                run()
                finished.signal()
            }
            thread.name = "glfd-metrics-http"
            thread.start()
        }
    }

    /// Wakes the thread, waits for it, closes the sockets. Safe to call more than once.
    func stop() {
        let wasRunning: Bool = lock.withLock {
            let running = state == .running
            if running { var byte: UInt8 = 1; _ = write(wakeWrite, &byte, 1) }
            return running
        }
        if wasRunning { finished.wait() }
        close()
    }

    /// Closes the sockets of an endpoint that is not running.
    func close() {
        lock.withLock {
            guard state != .closed else { return }
            state = .closed
            Foundation.close(listener)
            Foundation.close(wakeRead)
            Foundation.close(wakeWrite)
        }
    }

    // MARK: The server thread

    private func run() {
        while true {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 {
                if errno != EINTR { usleep(100_000) }
                continue
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            let client = accept(listener, nil, nil)
            if client < 0 {
                let error = errno
                if error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM {
                    logger.warning("metrics endpoint cannot accept", metadata: ["error": "\(String(cString: strerror(error)))"])
                    usleep(100_000)
                }
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            serve(client)
            Foundation.close(client)
        }
    }

    private func serve(_ client: Int32) {
        let deadline = Self.now() + UInt64(clientTimeout * 1e9)
        guard let head = readHead(client, deadline: deadline) else { return }
        let answer: [UInt8]
        switch head {
        case .tooLarge:
            answer = Self.response("431 Request Header Fields Too Large", body: "request too large\n")
        case .request(let line):
            answer = respond(to: line)
        }
        writeAll(client, answer, deadline: deadline)
        // Tell the client we are done, and read what it still sends for a moment: closing with unread
        // bytes would reset the connection and could destroy the answer before the client reads it.
        shutdown(client, Int32(SHUT_WR))
        drain(client, deadline: min(deadline, Self.now() + 200_000_000))
    }

    private enum Head {
        case request(String)
        case tooLarge
    }

    /// The request line, once the whole head (up to the empty line) has arrived; nil when the client
    /// closed, timed out, or stop() was called.
    private func readHead(_ client: Int32, deadline: UInt64) -> Head? {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        while true {
            if let end = Self.endOfHead(received) {
                let head = received[..<end]
                let lineEnd = head.firstIndex(of: UInt8(ascii: "\n")) ?? head.endIndex
                let line = String(decoding: head[..<lineEnd], as: UTF8.self)
                return .request(line.hasSuffix("\r") ? String(line.dropLast()) : line)
            }
            if received.count >= Self.requestLimit { return .tooLarge }
            guard wait(client, for: Int16(POLLIN), until: deadline) else { return nil }
            let wanted = min(chunk.count, Self.requestLimit - received.count)
            let count = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, wanted, 0) }
            if count == 0 { return nil }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                return nil
            }
            received += chunk[..<count]
        }
    }

    /// Where the head ends ("\r\n\r\n" or "\n\n"), or nil.
    static func endOfHead(_ bytes: [UInt8]) -> Int? {
        let lf = UInt8(ascii: "\n")
        var index = 0
        while let next = bytes[index...].firstIndex(of: lf) {
            let after = next + 1
            if after < bytes.count && bytes[after] == lf { return after + 1 }
            if after + 1 < bytes.count && bytes[after] == UInt8(ascii: "\r") && bytes[after + 1] == lf { return after + 2 }
            index = after
        }
        return nil
    }

    private func respond(to line: String) -> [UInt8] {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            logger.debug("metrics endpoint: bad request", metadata: ["line": "\(line.prefix(80))"])
            return Self.response("400 Bad Request", body: "bad request\n")
        }
        let method = parts[0]
        let path = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        guard path == "/metrics" else { return Self.response("404 Not Found", body: "not found: glfd serves /metrics\n") }
        guard method == "GET" || method == "HEAD" else {
            return Self.response("405 Method Not Allowed", body: "only GET and HEAD\n", headers: "Allow: GET, HEAD\r\n")
        }
        return Self.response("200 OK", body: render(), contentType: PrometheusText.contentType, includeBody: method == "GET")
    }

    static func response(_ status: String, body: String, contentType: String = "text/plain; charset=utf-8",
                         headers: String = "", includeBody: Bool = true) -> [UInt8] {
        let bytes = Array(body.utf8)
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(bytes.count)\r\n\(headers)Connection: close\r\n\r\n"
        return Array(head.utf8) + (includeBody ? bytes : [])
    }

    private func writeAll(_ client: Int32, _ bytes: [UInt8], deadline: UInt64) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { send(client, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if count > 0 { offset += count; continue }
            if count < 0 && (errno == EINTR) { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait(client, for: Int16(POLLOUT), until: deadline) { continue }
            return
        }
    }

    private func drain(_ client: Int32, deadline: UInt64) {
        var sink = [UInt8](repeating: 0, count: 4096)
        var total = 0
        while total < 65536 && wait(client, for: Int16(POLLIN), until: deadline) {
            let count = sink.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if count < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) { continue }
            if count <= 0 { return }
            total += count
        }
    }

    /// Waits until `client` is ready for `events`; false on the deadline, on stop(), or on poll errors.
    private func wait(_ client: Int32, for events: Int16, until deadline: UInt64) -> Bool {
        while true {
            let now = Self.now()
            guard now < deadline else { return false }
            let milliseconds = Int32(min((deadline - now) / 1_000_000 + 1, 60_000))
            var fds = [pollfd(fd: client, events: events, revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                return false
            }
            if fds[1].revents != 0 { return false }
            if fds[0].revents != 0 { return true }
        }
    }

    private static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
