// Where journald lines go, and the level that loggers without their own level log at. One output is
// shared by every handler that `Observability.bootstrapLogging` makes; its level and writer can be
// changed at any time (a second bootstrap, a test capturing lines), which the handlers see at once.
import Foundation
import Logging

/// Takes one line without its trailing newline.
public typealias LogWriter = @Sendable (String) -> Void

public final class LogOutput: @unchecked Sendable {
    private let lock = NSLock()
    private var _level: Logger.Level
    private var _writer: LogWriter

    public init(level: Logger.Level = .info, writer: @escaping LogWriter = LogOutput.standardError) {
        _level = level
        _writer = writer
    }

    public var level: Logger.Level {
        get { lock.withLock { _level } }
        set { lock.withLock { _level = newValue } }
    }

    public var writer: LogWriter {
        get { lock.withLock { _writer } }
        set { lock.withLock { _writer = newValue } }
    }

    /// Writes under the lock, so that lines of different threads never interleave.
    func write(_ line: String) {
        lock.withLock { _writer(line) }
    }

    /// The line and a newline to file descriptor 2 in one write(2) where possible (journald reads a
    /// stream: one write keeps a line whole even when other code writes to stderr too).
    public static let standardError: LogWriter = { line in
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}

/// Keeps the lines written to it: give `capture.writer` to a `LogOutput` in tests.
public final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var _lines: [String] = []

    public init() {}

    public var lines: [String] { lock.withLock { _lines } }

    public var writer: LogWriter {
        { [self] line in lock.withLock { _lines.append(line) } }
    }

    public func clear() { lock.withLock { _lines.removeAll() } }
}
