// Real NATS servers with JetStream for the tests: one, or a cluster of several on loopback ports
// (routes between them, a RAFT group per stream), each a `nats-server` process from Debian's
// package with its own store directory and log file. A node can be killed (SIGKILL) and restarted
// on the same ports and store, as the fault tests need.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class NATSCluster: @unchecked Sendable {
    public struct Node: Sendable {
        public let name: String
        public let clientPort: Int
        public let clusterPort: Int
        public let storeDirectory: URL
        public let logFile: URL
        public var url: String { "nats://127.0.0.1:\(clientPort)" }
    }

    public static let executable = "/usr/sbin/nats-server"  // Debian's nats-server package
    public let directory: URL
    public let nodes: [Node]
    private var processes: [Process?]

    /// Every node's client URL: what a client is given to find the cluster.
    public var urls: [String] { nodes.map(\.url) }

    /// Starts `count` servers (a cluster if more than one) and waits until each says it is ready.
    /// Client ports are picked free unless `clientPorts` names them.
    public init(nodes count: Int, clientPorts: [Int]? = nil,
                directory: URL = URL(fileURLWithPath: NSTemporaryDirectory() + "glfd-nats-\(UUID().uuidString)")) throws {
        precondition(clientPorts.map { $0.count == count } ?? true, "one client port per node")
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        nodes = try (0..<count).map { index in
            Node(name: "n\(index)", clientPort: try clientPorts?[index] ?? freeLoopbackPort(), clusterPort: try freeLoopbackPort(),
                 storeDirectory: directory.appendingPathComponent("n\(index)"), logFile: directory.appendingPathComponent("n\(index).log"))
        }
        processes = Array(repeating: nil, count: count)
        for index in nodes.indices { try start(index) }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts node `index` (again: same ports, same store) and waits for it to be ready.
    public func start(_ index: Int, seconds: Double = 20) throws {
        let node = nodes[index]
        var arguments = ["-a", "127.0.0.1", "-p", "\(node.clientPort)", "-n", node.name, "-js", "-sd", node.storeDirectory.path]
        if nodes.count > 1 {
            let routes = nodes.filter { $0.name != node.name }.map { "nats://127.0.0.1:\($0.clusterPort)" }
            arguments += ["--cluster_name", "glfd-test", "--cluster", "nats://127.0.0.1:\(node.clusterPort)",
                          "--routes", routes.joined(separator: ",")]
        }
        FileManager.default.createFile(atPath: node.logFile.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: node.logFile)
        defer { try? logHandle.close() }  // the child has its own copy
        logHandle.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = arguments
        process.standardOutput = logHandle
        process.standardError = logHandle
        let alreadyLogged = (try? Data(contentsOf: node.logFile).count) ?? 0
        try process.run()
        processes[index] = process
        let ready = waitUntil(seconds: seconds) {
            guard let text = try? Data(contentsOf: node.logFile) else { return false }
            return String(decoding: text.dropFirst(alreadyLogged), as: UTF8.self).contains("Server is ready") || !process.isRunning
        }
        guard ready, process.isRunning else {
            throw NATSClusterError("nats-server \(node.name) did not start: \(log(of: index).suffix(2_000))")
        }
    }

    /// SIGKILL: the node dies as in a power loss, with what it had not synced.
    public func kill(_ index: Int) {
        guard let process = processes[index] else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        processes[index] = nil
    }

    /// Stops every node (SIGTERM, then SIGKILL after 10 s).
    public func stop() {
        for (index, process) in processes.enumerated() {
            guard let process else { continue }
            process.terminate()
            waitForExit(process, seconds: 10)
            processes[index] = nil
        }
    }

    public func log(of index: Int) -> String {
        (try? String(contentsOf: nodes[index].logFile, encoding: .utf8)) ?? ""
    }
}

public struct NATSClusterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A port nothing listens on right now (bound to 0, read back, released).
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw NATSClusterError("no free loopback port: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}
