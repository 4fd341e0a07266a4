// The exposition as a file for node_exporter's textfile collector, rewritten every `interval`
// seconds on its own thread. Each write goes to `<path>.tmp` (node_exporter reads only *.prom, so it
// never sees a half-written file), is fsync'ed, and renamed over `<path>`: a reader sees the old file
// or the new one, whole. The file is mode 0644 whatever the umask: node_exporter runs as another user.
import Foundation
import Logging

final class MetricsTextfileWriter: @unchecked Sendable {
    let path: String
    private let interval: Double
    private let render: @Sendable () -> String
    private let logger: Logger
    private let condition = NSCondition()
    private var stopping = false
    private var running = false
    private let finished = DispatchSemaphore(value: 0)
    /// The last error logged, so that a lasting problem is logged once, not every interval.
    private var lastFailure: String?

    /// Writes the file once, so that a path that cannot work fails here.
    init(path: String, interval: Double, render: @escaping @Sendable () -> String, logger: Logger) throws {
        guard path.hasSuffix(".prom") else {
            throw ObservabilityError(.cannotWriteTextfile,
                                     "metrics.textfile '\(path)' must end in .prom: node_exporter's textfile collector reads only *.prom files")
        }
        self.path = path
        self.interval = max(interval, 0.05)
        self.render = render
        self.logger = logger
        try write()
    }

    func start() {
        condition.withLock {
            guard !running else { return }
            running = true
        }
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "glfd-metrics-textfile"
        thread.start()
    }

    /// Stops the thread and writes the file a last time.
    func stop() {
        let wasRunning: Bool = condition.withLock {
            guard running, !stopping else { return false }
            stopping = true
            condition.signal()
            return true
        }
        if wasRunning { finished.wait() }
    }

    private func run() {
        var next = Date().addingTimeInterval(interval)
        while true {
            let stop: Bool = condition.withLock {
                while !stopping && condition.wait(until: next) {}
                return stopping
            }
            writeLogged()
            if stop { return }
            next = max(next.addingTimeInterval(interval), Date())
        }
    }

    private func writeLogged() {
        do {
            try write()
            if lastFailure != nil {
                logger.info("metrics textfile written again", metadata: ["path": "\(path)"])
                lastFailure = nil
            }
        } catch {
            let message = "\(error)"
            if message != lastFailure { logger.warning("cannot write metrics textfile", metadata: ["path": "\(path)", "error": "\(message)"]) }
            lastFailure = message
        }
    }

    /// `<path>.tmp`, fsync, rename.
    func write() throws {
        let temporary = path + ".tmp"
        let bytes = Array(render().utf8)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("cannot create \(temporary)") }
        // node_exporter runs as another user: readable by all, whatever the daemon's umask.
        _ = fchmod(fd, 0o644)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                let error = failure("cannot write \(temporary)")
                Foundation.close(fd)
                unlink(temporary)
                throw error
            }
            offset += written
        }
        guard fsync(fd) == 0 else {
            let error = failure("cannot fsync \(temporary)")
            Foundation.close(fd)
            unlink(temporary)
            throw error
        }
        Foundation.close(fd)
        guard rename(temporary, path) == 0 else {
            let error = failure("cannot rename \(temporary) to \(path)")
            unlink(temporary)
            throw error
        }
    }

    private func failure(_ what: String) -> ObservabilityError {
        ObservabilityError(.cannotWriteTextfile, "metrics textfile: \(what): \(String(cString: strerror(errno)))")
    }
}
