// The metrics as Prometheus gets them: a real scrape of the loopback endpoint over a raw socket, the
// endpoint's answers to wrong paths, garbage and slow clients, and the textfile node_exporter reads.
import Foundation
import Observability
import XCTest

final class MetricsExpositionTests: XCTestCase {
    private func sampleMetrics() -> GLFDMetrics {
        let metrics = GLFDMetrics()
        metrics.ingested(items: 12, bytes: 4096)
        metrics.setTraining(step: 40, imagesPerSecond: 300, loss: ["total": 2.5, "adc": 0.75], collapse: 0.09, rolledBack: 0)
        for seconds in [0.002, 0.004, 0.03, 1.2] { metrics.queryLatency(command: "knn", exact: false, seconds: seconds) }
        return metrics
    }

    func testScrapeOverHTTPParsesAsPrometheusText() throws {
        let metrics = sampleMetrics()
        let exposition = try MetricsExposition.start(registry: metrics.registry, endpoint: "127.0.0.1:0", textfile: nil)
        defer { exposition.stop() }
        let port = try XCTUnwrap(exposition.endpointPort)
        XCTAssertGreaterThan(port, 0)
        XCTAssertEqual(exposition.endpointAddress, "127.0.0.1:\(port)")

        let response = try HTTPResponse(RawClient.exchange(port: port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n"))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        XCTAssertEqual(response.headers["connection"], "close")
        XCTAssertEqual(Int(response.headers["content-length"] ?? ""), response.body.utf8.count)

        let parsed = try PrometheusTextParser.parse(response.body)
        XCTAssertEqual(parsed.types["glfd_ingest_items_total"], "counter")
        XCTAssertEqual(parsed.help["glfd_ingest_items_total"], "Images acknowledged (durable in the store)")
        XCTAssertEqual(parsed.value("glfd_ingest_items_total"), 12)
        XCTAssertEqual(parsed.types["glfd_training_loss"], "gauge")
        XCTAssertEqual(parsed.value("glfd_training_loss", ["term": "adc"]), 0.75)
        let labels = ["command": "knn", "index": "approximate"]
        let buckets = parsed.buckets("glfd_query_duration_seconds", labels)
        XCTAssertEqual(buckets.last?.le, .infinity)
        XCTAssertEqual(buckets.last?.count, parsed.value("glfd_query_duration_seconds_count", labels))
        XCTAssertEqual(buckets.last?.count, 4)
        XCTAssertTrue(zip(buckets, buckets.dropFirst()).allSatisfy { $0.count <= $1.count && $0.le < $1.le })

        // A scrape is always fresh.
        metrics.ingested(items: 3)
        let again = try PrometheusTextParser.parse(HTTPResponse(RawClient.exchange(port: port, "GET /metrics?format=text HTTP/1.0\r\n\r\n")).body)
        XCTAssertEqual(again.value("glfd_ingest_items_total"), 15)

        let head = try HTTPResponse(RawClient.exchange(port: port, "HEAD /metrics HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.body, "")
    }

    func testOtherPathsMethodsAndGarbage() throws {
        let exposition = try MetricsExposition.start(registry: sampleMetrics().registry, endpoint: "127.0.0.1:0", textfile: nil,
                                                     clientTimeout: 0.5)
        defer { exposition.stop() }
        let port = try XCTUnwrap(exposition.endpointPort)
        XCTAssertEqual(try HTTPResponse(RawClient.exchange(port: port, "GET / HTTP/1.1\r\n\r\n")).status, 404)
        XCTAssertEqual(try HTTPResponse(RawClient.exchange(port: port, "GET /metrics/extra HTTP/1.1\r\n\r\n")).status, 404)
        let post = try HTTPResponse(RawClient.exchange(port: port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"))
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.headers["allow"], "GET, HEAD")
        XCTAssertEqual(try HTTPResponse(RawClient.exchange(port: port, "\u{1}\u{2}garbage\r\n\r\n")).status, 400)
        XCTAssertEqual(try HTTPResponse(RawClient.exchange(port: port, "GET /metrics SMTP/1.0\r\n\r\n")).status, 400)
        XCTAssertEqual(try HTTPResponse(RawClient.exchange(port: port, String(repeating: "A", count: 20_000))).status, 431)

        // Random bytes, a client that says nothing, one that stops half way, one that leaves at once.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<10 {
            let bytes = (0..<Int.random(in: 1...3000, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? RawClient.exchange(port: port, bytes)
        }
        let silent = try RawClient.connect(port: port)
        let halfWay = try RawClient.connect(port: port)
        _ = "GET /met".withCString { send(halfWay, $0, 8, Int32(MSG_NOSIGNAL)) }
        close(try RawClient.connect(port: port))
        let started = Date()
        let response = try HTTPResponse(RawClient.exchange(port: port, "GET /metrics HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(response.status, 200, "served after the slow clients timed out")
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        XCTAssertNoThrow(try PrometheusTextParser.parse(response.body))
        XCTAssertEqual(RawClient.readAll(silent), "", "a silent client is dropped without an answer")
        close(silent)
        close(halfWay)
    }

    func testBindFailuresAndBadAddressesAreTypedErrors() throws {
        let registry = PrometheusRegistry()
        let first = try MetricsExposition.start(registry: registry, endpoint: "127.0.0.1:0", textfile: nil)
        defer { first.stop() }
        let port = try XCTUnwrap(first.endpointPort)
        XCTAssertThrowsError(try MetricsExposition.start(registry: registry, endpoint: "127.0.0.1:\(port)", textfile: nil)) { error in
            let error = error as? ObservabilityError
            XCTAssertEqual(error?.code, .cannotListen)
            XCTAssertTrue(error?.message.contains("127.0.0.1:\(port)") ?? false, error?.message ?? "")
            XCTAssertTrue(error?.message.contains("in use") ?? false, error?.message ?? "")
        }
        for endpoint in ["9464", ":9464", "127.0.0.1:http", "127.0.0.1:70000"] {
            XCTAssertThrowsError(try MetricsExposition.start(registry: registry, endpoint: endpoint, textfile: nil), endpoint) { error in
                XCTAssertEqual((error as? ObservabilityError)?.code, .badEndpoint, endpoint)
            }
        }
        XCTAssertThrowsError(try MetricsExposition.start(registry: registry, endpoint: "192.0.2.1:9464", textfile: nil)) { error in
            XCTAssertEqual((error as? ObservabilityError)?.code, .cannotListen, "not an address of this host")
        }
        let none = try MetricsExposition.start(registry: registry, endpoint: "", textfile: "")
        XCTAssertNil(none.endpointAddress)
        none.stop()
        none.stop()
    }

    func testIPv6Loopback() throws {
        let exposition: MetricsExposition
        do {
            exposition = try MetricsExposition.start(registry: sampleMetrics().registry, endpoint: "[::1]:0", textfile: nil)
        } catch let error as ObservabilityError {
            throw XCTSkip("no IPv6 loopback here: \(error)")
        }
        defer { exposition.stop() }
        XCTAssertTrue(exposition.endpointAddress?.hasPrefix("[::1]:") ?? false, exposition.endpointAddress ?? "nil")
    }

    func testTextfileIsWrittenAtomicallyAndKeptFresh() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("glfd-metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("glfd.prom").path
        let metrics = sampleMetrics()
        let exposition = try MetricsExposition.start(registry: metrics.registry, endpoint: nil, textfile: path, interval: 0.02)
        XCTAssertEqual(exposition.textfilePath, path)

        // Written before start returns; then, while it is rewritten every 20 ms, every read is whole.
        XCTAssertEqual(try PrometheusTextParser.parse(String(contentsOfFile: path, encoding: .utf8)).value("glfd_ingest_items_total"), 12)
        metrics.ingested(items: 30)
        var sawUpdate = false
        let deadline = Date().addingTimeInterval(10)
        var reads = 0
        while Date() < deadline && (reads < 200 || !sawUpdate) {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let parsed = try PrometheusTextParser.parse(text)
            XCTAssertNotNil(parsed.value("glfd_store_items"), "a whole file")
            XCTAssertTrue(text.hasSuffix("\n"))
            if parsed.value("glfd_ingest_items_total") == 42 { sawUpdate = true }
            reads += 1
        }
        XCTAssertTrue(sawUpdate)
        metrics.ingested(items: 1)
        exposition.stop()
        let final = try PrometheusTextParser.parse(String(contentsOfFile: path, encoding: .utf8))
        XCTAssertEqual(final.value("glfd_ingest_items_total"), 43, "stop writes the last values")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["glfd.prom"], "no .tmp left behind")
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o644, "readable by node_exporter's user")
    }

    func testTextfileProblemsAreTypedErrors() throws {
        let registry = PrometheusRegistry()
        XCTAssertThrowsError(try MetricsExposition.start(registry: registry, endpoint: nil, textfile: "/nonexistent-glfd-dir/glfd.prom")) { error in
            let error = error as? ObservabilityError
            XCTAssertEqual(error?.code, .cannotWriteTextfile)
            XCTAssertTrue(error?.message.contains("/nonexistent-glfd-dir/glfd.prom.tmp") ?? false, error?.message ?? "")
        }
        XCTAssertThrowsError(try MetricsExposition.start(registry: registry, endpoint: nil, textfile: "/tmp/glfd.txt")) { error in
            XCTAssertEqual((error as? ObservabilityError)?.code, .cannotWriteTextfile)
        }
        // A textfile problem does not leave the endpoint bound.
        let probe = try MetricsExposition.start(registry: registry, endpoint: "127.0.0.1:0", textfile: nil)
        let port = try XCTUnwrap(probe.endpointPort)
        probe.stop()
        XCTAssertThrowsError(try MetricsExposition.start(registry: registry, endpoint: "127.0.0.1:\(port)", textfile: "/nonexistent-glfd-dir/glfd.prom"))
        let again = try MetricsExposition.start(registry: registry, endpoint: "127.0.0.1:\(port)", textfile: nil)
        again.stop()
    }
}

// MARK: A raw HTTP client (URLSession needs FoundationNetworking on Linux; a scrape needs no more).

enum RawClient {
    struct Failure: Error { var reason: String }

    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(reason: "socket: \(errno)") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { close(fd); throw Failure(reason: "connect: \(errno)") }
        return fd
    }

    static func exchange(port: Int, _ request: String) throws -> String { try exchange(port: port, Array(request.utf8)) }

    /// Sends the request, then reads until the server closes.
    static func exchange(port: Int, _ request: [UInt8]) throws -> String {
        let fd = try connect(port: port)
        defer { close(fd) }
        var offset = 0
        while offset < request.count {
            let sent = request.withUnsafeBytes { send(fd, $0.baseAddress! + offset, request.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { break }  // the server may answer and close before reading everything
            offset += sent
        }
        shutdown(fd, Int32(SHUT_WR))
        return readAll(fd)
    }

    static func readAll(_ fd: Int32) -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }
}

struct HTTPResponse {
    var status: Int
    var headers: [String: String]
    var body: String

    init(_ text: String) throws {
        guard let split = text.range(of: "\r\n\r\n") else { throw RawClient.Failure(reason: "no HTTP head in '\(text.prefix(200))'") }
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, statusParts[0] == "HTTP/1.1", let status = Int(statusParts[1]) else {
            throw RawClient.Failure(reason: "bad status line '\(lines[0])'")
        }
        self.status = status
        headers = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        body = String(text[split.upperBound...])
    }
}
