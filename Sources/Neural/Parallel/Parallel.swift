// Parallel loops that keep the caller's scheduling priority.
//
// glfd's trainer runs at nice 10 so that queries come first, and on 2 cores it uses both: one
// replica of the network per view, and augmentation split over threads. Dispatch's
// concurrentPerform hands iterations to libdispatch's shared worker threads, which run at the
// default priority whatever the caller's: the trainer's second core would then compete with
// queries as an equal. So a thread that has lowered its priority gets helpers of its own, created
// at its nice value (on Linux the nice value is per thread: setpriority(2), BUGS), and parked
// between loops; a thread at the default priority keeps using concurrentPerform.
import Dispatch
import Foundation

public enum Parallel {
    /// Runs `body(i)` for i in 0..<iterations on the calling thread and on helpers at the calling
    /// thread's priority; returns when every iteration has returned. Iterations must be independent.
    public static func perform(iterations: Int, _ body: (Int) -> Void) {
        guard iterations > 1 else {
            for i in 0..<iterations { body(i) }
            return
        }
        let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        withoutActuallyEscaping(body) { body in
            if nice > 0 {
                HelperPool.at(nice: nice).perform(iterations: iterations, body)
            } else {
                let task = UnsafeSendable(body)     // iterations touch disjoint data (the caller's promise)
                DispatchQueue.concurrentPerform(iterations: iterations) { task.value($0) }
            }
        }
    }
}

/// Helper threads at one nice value: as many as the cores but one (the caller is the other).
private final class HelperPool: @unchecked Sendable {
    private static let pools = NSLock()
    nonisolated(unsafe) private static var byNice: [Int32: HelperPool] = [:]

    static func at(nice: Int32) -> HelperPool {
        pools.withLock {
            if let pool = byNice[nice] { return pool }
            let pool = HelperPool(nice: nice, helpers: max(1, ProcessInfo.processInfo.activeProcessorCount - 1))
            byNice[nice] = pool
            return pool
        }
    }

    /// One caller at a time (the loops of a niced thread are short and sequential).
    private let callers = NSLock()
    private let state = NSCondition()
    private var body: ((Int) -> Void)?
    private var iterations = 0
    private var nextIteration = 0
    private var busyHelpers = 0

    private init(nice: Int32, helpers: Int) {
        for index in 0..<helpers {
            let thread = Thread { [self] in
                // Created by a niced thread it inherits the value; set it anyway, since lowering
                // one's own priority needs no privilege.
                setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
                helperLoop()
            }
            thread.name = "glf-helper-\(nice)-\(index)"
            thread.start()
        }
    }

    func perform(iterations: Int, _ body: @escaping (Int) -> Void) {
        callers.lock()
        defer { callers.unlock() }
        state.lock()
        self.body = body
        self.iterations = iterations
        nextIteration = 0
        state.broadcast()
        state.unlock()
        work()
        state.lock()
        while busyHelpers > 0 || nextIteration < iterations { state.wait() }
        self.body = nil
        state.unlock()
    }

    /// Takes iterations until none is left (the caller and the helpers alike).
    private func work() {
        while true {
            state.lock()
            guard let body, nextIteration < iterations else {
                state.unlock()
                return
            }
            let i = nextIteration
            nextIteration += 1
            state.unlock()
            body(i)
        }
    }

    /// Parks until a loop has iterations left, takes them with the caller, and parks again.
    private func helperLoop() {
        while true {
            state.lock()
            while body == nil || nextIteration >= iterations { state.wait() }
            busyHelpers += 1
            state.unlock()
            work()
            state.lock()
            busyHelpers -= 1
            state.broadcast()
            state.unlock()
        }
    }
}
