// An LMDB environment: one directory holding a memory-mapped file and its lock file.
//
// Transactions run inside closures (`read`, `write`) so none outlives its scope or crosses an
// `await`. The environment is opened with MDB_NOTLS: a read transaction is not tied to the thread
// that began it, so readers may run on any thread of a pool. Growing the map requires that no
// transaction of this process is active (mdb_env_set_mapsize), so every transaction holds a shared
// gate and `setMapSize` takes it exclusively.
import CLMDB
import Foundation

public final class LMDBEnvironment: @unchecked Sendable {
    public enum Durability: Sendable, Equatable {
        /// Every commit is flushed to disk before `write` returns (LMDB's default).
        case syncOnCommit
        /// Commits reach the OS but are not flushed (MDB_NOSYNC): a crash of the machine, not of
        /// the process, may lose the commits since the last `sync()`. The database stays intact.
        case syncOnDemand
    }

    public struct Options: Sendable {
        public var mapSize: Int
        public var maxDatabases: Int
        public var maxReaders: Int
        public var durability: Durability
        /// Permissions of the data and lock files.
        public var fileMode: mode_t

        public init(mapSize: Int = 64 << 20, maxDatabases: Int = 8, maxReaders: Int = 126,
                    durability: Durability = .syncOnCommit, fileMode: mode_t = 0o600) {
            self.mapSize = mapSize
            self.maxDatabases = maxDatabases
            self.maxReaders = maxReaders
            self.durability = durability
            self.fileMode = fileMode
        }
    }

    public let directory: String
    public let options: Options
    let handle: OpaquePointer
    private let gate: UnsafeMutablePointer<pthread_rwlock_t>

    /// Opens (creating if needed) the environment in `directory`, which must exist.
    public init(directory: String, options: Options = Options()) throws(LMDBError) {
        var env: OpaquePointer?
        try check(mdb_env_create(&env), "mdb_env_create")
        guard let env else { throw LMDBError(code: ENOMEM, operation: "mdb_env_create") }
        do {
            try check(mdb_env_set_maxdbs(env, MDB_dbi(options.maxDatabases)), "mdb_env_set_maxdbs")
            try check(mdb_env_set_maxreaders(env, UInt32(options.maxReaders)), "mdb_env_set_maxreaders")
            try check(mdb_env_set_mapsize(env, options.mapSize), "mdb_env_set_mapsize")
            var flags = UInt32(MDB_NOTLS)
            if options.durability == .syncOnDemand { flags |= UInt32(MDB_NOSYNC) }
            try check(mdb_env_open(env, directory, flags, options.fileMode), "mdb_env_open(\(directory))")
            // Reader slots left by processes that died (SIGKILL) would otherwise pin old pages.
            var dead: Int32 = 0
            mdb_reader_check(env, &dead)
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.handle = env
        self.directory = directory
        self.options = options
        gate = .allocate(capacity: 1)
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        // A waiting resize must not starve behind a stream of readers.
        pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        pthread_rwlock_init(gate, &attributes)
        pthread_rwlockattr_destroy(&attributes)
    }

    deinit {
        mdb_env_close(handle)
        pthread_rwlock_destroy(gate)
        gate.deallocate()
    }

    /// Opens a named database, creating it if `create` (which takes a write transaction).
    public func database(_ name: String, create: Bool = true) throws(LMDBError) -> LMDBDatabase {
        pthread_rwlock_rdlock(gate)
        defer { pthread_rwlock_unlock(gate) }
        // The handle becomes visible to other transactions only once this one commits, read-only or not.
        let txn = try LMDBTransaction(environment: self, readOnly: !create)
        var dbi = MDB_dbi()
        let code = mdb_dbi_open(txn.handle, name, create ? UInt32(MDB_CREATE) : 0, &dbi)
        guard code == 0 else {
            txn.abort()
            throw LMDBError(code: code, operation: "mdb_dbi_open(\(name))")
        }
        try txn.commit()
        return LMDBDatabase(name: name, handle: dbi)
    }

    /// Runs `body` in a read-only snapshot. Values read are valid only inside `body`.
    /// Do not nest transactions on one thread: a pending `setMapSize` would deadlock them.
    public func read<Result>(_ body: (LMDBTransaction) throws -> Result) throws -> Result {
        pthread_rwlock_rdlock(gate)
        defer { pthread_rwlock_unlock(gate) }
        let txn = try LMDBTransaction(environment: self, readOnly: true)
        defer { txn.abort() }
        return try body(txn)
    }

    /// Runs `body` in the (single) write transaction and commits it; any error thrown aborts it,
    /// so a failed `write` leaves the database as it was.
    public func write<Result>(_ body: (LMDBTransaction) throws -> Result) throws -> Result {
        pthread_rwlock_rdlock(gate)
        defer { pthread_rwlock_unlock(gate) }
        let txn = try LMDBTransaction(environment: self, readOnly: false)
        let result: Result
        do {
            result = try body(txn)
        } catch {
            txn.abort()
            throw error
        }
        try txn.commit()
        return result
    }

    /// Size of the memory map, and bytes of it in use (pages up to the last used one).
    public var usage: (mapSize: Int, usedBytes: Int) {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        var stat = MDB_stat()
        mdb_env_stat(handle, &stat)
        return (info.me_mapsize, (info.me_last_pgno + 1) * Int(stat.ms_psize))
    }

    /// Grows (or shrinks, down to the data) the map. Waits for this process's transactions to end.
    public func setMapSize(_ bytes: Int) throws(LMDBError) {
        pthread_rwlock_wrlock(gate)
        defer { pthread_rwlock_unlock(gate) }
        try check(mdb_env_set_mapsize(handle, bytes), "mdb_env_set_mapsize(\(bytes))")
    }

    /// Writes a consistent copy of the environment (one read transaction's view, while writers go
    /// on) to `directory`, which must exist and hold no data.mdb; `compact` leaves out free pages
    /// (MDB_CP_COMPACT), so the copy is as small as the data.
    public func copy(to directory: String, compact: Bool = true) throws(LMDBError) {
        pthread_rwlock_rdlock(gate)
        defer { pthread_rwlock_unlock(gate) }
        try check(mdb_env_copy2(handle, directory, compact ? UInt32(MDB_CP_COMPACT) : 0), "mdb_env_copy2(\(directory))")
    }

    /// Flushes committed data to disk; what `.syncOnDemand` calls periodically.
    public func sync() throws(LMDBError) {
        try check(mdb_env_sync(handle, 1), "mdb_env_sync")
    }

    /// LMDB's version string, e.g. "LMDB 0.9.31: (July 10, 2023)".
    public static var version: String { String(cString: mdb_version(nil, nil, nil)) }
}

/// A named database inside an environment (MDB_dbi). Handles stay valid while the environment is open.
public struct LMDBDatabase: Sendable, Equatable {
    public let name: String
    let handle: MDB_dbi
}
