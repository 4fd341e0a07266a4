// A named thread that runs a loop until it is stopped: the JetStream consumer and the replica's
// follower are each one. `pause` sleeps in slices of 50 ms, so `stop` returns promptly whatever
// the loop waits for.
import Foundation
import Logging

final class PollingThread: @unchecked Sendable {
    private let name: String
    private let lock = NSLock()
    private var stopping = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    /// The last failure logged, and when: a loop retrying against a server that stays down logs
    /// a new error at once and the same one once a minute.
    private var lastWarning: (text: String, at: Date)?

    init(name: String) {
        self.name = name
    }

    /// Runs `loop` on the thread; it should return once `shouldStop` is true.
    func start(_ loop: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            loop()
            finished.signal()
        }
        thread.name = name
        lock.withLock { self.thread = thread }
        thread.start()
    }

    /// Asks the loop to end and waits until it has.
    func stop() {
        guard lock.withLock({ thread != nil }) else { return }
        lock.withLock { stopping = true }
        finished.wait()
        lock.withLock { thread = nil }
    }

    var shouldStop: Bool { lock.withLock { stopping } }

    /// Waits `seconds`, or less if asked to stop.
    func pause(_ seconds: Double) {
        let until = Date().addingTimeInterval(seconds)
        while !shouldStop && Date() < until { usleep(50_000) }
    }

    /// Logs a failure of the loop (it will retry), unless the same failure was logged in the last minute.
    func warn(_ logger: Logger, _ message: Logger.Message, error: Error, metadata: Logger.Metadata = [:]) {
        let text = "\(error)"
        let now = Date()
        let due = lock.withLock {
            guard lastWarning?.text != text || now.timeIntervalSince(lastWarning!.at) >= 60 else { return false }
            lastWarning = (text, now)
            return true
        }
        if due { logger.warning(message, metadata: metadata.merging(["error": "\(text)"]) { $1 }) }
    }
}
