// How a store is laid out and bounded. Persisted parts (the canonical shape) are checked against
// what is on disk when the store opens; the rest may change between runs.
import Foundation
import LMDB

public struct StoreConfiguration: Sendable, Equatable {
    /// Directory of the LMDB environment (created with mode 0700 if missing).
    public var directory: String
    /// Shape of every stored image, fixed when the store is created.
    public var canonical: CanonicalShape
    /// `.syncOnCommit`: an ingest is acknowledged once flushed to disk. `.syncOnDemand` (fast
    /// mode): acknowledged once committed, flushed every `syncInterval`; a machine crash (not a
    /// process crash) can lose the last interval's items.
    public var durability: LMDBEnvironment.Durability
    public var syncInterval: Duration
    /// The map starts at `initialMapSize`, doubles on MDB_MAP_FULL, and never passes `maxMapSize`;
    /// beyond that ingest is refused with `StoreError.storeFull`.
    public var initialMapSize: Int
    public var maxMapSize: Int
    /// Retention: beyond either bound the oldest items are evicted in the same commit.
    public var maxItems: Int?
    public var maxBytes: Int?
    public var replay: ReplayConfiguration
    /// Items per write transaction at most (group commit takes whatever is queued up to this).
    public var maxItemsPerCommit: Int

    public init(directory: String, canonical: CanonicalShape = CanonicalShape(),
                durability: LMDBEnvironment.Durability = .syncOnCommit, syncInterval: Duration = .seconds(1),
                initialMapSize: Int = 64 << 20, maxMapSize: Int = 64 << 30,
                maxItems: Int? = nil, maxBytes: Int? = nil,
                replay: ReplayConfiguration = ReplayConfiguration(), maxItemsPerCommit: Int = 4096) {
        self.directory = directory
        self.canonical = canonical
        self.durability = durability
        self.syncInterval = syncInterval
        self.initialMapSize = initialMapSize
        self.maxMapSize = maxMapSize
        self.maxItems = maxItems
        self.maxBytes = maxBytes
        self.replay = replay
        self.maxItemsPerCommit = maxItemsPerCommit
    }
}
