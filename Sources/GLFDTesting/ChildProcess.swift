// Waiting on a child process with a deadline: a daemon that fails to log or to exit makes its test
// (or benchmark) fail with what it printed, instead of hanging until CI's time limit.
import Foundation

/// Appends what `pipe` delivers to `text` until `text` contains `marker`, the pipe closes, or
/// `seconds` pass. Returns whether the marker arrived.
@discardableResult
public func read(_ pipe: Pipe, into text: inout String, until marker: String, seconds: Double) -> Bool {
    let descriptor = pipe.fileHandleForReading.fileDescriptor
    let deadline = Date().addingTimeInterval(seconds)
    var buffer = [UInt8](repeating: 0, count: 65536)
    while !text.contains(marker) {
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else { return false }
        var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let polled = poll(&ready, 1, Int32(min(left, 1) * 1000))
        if polled < 0 && errno == EINTR { continue }
        guard polled >= 0 else { return false }
        if polled == 0 { continue }
        let count = Foundation.read(descriptor, &buffer, buffer.count)
        guard count > 0 else { return text.contains(marker) }
        text += String(decoding: buffer[..<count], as: UTF8.self)
    }
    return true
}

/// Waits up to `seconds` for `process` to exit; past that it is killed (SIGKILL) and the result is
/// false, so a daemon that does not stop fails its test rather than hanging it.
@discardableResult
public func waitForExit(_ process: Process, seconds: Double) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    guard process.isRunning else { return true }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    return false
}
