// Parallel.perform: every iteration runs exactly once, and a niced caller's iterations all run at
// its nice value (glfd's trainer stays behind queries on every core it uses).
import Foundation
import Neural
import Testing

/// What the iterations saw, behind a lock (they run on several threads).
private final class Record: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(count: Int, nice: Int32)]
    init(_ count: Int) { entries = Array(repeating: (0, -100), count: count) }
    func note(_ i: Int, nice: Int32) { lock.withLock { entries[i] = (entries[i].count + 1, nice) } }
    var all: [(count: Int, nice: Int32)] { lock.withLock { entries } }
}

@Suite struct ParallelTests {
    /// Runs `perform` on a new thread at `nice`; returns, per iteration, how often it ran and the
    /// nice value of the thread that ran it.
    func run(iterations: Int, nice: Int32, rounds: Int = 1) -> [(count: Int, nice: Int32)] {
        let record = Record(iterations)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
            for _ in 0..<rounds {
                Parallel.perform(iterations: iterations) { i in
                    let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
                    usleep(2_000)        // long enough that helpers take some iterations
                    record.note(i, nice: value)
                }
            }
            done.signal()
        }
        thread.start()
        done.wait()
        return record.all
    }

    @Test func everyIterationRunsOnceAtTheCallersPriority() {
        for nice: Int32 in [0, 7] {
            let seen = run(iterations: 9, nice: nice)
            #expect(seen.allSatisfy { $0.count == 1 }, "nice \(nice): \(seen)")
            #expect(seen.allSatisfy { $0.nice == nice }, "nice \(nice): \(seen)")
        }
    }

    @Test func manyShortLoopsInARowLoseNothing() {
        let seen = run(iterations: 3, nice: 11, rounds: 200)
        #expect(seen.allSatisfy { $0.count == 200 && $0.nice == 11 }, "\(seen)")
    }
}
