// SIGTERM, SIGINT and SIGHUP for the daemon's whole life. `Signals.install()` runs first thing in
// main: from then on a signal never takes its default action (killing the process mid-startup) and
// is never lost, whenever it comes and whichever thread the kernel hands it to — OpenBLAS and
// ZeroMQ start threads of their own, which no signal mask of ours covers; the main thread unblocks
// the three signals, so some thread always takes them.
//
//   any thread ──signal──► handler: write(pipe, signal number)       (async-signal-safe)
//   "glfd-signals" thread ──read(pipe)──► SIGTERM/SIGINT: wake waitForTermination()
//                                         SIGHUP: run the reload handler (or, before there
//                                         is one, remember to run it once it is set)
//
// (libdispatch's signal sources were used before: SIG_IGN had to be set before a source took over,
// and a signal arriving in between was dropped, so a daemon could miss the SIGTERM that stops it.)
import Foundation

enum Signals {
    /// The pipe's write end, read by the handler: set once before any handler is installed.
    nonisolated(unsafe) private static var pipeWrite: Int32 = -1
    private static let state = State()

    private final class State: @unchecked Sendable {
        let lock = NSLock()
        let terminate = DispatchSemaphore(value: 0)
        var reload: (@Sendable () -> Void)?
        /// A SIGHUP came before `onReload`: run the handler once it is set.
        var reloadPending = false
        var terminating = false
    }

    /// Installs the handlers and starts the thread that acts on them. Call once, before anything
    /// that takes time.
    static func install() {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { fatalError("pipe: \(String(cString: strerror(errno)))") }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        let readEnd = ends[0]
        pipeWrite = ends[1]
        let reader = Thread {
            var number: UInt8 = 0
            while true {
                let count = read(readEnd, &number, 1)
                if count < 0 && errno == EINTR { continue }
                guard count == 1 else { return }
                handle(Int32(number))
            }
        }
        reader.name = "glfd-signals"
        reader.start()
        for signalNumber in [SIGTERM, SIGINT, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signalNumber in
                var byte = UInt8(truncatingIfNeeded: signalNumber)
                _ = write(Signals.pipeWrite, &byte, 1)
            }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(signalNumber, &action, nil)
        }
        // A parent may have started us with these signals blocked (Foundation's Process passes on
        // the spawning thread's mask): they would stay pending forever. Unblocked only now, one
        // that is already pending goes to the handler above.
        var handled = sigset_t()
        sigemptyset(&handled)
        for signalNumber in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&handled, signalNumber) }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
    }

    /// What SIGHUP does from now on (on the signal thread). A SIGHUP that came before is not lost:
    /// the handler runs for it now, on the caller's thread.
    static func onReload(_ handler: @escaping @Sendable () -> Void) {
        let pending = state.lock.withLock { () -> Bool in
            state.reload = handler
            defer { state.reloadPending = false }
            return state.reloadPending
        }
        if pending { handler() }
    }

    /// Blocks until SIGTERM or SIGINT, including one that came before this was called.
    static func waitForTermination() {
        state.terminate.wait()
    }

    private static func handle(_ signalNumber: Int32) {
        switch signalNumber {
        case SIGTERM, SIGINT:
            let first = state.lock.withLock { () -> Bool in
                defer { state.terminating = true }
                return !state.terminating
            }
            if first { state.terminate.signal() }
        case SIGHUP:
            let handler = state.lock.withLock { () -> (@Sendable () -> Void)? in
                if state.reload == nil { state.reloadPending = true }
                return state.reload
            }
            handler?()
        default:
            break
        }
    }
}
