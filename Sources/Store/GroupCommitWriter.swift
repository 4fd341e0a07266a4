// Group commit: one thread owns LMDB's single write transaction. Callers queue requests; the
// thread takes everything queued (up to `maxItemsPerCommit` items), applies it in one transaction,
// commits, and only then answers each request. Under load, one durable commit (about 2 ms of
// fsync) is shared by thousands of items; alone, a request waits for exactly one commit.
//
// On MDB_MAP_FULL the transaction is aborted, the map doubled (up to `maxMapSize`) and the batch
// retried; at the maximum the batch is refused with `storeFull`. Any failure answers every request
// of the batch with the same error and nothing of it is stored.
import Foundation
import LMDB

final class GroupCommitWriter: @unchecked Sendable {
    enum Request {
        /// Items to store; with `keys` (one per item), an item whose key is already stored is not
        /// stored again, and its first id is returned.
        case ingest([NewItem], keys: [UInt64]?)
        case delete([UInt64])

        var itemCount: Int {
            switch self {
            case .ingest(let items, _): items.count
            case .delete(let ids): ids.count
            }
        }
    }

    typealias Completion = @Sendable (Result<[UInt64], StoreError>) -> Void

    /// Weak: dropping the store without `close()` stops this thread from its deinit, and whatever
    /// is still queued then is refused with `.closed` rather than applied to a store being freed.
    private weak var store: ImageStore?
    private let environment: LMDBEnvironment
    private let configuration: StoreConfiguration
    private let condition = NSCondition()
    private var queue: [(request: Request, completion: Completion)] = []
    private var stopping = false
    private var stopped = false
    private var unsyncedCommits = false
    init(store: ImageStore) {
        self.store = store
        environment = store.environment
        configuration = store.configuration
        // The thread holds the writer until `run` returns.
        let thread = Thread { self.run() }
        thread.name = "glfd-store-writer"
        thread.start()
    }

    func submit(_ request: Request, completion: @escaping Completion) {
        condition.lock()
        guard !stopping else {
            condition.unlock()
            completion(.failure(.closed))
            return
        }
        queue.append((request, completion))
        condition.signal()
        condition.unlock()
    }

    func submitAndWait(_ request: Request) -> Result<[UInt64], StoreError> {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<[UInt64], StoreError> = .failure(.closed)
        submit(request) { result in
            outcome = result
            done.signal()
        }
        done.wait()
        return outcome
    }

    /// Finishes what is queued, then ends the thread. Later submissions fail with `.closed`.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !stopped { condition.wait() }
        condition.unlock()
    }

    private func run() {
        let syncOnDemand = configuration.durability == .syncOnDemand
        let interval = Double(configuration.syncInterval.components.seconds)
            + Double(configuration.syncInterval.components.attoseconds) * 1e-18
        var nextSync = Date().addingTimeInterval(interval)
        while true {
            condition.lock()
            while queue.isEmpty && !stopping {
                if syncOnDemand && unsyncedCommits {
                    if !condition.wait(until: nextSync) { break }
                } else {
                    condition.wait()
                }
            }
            if queue.isEmpty && stopping {
                condition.unlock()
                break
            }
            var batch: [(request: Request, completion: Completion)] = []
            var items = 0
            while let next = queue.first, batch.isEmpty || items + next.request.itemCount <= configuration.maxItemsPerCommit {
                batch.append(queue.removeFirst())
                items += next.request.itemCount
            }
            condition.unlock()

            if !batch.isEmpty {
                let results = commit(batch.map(\.request))
                for (entry, result) in zip(batch, results) { entry.completion(result) }
            }
            if syncOnDemand && unsyncedCommits && Date() >= nextSync {
                try? environment.sync()
                unsyncedCommits = false
                nextSync = Date().addingTimeInterval(interval)
            }
        }
        if unsyncedCommits { try? environment.sync() }
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// One transaction for the whole batch, retried after growing the map.
    private func commit(_ requests: [Request]) -> [Result<[UInt64], StoreError>] {
        guard let store else { return requests.map { _ in .failure(.closed) } }
        while true {
            do {
                let (ids, counters) = try environment.write { txn in try store.apply(requests, in: txn) }
                store.didCommit(counters)
                unsyncedCommits = true
                return ids.map { .success($0) }
            } catch {
                store.reloadAfterFailedCommit()
                let failure: StoreError
                if let lmdb = error as? LMDBError {
                    let mapSize = environment.usage.mapSize
                    if lmdb.isMapFull && mapSize < configuration.maxMapSize {
                        let grown = min(configuration.maxMapSize, mapSize * 2)
                        if (try? environment.setMapSize(grown)) != nil { continue }
                    }
                    failure = StoreError.fromWrite(lmdb, mapSize: mapSize, directory: configuration.directory)
                } else if let storeError = error as? StoreError {
                    failure = storeError
                } else {
                    failure = .lmdb(LMDBError(code: EIO, operation: "\(error)"))
                }
                return requests.map { _ in .failure(failure) }
            }
        }
    }
}
