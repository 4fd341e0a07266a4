// StoreError: what the replay store tells its callers. Every refusal leaves the store as it was
// (a failed write transaction is aborted whole) and says whether retrying can help.
import Foundation
import Imaging
import LMDB

public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The map reached `StoreConfiguration.maxMapSize`: ingest is refused, reads go on. Raise the
    /// limit, lower retention, or delete items.
    case storeFull(mapSize: Int)
    /// The file system has no room for the commit (ENOSPC, EDQUOT, or a cut-short write with no
    /// space left): nothing of it was written.
    case diskFull(String)
    /// The image could not be decoded or broke a limit (see `ImageError.code`).
    case badImage(ImageError)
    /// An item field broke a limit (source tag or metadata too long, wrong pixel size...).
    case invalidItem(String)
    /// The store on disk was written by a newer schema than this build understands.
    case schemaTooNew(found: UInt32, supported: UInt32)
    /// The store on disk was created with another canonical image shape than configured.
    case configurationMismatch(String)
    /// A stored record failed its checksum or does not parse: the store's bytes were damaged.
    case corruptRecord(id: UInt64, String)
    /// The store is closed (shutdown in progress); the request was not applied.
    case closed
    /// Any other LMDB failure, with LMDB's code and message.
    case lmdb(LMDBError)

    public var description: String {
        switch self {
        case .storeFull(let size): "store full: the map reached its maximum of \(size) bytes; ingest refused"
        case .diskFull(let message): "disk full: \(message); nothing was committed"
        case .badImage(let error): "bad image: \(error)"
        case .invalidItem(let message): "invalid item: \(message)"
        case .schemaTooNew(let found, let supported): "store schema \(found) is newer than this build's \(supported)"
        case .configurationMismatch(let message): "store configuration mismatch: \(message)"
        case .corruptRecord(let id, let message): "item \(id) is corrupt: \(message)"
        case .closed: "store closed"
        case .lmdb(let error): "LMDB: \(error)"
        }
    }

    /// Maps LMDB's failures of a write onto the cases callers act on. A full file system does not
    /// always come back as ENOSPC: when a write is cut short, LMDB reports EIO. So an EIO with
    /// (almost) no free space left where the store lives is reported as a full disk too.
    static func fromWrite(_ error: LMDBError, mapSize: Int, directory: String) -> StoreError {
        if error.isMapFull { return .storeFull(mapSize: mapSize) }
        if error.isDiskFull { return .diskFull(error.description) }
        if error.code == EIO, let free = freeBytes(directory), free < 8 << 20 {
            return .diskFull("\(error.description) with \(free) bytes free in \(directory)")
        }
        return .lmdb(error)
    }

    static func freeBytes(_ directory: String) -> Int? {
        var stats = statvfs()
        guard statvfs(directory, &stats) == 0 else { return nil }
        return Int(stats.f_bavail) * Int(stats.f_frsize)
    }
}
