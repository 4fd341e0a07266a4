// LMDB's return codes as one typed error that keeps LMDB's own message and the call that failed.
import CLMDB
import Foundation

public struct LMDBError: Error, Equatable, Sendable, CustomStringConvertible {
    /// LMDB's code (MDB_MAP_FULL, MDB_READERS_FULL, ...) or an errno (ENOSPC, EACCES, ...).
    public let code: Int32
    /// The C function that returned it, e.g. "mdb_txn_commit".
    public let operation: String
    /// `mdb_strerror(code)`: LMDB's wording, which covers errno values too.
    public let message: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
        self.message = String(cString: mdb_strerror(code))
    }

    public var description: String { "\(operation): \(message) (\(code))" }

    public static let mapFull = MDB_MAP_FULL
    public static let readersFull = MDB_READERS_FULL
    public static let notFound = MDB_NOTFOUND
    public static let mapResized = MDB_MAP_RESIZED

    /// The map is full: grow it with `LMDBEnvironment.setMapSize` and retry.
    public var isMapFull: Bool { code == MDB_MAP_FULL }
    /// The file system is full (or over quota): nothing was committed.
    public var isDiskFull: Bool { code == ENOSPC || code == EDQUOT }
}

/// Turns an LMDB return code into a thrown `LMDBError`.
@inline(__always)
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(LMDBError) {
    if code != 0 { throw LMDBError(code: code, operation: operation()) }
}
