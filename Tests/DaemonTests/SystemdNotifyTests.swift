// sd_notify from the real glfd process to a fake NOTIFY_SOCKET (a datagram socket this test
// binds): READY once serving, STATUS lines, WATCHDOG pings while the loops run, STOPPING on SIGTERM,
// then exit 0.
import Daemon
import Foundation
import GLFDTesting
import Testing

@Suite struct SystemdNotifyTests {
    @Test func glfdTellsSystemdItIsReadyAliveAndStopping() throws {
        let glfd = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("glfd").path
        try #require(FileManager.default.isExecutableFile(atPath: glfd), "\(glfd) is not built")
        let state = temporaryDaemonDirectory()
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let socketPath = state.appendingPathComponent("notify.sock").path
        let fd = try bindDatagramSocket(socketPath)
        defer { close(fd) }

        let metricsPort = try freeLoopbackPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: glfd)
        process.arguments = ["--set", "server.request_endpoint=tcp://127.0.0.1:*", "--set", "server.announce_endpoint=tcp://127.0.0.1:*",
                             "--set", "training.enabled=false", "--set", "metrics.endpoint=127.0.0.1:\(metricsPort)"]
        process.currentDirectoryURL = state
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = socketPath
        environment["WATCHDOG_USEC"] = "1000000"
        process.environment = environment
        process.standardError = FileHandle.nullDevice
        try process.run()

        var messages: [String] = []
        func collect(until predicate: ([String]) -> Bool, seconds: Double) {
            let deadline = Date().addingTimeInterval(seconds)
            while !predicate(messages), Date() < deadline {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if count > 0 { messages += String(decoding: buffer[..<count], as: UTF8.self).split(separator: "\n").map(String.init) }
                else { usleep(20_000) }
            }
        }
        collect(until: { $0.contains("READY=1") && $0.filter { $0 == "WATCHDOG=1" }.count >= 2 }, seconds: 120)
        #expect(messages.contains("READY=1"))
        #expect(messages.contains { $0.hasPrefix("STATUS=0 items, step 0, model version") }, "\(messages)")
        #expect(messages.contains("MAINPID=\(process.processIdentifier)"))
        #expect(messages.filter { $0 == "WATCHDOG=1" }.count >= 2, "\(messages)")

        // The live daemon's metrics, scraped like Prometheus does.
        let scrape = try httpGet(port: metricsPort, path: "/metrics")
        #expect(scrape.hasPrefix("HTTP/1.1 200"), "\(scrape.prefix(200))")
        for line in ["# TYPE glfd_store_items gauge", "glfd_store_items 0", "# TYPE glfd_model_version gauge",
                     "# TYPE glfd_store_map_size_bytes gauge"] {
            #expect(scrape.contains(line), "no '\(line)' in the scrape")
        }

        process.terminate()
        collect(until: { $0.contains("STOPPING=1") }, seconds: 60)
        #expect(waitForExit(process, seconds: 60), "glfd did not stop on SIGTERM")
        #expect(messages.contains("STOPPING=1"))
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
    }

    @Test func withoutNotifySocketNothingIsSent() {
        let notifier = SystemdNotifier(environment: [:])
        #expect(!notifier.isEnabled)
        #expect(notifier.watchdogInterval == nil)
        notifier.ready(status: "x")  // a no-op, not a crash
        let watched = SystemdNotifier(environment: ["NOTIFY_SOCKET": "@glfd-test", "WATCHDOG_USEC": "30000000"])
        #expect(watched.isEnabled && watched.watchdogInterval == 15)
    }
}

func bindDatagramSocket(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard fd >= 0, result == 0 else { throw CocoaError(.fileWriteUnknown) }
    return fd
}

/// A plain HTTP/1.1 GET on loopback, read until the server closes.
func httpGet(port: Int, path: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard connected else { throw CocoaError(.fileReadUnknown) }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        received += buffer[..<count]
    }
    return String(decoding: received, as: UTF8.self)
}
