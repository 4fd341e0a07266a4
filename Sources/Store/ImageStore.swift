// ImageStore: the daemon's memory of every acknowledged image, and the replay set the trainer
// samples from.
//
// One LMDB environment, three databases:
//   items   id (8 bytes, big-endian: key order = id order = age) → record (StoredItem.swift)
//   replay  id → slot (UInt32 LE): the members of the replay set and their place in its array,
//           written in the same commit as the items
//   meta    "schema", "canonical", "counters", "replay.state"
//
// Writes go through one writer thread (GroupCommitWriter) that commits whatever is queued in one
// transaction; readers run on any thread in their own snapshots and never see a partial commit.
import Foundation
import Imaging
import LMDB
import Neural

public final class ImageStore: @unchecked Sendable {
    /// Version of the on-disk layout; a later change bumps it and migrates older stores on open.
    public static let schemaVersion: UInt32 = 1

    public let configuration: StoreConfiguration
    let environment: LMDBEnvironment
    let itemsDB: LMDBDatabase
    let replayDB: LMDBDatabase
    let metaDB: LMDBDatabase
    /// Idempotent ingest: a producer's key for an item (JetStream's stream sequence) → its id.
    let keysDB: LMDBDatabase

    /// Guards `policy` and `counters`: the writer changes them inside its transaction, samplers and
    /// `statistics` read them from other threads.
    private let lock = NSLock()
    private var policy: any ReplayPolicy
    private var counters: Counters
    /// The latest ingest time stamped: a commit stamps its items max(now, this), so ingest times
    /// never decrease as ids grow (a clock set back does not reorder them), and a range of times
    /// is a range of ids (`ids(ingestedAfter:before:)`). Under `lock`.
    private var lastStamp = Date.distantPast
    private var writer: GroupCommitWriter!

    /// Persisted in meta "counters", updated in every commit.
    struct Counters: Equatable {
        var nextID: UInt64 = 1
        var recordBytes: UInt64 = 0
        var ingested: UInt64 = 0
        var retired: UInt64 = 0
        var deleted: UInt64 = 0

        var encoded: [UInt8] {
            [nextID, recordBytes, ingested, retired, deleted].flatMap { value in
                withUnsafeBytes(of: value.littleEndian) { Array($0) }
            }
        }

        init() {}
        init(_ bytes: UnsafeRawBufferPointer) {
            func field(_ i: Int) -> UInt64 {
                i * 8 + 8 <= bytes.count ? UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) : 0
            }
            nextID = max(1, field(0))
            recordBytes = field(1)
            ingested = field(2)
            retired = field(3)
            deleted = field(4)
        }
    }

    /// Opens the store in `configuration.directory`, creating it (mode 0700) if needed.
    public init(_ configuration: StoreConfiguration) throws(StoreError) {
        self.configuration = configuration
        do {
            try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw .lmdb(LMDBError(code: EACCES, operation: "mkdir \(configuration.directory): \(error.localizedDescription)"))
        }
        do {
            environment = try LMDBEnvironment(
                directory: configuration.directory,
                options: .init(mapSize: configuration.initialMapSize, maxDatabases: 5,
                               durability: configuration.durability))
            itemsDB = try environment.database("items")
            replayDB = try environment.database("replay")
            metaDB = try environment.database("meta")
            keysDB = try environment.database("keys")
        } catch {
            throw .lmdb(error)
        }
        counters = Counters()
        policy = configuration.replay.makePolicy(members: [], state: [])
        try openOrCreate()
        writer = GroupCommitWriter(store: self)
    }

    deinit { writer?.stop() }

    /// Finishes every queued write, flushes, and refuses further writes. Reads keep working.
    public func close() {
        writer.stop()
        try? environment.sync()
    }

    // MARK: Writing

    /// Stores `items` and returns their ids once the commit holding them is durable (or, in fast
    /// mode, committed). Nothing is stored if this throws.
    ///
    /// With `keys` (one per item, a producer's unique number for it, such as JetStream's stream
    /// sequence), ingest is idempotent: an item whose key was stored before, in this call or any
    /// earlier one, is not stored again and its id is the first one's. The key is written in the
    /// item's own transaction, so a crash cannot store an item without its key or the reverse.
    public func ingest(_ items: [NewItem], keys: [UInt64]? = nil) async throws(StoreError) -> [UInt64] {
        try validate(items, keys: keys)
        let result = await withCheckedContinuation { continuation in
            writer.submit(.ingest(items, keys: keys)) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// `ingest` with a completion handler, called on the writer thread once the commit is durable
    /// (keep it short). For servers that answer from their own threads rather than from tasks.
    public func ingest(_ items: [NewItem], keys: [UInt64]? = nil,
                       completion: @escaping @Sendable (Result<[UInt64], StoreError>) -> Void) {
        do {
            try validate(items, keys: keys)
        } catch {
            return completion(.failure(error))
        }
        writer.submit(.ingest(items, keys: keys), completion: completion)
    }

    /// `delete` with a completion handler (see `ingest(_:completion:)`).
    public func delete(_ ids: [UInt64], completion: @escaping @Sendable (Result<[UInt64], StoreError>) -> Void) {
        writer.submit(.delete(ids), completion: completion)
    }

    /// `ingest` for callers outside async code (tools, benchmarks): blocks until acknowledged.
    public func ingestAndWait(_ items: [NewItem], keys: [UInt64]? = nil) throws(StoreError) -> [UInt64] {
        try validate(items, keys: keys)
        return try writer.submitAndWait(.ingest(items, keys: keys)).get()
    }

    private func validate(_ items: [NewItem], keys: [UInt64]?) throws(StoreError) {
        if let keys, keys.count != items.count {
            throw .invalidItem("\(keys.count) keys for \(items.count) items: one key per item")
        }
        for item in items { try item.validate(canonical: configuration.canonical) }
    }

    /// The ids stored under `keys` (nil where a key is unknown).
    public func ids(forKeys keys: [UInt64]) throws(StoreError) -> [UInt64?] {
        try reading { txn in
            try keys.map { key in try txn.get(keysDB, key).map { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) } }
        }
    }

    /// Deletes items; returns the ids that were present.
    public func delete(_ ids: [UInt64]) async throws(StoreError) -> [UInt64] {
        let result = await withCheckedContinuation { continuation in
            writer.submit(.delete(ids)) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    // MARK: Reading

    /// The item with `id`, or nil if there is none (never was, deleted, or retired).
    public func item(_ id: UInt64) throws(StoreError) -> StoredItem? {
        try items([id])[0]
    }

    /// Items by id in one snapshot, nil where absent: what a training batch reads.
    public func items(_ ids: [UInt64]) throws(StoreError) -> [StoredItem?] {
        try reading { txn in
            try ids.map { id in
                guard let record = try txn.get(itemsDB, id) else { return nil }
                return try ItemRecord.read(id: id, record)
            }
        }
    }

    /// Whether each id is stored, in one snapshot, without reading or checking the records: what
    /// query answers use to drop items deleted since they were indexed.
    public func contains(_ ids: [UInt64]) throws(StoreError) -> [Bool] {
        try reading { txn in try ids.map { try txn.get(itemsDB, $0) != nil } }
    }

    /// Up to `limit` items with ids greater than `id`, in id order: for walking the whole store.
    public func items(after id: UInt64, limit: Int) throws(StoreError) -> [StoredItem] {
        try reading { txn in
            try txn.withCursor(itemsDB) { cursor in
                var result: [StoredItem] = []
                var entry = try cursor.seek(atLeast: id &+ 1)
                while let (key, value) = entry, result.count < limit {
                    result.append(try ItemRecord.read(id: UInt64(keyBytes: key), value))
                    entry = try cursor.next()
                }
                return result
            }
        }
    }

    /// Items in a store snapshot's directory (opened for the count, then closed).
    public static func countItems(inSnapshot directory: URL) throws(StoreError) -> Int {
        do {
            let environment = try LMDBEnvironment(directory: directory.path)
            let items = try environment.database("items")
            return try environment.read { txn in try txn.count(items) }
        } catch let error as LMDBError {
            throw .lmdb(error)
        } catch {
            throw .configurationMismatch("could not read the snapshot's store: \(error)")
        }
    }

    /// A consistent, compacted copy of the store (every item committed when it starts, and the
    /// replay set and counters of that moment) in `directory` (existing, empty); ingest goes on.
    public func snapshot(to directory: URL) throws(StoreError) {
        do {
            try environment.copy(to: directory.path)
        } catch {
            throw .lmdb(error)
        }
    }

    /// The ids of the items ingested after `after` and before `before` (seconds since the epoch,
    /// both exclusive; nil: unbounded), as a range of ids from the first of them: ids in it that
    /// are not stored (deleted) are simply absent. Nil when no stored item is in the range. Ingest times
    /// grow with ids (`lastStamp`), so this is two binary searches over the ids, a few dozen reads.
    public func ids(ingestedAfter after: Double?, before: Double?) throws(StoreError) -> ClosedRange<UInt64>? {
        let end = nextID
        return try reading { txn in
            try txn.withCursor(itemsDB) { cursor in
                /// The ingest time of the first readable item at or after `id` (a damaged record is
                /// passed over); +∞ past the last.
                func time(from id: UInt64) throws -> Double {
                    var entry = try cursor.seek(atLeast: id)
                    while let (key, value) = entry {
                        if let item = try? ItemRecord.read(id: UInt64(keyBytes: key), value) { return item.ingestedAt.timeIntervalSince1970 }
                        entry = try cursor.next()
                    }
                    return .infinity
                }
                /// The smallest id in 1...end whose `time(from:)` satisfies `reached` (monotone).
                func first(_ reached: (Double) -> Bool) throws -> UInt64 {
                    var (low, high) = (UInt64(1), end)
                    while low < high {
                        let middle = low + (high - low) / 2
                        if reached(try time(from: middle)) { high = middle } else { low = middle + 1 }
                    }
                    return low
                }
                let lower = try after.map { after in try first { $0 > after } } ?? 1
                let upper = try before.map { before in try first { $0 >= before } } ?? end
                guard lower < upper, let (key, _) = try cursor.seek(atLeast: lower), UInt64(keyBytes: key) < upper else { return nil }
                return UInt64(keyBytes: key)...(upper - 1)
            }
        }
    }

    /// Ids drawn uniformly (with replacement) from the replay set; empty while it is. An id may be
    /// gone by the time it is read (deleted, retired, or its commit failed): readers skip nils.
    public func sampleReplay(_ count: Int, using rng: inout SeededGenerator) -> [UInt64] {
        lock.withLock { policy.members.sample(count, using: &rng) }
    }

    /// The replay set's members now, in slot order: which stored items training draws from (the
    /// stream benchmark's tests count their classes).
    public var replayMemberIDs: [UInt64] { lock.withLock { policy.members.ids } }

    /// Hands MinRed one model's embeddings of stored items (ids.count × dimension floats, any
    /// scale); it keeps those of replay members and forgets any it had from an earlier model.
    /// Returns how many members it now sees (0 under other policies, which ignore embeddings, and
    /// when `cancelled` stopped the work).
    ///
    /// The all-pairs similarities are computed here, on the caller's thread and outside the lock
    /// the writer needs (about 2·10¹² flops for 65,536 members of dimension 256): call it from a
    /// background thread; ingest goes on meanwhile.
    @discardableResult
    public func setReplayEmbeddings(_ ids: [UInt64], _ vectors: [Float], dimension: Int,
                                    cancelled: () -> Bool = { false }) -> Int {
        precondition(vectors.count == ids.count * dimension, "vectors must be ids.count × dimension")
        let memberRows: [Int]? = lock.withLock {
            guard let minred = policy as? MinRedReplay else { return nil }
            return ids.indices.filter { minred.members.contains(ids[$0]) }
        }
        guard let memberRows else { return 0 }
        let memberIDs = memberRows.map { ids[$0] }
        var memberVectors: [Float] = []
        memberVectors.reserveCapacity(memberRows.count * dimension)
        for row in memberRows { memberVectors += vectors[row * dimension..<(row + 1) * dimension] }
        guard let view = RedundancyView(ids: memberIDs, vectors: memberVectors, dimension: dimension,
                                        cancelled: cancelled) else { return 0 }
        return lock.withLock {
            // After a failed commit the policy is rebuilt from disk; the view still applies to it.
            guard let minred = policy as? MinRedReplay else { return 0 }
            minred.install(view, builtFrom: memberIDs)
            return minred.embeddedCount
        }
    }

    /// The id the next ingested item will get: every stored id is below it. Read without a
    /// transaction, for request paths that need only this.
    public var nextID: UInt64 { lock.withLock { counters.nextID } }

    public struct Statistics: Sendable, Equatable {
        public var items: Int
        public var recordBytes: UInt64
        public var replayMembers: Int
        public var replayPolicy: ReplayPolicyKind
        /// Members MinRed has an embedding of (0 under other policies).
        public var replayEmbedded: Int
        public var nextID: UInt64
        /// Since the store was created: items ever stored, retired by retention, deleted.
        public var ingested: UInt64
        public var retired: UInt64
        public var deleted: UInt64
        public var mapSize: Int
        public var mapUsedBytes: Int
    }

    /// Bytes the replay policy keeps in memory: its members, and MinRed's admission order and view
    /// (embeddings and neighbour lists of the members).
    public var replayAllocatedBytes: Int { lock.withLock { policy.allocatedBytes } }

    public var statistics: Statistics {
        let (members, embedded, counters) = lock.withLock {
            (policy.members.count, (policy as? MinRedReplay)?.embeddedCount ?? 0, self.counters)
        }
        let items = (try? reading { txn in try txn.count(itemsDB) }) ?? 0
        let usage = environment.usage
        return Statistics(items: items, recordBytes: counters.recordBytes, replayMembers: members,
                          replayPolicy: configuration.replay.policy, replayEmbedded: embedded, nextID: counters.nextID,
                          ingested: counters.ingested, retired: counters.retired, deleted: counters.deleted,
                          mapSize: usage.mapSize, mapUsedBytes: usage.usedBytes)
    }

    /// Checks every record's checksum and the counters against the records: an `fsck` for tools.
    /// Returns the number of items checked.
    public func verify() throws(StoreError) -> Int {
        let recorded = lock.withLock { counters }
        return try reading { txn in
            var count = 0, bytes: UInt64 = 0
            try txn.withCursor(itemsDB) { cursor in
                var entry = try cursor.first()
                while let (key, value) = entry {
                    _ = try ItemRecord.read(id: UInt64(keyBytes: key), value)
                    count += 1
                    bytes += UInt64(value.count)
                    entry = try cursor.next()
                }
            }
            guard bytes == recorded.recordBytes else {
                throw StoreError.corruptRecord(id: 0, "records hold \(bytes) bytes, the counters say \(recorded.recordBytes)")
            }
            return count
        }
    }

    /// Runs a read transaction, mapping its errors to StoreError.
    func reading<Result>(_ body: (LMDBTransaction) throws -> Result) throws(StoreError) -> Result {
        do {
            return try environment.read(body)
        } catch let error as StoreError {
            throw error
        } catch let error as LMDBError {
            throw .lmdb(error)
        } catch {
            throw .lmdb(LMDBError(code: EIO, operation: "\(error)"))
        }
    }

    // MARK: Opening

    private func openOrCreate() throws(StoreError) {
        let canonical = configuration.canonical
        do {
            try environment.write { txn in
                if let schema = try txn.get(metaDB, "schema") {
                    let found = UInt32(littleEndian: schema.loadUnaligned(as: UInt32.self))
                    guard found <= Self.schemaVersion else {
                        throw StoreError.schemaTooNew(found: found, supported: Self.schemaVersion)
                    }
                    let stored = try txn.get(metaDB, "canonical").flatMap {
                        try? JSONDecoder().decode(CanonicalShape.self, from: Data($0))
                    }
                    guard stored == canonical else {
                        throw StoreError.configurationMismatch(
                            "the store holds \(stored.map(\.description) ?? "unknown")-images, configured for \(canonical)")
                    }
                } else {
                    try txn.put(metaDB, "schema", withUnsafeBytes(of: Self.schemaVersion.littleEndian) { Array($0) })
                    try txn.put(metaDB, "canonical", Array(try JSONEncoder().encode(canonical)))
                    try txn.put(metaDB, "counters", Counters().encoded)
                }
                try loadCountersAndPolicy(txn)
                // A smaller capacity than last time: the oldest members leave now.
                let excess = policy.members.count - configuration.replay.capacity
                if excess > 0 {
                    for id in policy.members.ids.sorted().prefix(excess) {
                        policy.remove(id)
                        try txn.delete(replayDB, id)
                    }
                    try persistSlotChanges(txn)
                }
            }
        } catch let error as StoreError {
            throw error
        } catch let error as LMDBError {
            throw .lmdb(error)
        } catch {
            throw .configurationMismatch("could not read the store's metadata: \(error)")
        }
    }

    /// Reads counters and replay membership as committed: on open, and after a failed commit
    /// (which may have changed them in memory only).
    func loadCountersAndPolicy(_ txn: LMDBTransaction) throws {
        let counters = try txn.get(metaDB, "counters").map(Counters.init) ?? Counters()
        var placed: [(id: UInt64, slot: UInt32)] = []
        try txn.withCursor(replayDB) { cursor in
            var entry = try cursor.first()
            while let (key, value) = entry {
                let slot = value.count == 4 ? UInt32(littleEndian: value.loadUnaligned(as: UInt32.self)) : .max
                placed.append((UInt64(keyBytes: key), slot))
                entry = try cursor.next()
            }
        }
        let members = placed.sorted { ($0.slot, $0.id) < ($1.slot, $1.id) }.map(\.id)
        let state = try txn.get(metaDB, "replay.state").map { Array($0) } ?? []
        let policy = configuration.replay.makePolicy(members: members, state: state)
        // The newest record's stamp (a damaged one is skipped: it must not keep the store shut).
        let newest = try txn.withCursor(itemsDB) { cursor in
            try cursor.last().flatMap { key, value in try? ItemRecord.read(id: UInt64(keyBytes: key), value).ingestedAt }
        }
        lock.withLock {
            self.counters = counters
            self.policy = policy
            lastStamp = max(lastStamp, newest ?? .distantPast)
        }
    }

    // MARK: The writer's side

    /// Applies a batch of requests in one write transaction (called on the writer thread only).
    /// Returns each request's ids and the counters to publish once the commit succeeded; throws if
    /// the transaction failed (nothing of it was written).
    func apply(_ requests: [GroupCommitWriter.Request], in txn: LMDBTransaction) throws -> (ids: [[UInt64]], counters: Counters) {
        try lock.withLock {
            var counters = self.counters
            let now = max(Date(), lastStamp)
            lastStamp = now
            var results: [[UInt64]] = []
            for request in requests {
                switch request {
                case .ingest(let items, let keys):
                    var ids: [UInt64] = []
                    ids.reserveCapacity(items.count)
                    for (index, item) in items.enumerated() {
                        // A key seen before (a redelivery; or twice in this transaction, whose
                        // own writes it reads) names the item already stored.
                        if let key = keys?[index], let stored = try txn.get(keysDB, key) {
                            ids.append(UInt64(littleEndian: stored.loadUnaligned(as: UInt64.self)))
                            continue
                        }
                        let id = counters.nextID
                        counters.nextID += 1
                        let size = ItemRecord.size(of: item)
                        try txn.put(itemsDB, id, reserving: size, options: .append) { buffer in
                            ItemRecord.write(item, ingestedAt: now, into: buffer)
                        }
                        counters.recordBytes += UInt64(size)
                        counters.ingested += 1
                        for evicted in policy.admit(id).evicted { try txn.delete(replayDB, evicted) }
                        if let key = keys?[index] { try txn.put(keysDB, key, withUnsafeBytes(of: id.littleEndian) { Array($0) }) }
                        ids.append(id)
                    }
                    results.append(ids)
                case .delete(let ids):
                    var deleted: [UInt64] = []
                    for id in ids {
                        guard let record = try txn.get(itemsDB, id) else { continue }
                        counters.recordBytes -= UInt64(record.count)
                        counters.deleted += 1
                        try txn.delete(itemsDB, id)
                        try txn.delete(replayDB, id)
                        policy.remove(id)
                        deleted.append(id)
                    }
                    results.append(deleted)
                }
            }
            try enforceRetention(txn, &counters)
            try persistSlotChanges(txn)
            try txn.put(metaDB, "counters", counters.encoded)
            let state = policy.persistentState
            if !state.isEmpty { try txn.put(metaDB, "replay.state", state) }
            return (results, counters)
        }
    }

    /// The commit is durable: statistics may show it.
    func didCommit(_ counters: Counters) {
        lock.withLock { self.counters = counters }
    }

    private func persistSlotChanges(_ txn: LMDBTransaction) throws {
        for (id, slot) in policy.takeSlotChanges() {
            try txn.put(replayDB, id, withUnsafeBytes(of: UInt32(slot).littleEndian) { Array($0) })
        }
    }

    /// Evicts the oldest items while the store is over `maxItems` or `maxBytes`.
    private func enforceRetention(_ txn: LMDBTransaction, _ counters: inout Counters) throws {
        let maxItems = configuration.maxItems ?? .max, maxBytes = UInt64(configuration.maxBytes ?? .max)
        var count = try txn.count(itemsDB)
        guard count > maxItems || counters.recordBytes > maxBytes else { return }
        try txn.withCursor(itemsDB) { cursor in
            while count > maxItems || counters.recordBytes > maxBytes, let (key, value) = try cursor.first() {
                let id = UInt64(keyBytes: key)
                counters.recordBytes -= UInt64(value.count)
                counters.retired += 1
                count -= 1
                try cursor.deleteCurrent()
                try txn.delete(replayDB, id)
                policy.remove(id)
            }
        }
    }

    /// After a failed transaction: forget in-memory changes by reloading what is committed.
    func reloadAfterFailedCommit() {
        try? environment.read { txn in try loadCountersAndPolicy(txn) }
    }
}
