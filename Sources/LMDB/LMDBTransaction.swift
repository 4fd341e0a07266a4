// A transaction and its cursors. Values handed out point into the memory map: they are valid only
// until the transaction ends, which the closure-scoped API of `LMDBEnvironment` enforces by habit:
// copy what you keep.
import CLMDB
import Foundation

public final class LMDBTransaction {
    let handle: OpaquePointer
    public let isReadOnly: Bool
    private var isOpen = true

    init(environment: LMDBEnvironment, readOnly: Bool) throws(LMDBError) {
        var txn: OpaquePointer?
        try check(mdb_txn_begin(environment.handle, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &txn), "mdb_txn_begin")
        handle = txn!
        isReadOnly = readOnly
    }

    func commit() throws(LMDBError) {
        isOpen = false
        try check(mdb_txn_commit(handle), "mdb_txn_commit")
    }

    func abort() {
        if isOpen { mdb_txn_abort(handle) }
        isOpen = false
    }

    // MARK: Reading

    /// The value stored under `key`, or nil.
    public func get(_ database: LMDBDatabase, _ key: some LMDBKey) throws(LMDBError) -> UnsafeRawBufferPointer? {
        var value = MDB_val()
        let code = key.withKeyBytes { bytes in
            var k = MDB_val(mv_size: bytes.count, mv_data: UnsafeMutableRawPointer(mutating: bytes.baseAddress))
            return mdb_get(handle, database.handle, &k, &value)
        }
        if code == MDB_NOTFOUND { return nil }
        try check(code, "mdb_get(\(database.name))")
        return UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)
    }

    /// Number of entries in the database.
    public func count(_ database: LMDBDatabase) throws(LMDBError) -> Int {
        var stat = MDB_stat()
        try check(mdb_stat(handle, database.handle, &stat), "mdb_stat(\(database.name))")
        return stat.ms_entries
    }

    /// Runs `body` with a cursor over `database`, closed when `body` returns.
    public func withCursor<Result>(_ database: LMDBDatabase, _ body: (LMDBCursor) throws -> Result) throws -> Result {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(handle, database.handle, &cursor), "mdb_cursor_open(\(database.name))")
        defer { mdb_cursor_close(cursor) }
        return try body(LMDBCursor(handle: cursor!, database: database))
    }

    // MARK: Writing

    public struct PutOptions: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Fail with MDB_KEYEXIST instead of replacing.
        public static let noOverwrite = PutOptions(rawValue: UInt32(MDB_NOOVERWRITE))
        /// The key sorts after every key present: LMDB appends without searching (fast bulk loads).
        public static let append = PutOptions(rawValue: UInt32(MDB_APPEND))
    }

    public func put(_ database: LMDBDatabase, _ key: some LMDBKey, _ value: UnsafeRawBufferPointer,
                    options: PutOptions = []) throws(LMDBError) {
        try check(putCode(database, key, value, options), "mdb_put(\(database.name))")
    }

    public func put(_ database: LMDBDatabase, _ key: some LMDBKey, _ value: [UInt8],
                    options: PutOptions = []) throws(LMDBError) {
        let code = value.withUnsafeBytes { putCode(database, key, $0, options) }
        try check(code, "mdb_put(\(database.name))")
    }

    private func putCode(_ database: LMDBDatabase, _ key: some LMDBKey, _ value: UnsafeRawBufferPointer,
                         _ options: PutOptions) -> Int32 {
        key.withKeyBytes { keyBytes in
            var k = MDB_val(mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
            var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
            return mdb_put(handle, database.handle, &k, &v, options.rawValue)
        }
    }

    /// Reserves `count` bytes under `key` and lets `fill` write them in place (MDB_RESERVE): the
    /// record is built directly in the map, without an intermediate buffer.
    public func put(_ database: LMDBDatabase, _ key: some LMDBKey, reserving count: Int, options: PutOptions = [],
                    fill: (UnsafeMutableRawBufferPointer) -> Void) throws(LMDBError) {
        var v = MDB_val(mv_size: count, mv_data: nil)
        let code = key.withKeyBytes { keyBytes in
            var k = MDB_val(mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
            return mdb_put(handle, database.handle, &k, &v, options.rawValue | UInt32(MDB_RESERVE))
        }
        try check(code, "mdb_put(\(database.name), reserve)")
        fill(UnsafeMutableRawBufferPointer(start: v.mv_data, count: count))
    }

    /// Deletes `key`; returns whether it was present.
    @discardableResult
    public func delete(_ database: LMDBDatabase, _ key: some LMDBKey) throws(LMDBError) -> Bool {
        let code = key.withKeyBytes { bytes in
            var k = MDB_val(mv_size: bytes.count, mv_data: UnsafeMutableRawPointer(mutating: bytes.baseAddress))
            return mdb_del(handle, database.handle, &k, nil)
        }
        if code == MDB_NOTFOUND { return false }
        try check(code, "mdb_del(\(database.name))")
        return true
    }

    /// Removes every entry of `database` (the database itself stays).
    public func clear(_ database: LMDBDatabase) throws(LMDBError) {
        try check(mdb_drop(handle, database.handle, 0), "mdb_drop(\(database.name))")
    }
}

/// A position in a database, in key order.
public struct LMDBCursor {
    let handle: OpaquePointer
    let database: LMDBDatabase

    public typealias Entry = (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)

    private func move(_ operation: MDB_cursor_op, key: UnsafeRawBufferPointer? = nil) throws(LMDBError) -> Entry? {
        var k = MDB_val(mv_size: key?.count ?? 0, mv_data: UnsafeMutableRawPointer(mutating: key?.baseAddress))
        var v = MDB_val()
        let code = mdb_cursor_get(handle, &k, &v, operation)
        if code == MDB_NOTFOUND { return nil }
        try check(code, "mdb_cursor_get(\(database.name))")
        return (UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size),
                UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
    }

    public func first() throws(LMDBError) -> Entry? { try move(MDB_FIRST) }
    public func last() throws(LMDBError) -> Entry? { try move(MDB_LAST) }
    public func next() throws(LMDBError) -> Entry? { try move(MDB_NEXT) }
    public func previous() throws(LMDBError) -> Entry? { try move(MDB_PREV) }

    /// The first entry whose key is ≥ `key`.
    public func seek(atLeast key: some LMDBKey) throws(LMDBError) -> Entry? {
        // The key is copied: LMDB may point `k` at the found key, but reads the given one first.
        let bytes = key.withKeyBytes { Array($0) }
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        defer { raw.deallocate() }
        raw.copyBytes(from: bytes)
        return try move(MDB_SET_RANGE, key: UnsafeRawBufferPointer(raw))
    }

    /// Deletes the entry under the cursor (in a write transaction).
    public func deleteCurrent() throws(LMDBError) {
        try check(mdb_cursor_del(handle, 0), "mdb_cursor_del(\(database.name))")
    }
}
