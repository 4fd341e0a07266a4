// sd_notify(3) without libsystemd: datagrams of "KEY=value" lines to the AF_UNIX socket named by
// $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@'). Outside systemd the
// variable is unset and every call does nothing.
//
// The watchdog (WatchdogSec= in the unit, $WATCHDOG_USEC here) is fed only while the daemon's
// loops make progress: each loop calls `beat(_:)` as it goes round, and the feeder sends WATCHDOG=1
// only when every registered loop has beaten within the watchdog interval. A hung loop therefore
// stops the pings, and systemd restarts the service.
import Foundation

public final class SystemdNotifier: @unchecked Sendable {
    private let address: sockaddr_un?
    private let addressLength: socklen_t
    private let fd: Int32
    /// Half of WatchdogSec, as sd_watchdog_enabled(3) recommends; nil without a watchdog.
    public let watchdogInterval: TimeInterval?
    private let lock = NSLock()
    private var beats: [String: Date] = [:]
    private var feeding = false

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        var path = environment["NOTIFY_SOCKET"] ?? ""
        if let usec = environment["WATCHDOG_USEC"].flatMap(Double.init), usec > 0,
           environment["WATCHDOG_PID"].map({ $0 == String(getpid()) }) ?? true {
            watchdogInterval = usec / 2e6
        } else {
            watchdogInterval = nil
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !path.isEmpty, path.utf8.count < capacity, path.hasPrefix("/") || path.hasPrefix("@") else {
            self.address = nil
            addressLength = 0
            fd = -1
            return
        }
        let abstract = path.hasPrefix("@")
        if abstract { path.removeFirst() }
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: (abstract ? [0] : []) + bytes)
        }
        let used = (abstract ? 1 : 0) + bytes.count
        self.address = address
        addressLength = socklen_t(MemoryLayout<sa_family_t>.size + used + (abstract ? 0 : 1))
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    deinit { if fd >= 0 { close(fd) } }

    public var isEnabled: Bool { address != nil && fd >= 0 }

    /// Sends "KEY=value" lines, e.g. ["READY=1", "STATUS=serving"].
    public func notify(_ lines: [String]) {
        guard isEnabled, var address else { return }
        let message = Array(lines.joined(separator: "\n").utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sockaddrPointer, addressLength) }
            }
        }
    }

    public func ready(status: String) { notify(["READY=1", "STATUS=\(status)", "MAINPID=\(getpid())"]) }
    public func status(_ text: String) { notify(["STATUS=\(text)"]) }
    public func stopping() { notify(["STOPPING=1", "STATUS=stopping"]) }
    public func reloading() { notify(["RELOADING=1"]) }

    /// A loop went round; it now counts for the watchdog.
    public func beat(_ loop: String) {
        lock.withLock { beats[loop] = Date() }
    }

    /// Stops counting a loop (it ended on purpose).
    public func retire(_ loop: String) {
        lock.withLock { _ = beats.removeValue(forKey: loop) }
    }

    /// Starts feeding the watchdog (if the unit has one): every interval, WATCHDOG=1 when all loops
    /// beat recently, nothing otherwise.
    public func startWatchdog() {
        guard isEnabled, let interval = watchdogInterval else { return }
        let started = lock.withLock { () -> Bool in
            defer { feeding = true }
            return feeding
        }
        guard !started else { return }
        let thread = Thread { [self] in
            while lock.withLock({ feeding }) {
                let now = Date()
                let healthy = lock.withLock { beats.values.allSatisfy { now.timeIntervalSince($0) < interval * 2 } }
                if healthy { notify(["WATCHDOG=1"]) }
                Thread.sleep(forTimeInterval: interval / 2)
            }
        }
        thread.name = "glfd-watchdog"
        thread.start()
    }

    public func stopWatchdog() { lock.withLock { feeding = false } }
}
