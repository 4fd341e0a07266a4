// Published model versions on disk:
//
//   models/000001/ ... models/000007/     one directory per version: a complete training
//                                          checkpoint (model.safetensors + config.json, the other
//                                          networks, optimiser state, training.json) + stats.json
//   models/.staging-000008-<pid>/          a version being written (removed on start)
//
// Publishing writes into a staging directory, flushes every file and the directory, renames it to
// its final name, and flushes the parent: a version directory either does not exist or is complete,
// whatever moment the process or the machine stops. Readers (and the daemon on start) only look
// at final names. The last `keep` versions are kept, and besides them the versions pinned for a
// purpose (`pin`): the one whose catalog knn answers from, the one whose catalog is being built.
// When versions come faster than catalogs are built, those must outlive their successors until a
// newer catalog takes over, or a restart would have nothing saved to answer from.
import Foundation

public struct PublishedVersion: Codable, Sendable, Equatable {
    public var version: Int
    public var path: String
    public var step: Int
    public var publishedAt: Double
    public var metrics: [String: Double]
}

public enum ModelVersionError: Error, Equatable, CustomStringConvertible {
    case io(String)
    public var description: String {
        switch self {
        case .io(let message): "model versions: \(message)"
        }
    }
}

public final class ModelVersions: @unchecked Sendable {
    public let directory: URL
    public let keep: Int
    public static let statsFileName = "stats.json"
    private let lock = NSLock()
    private var published: [PublishedVersion]
    /// Kept whatever `keep` says: a version for each purpose.
    private var pinned: [Pin: Int] = [:]

    public enum Pin: Sendable, Hashable {
        /// The version of the catalog knn answers from.
        case served
        /// The version whose catalog is being built.
        case building
    }

    /// Opens (creating) the models directory; forgets staging directories of interrupted publications.
    public init(directory: URL, keep: Int) throws(ModelVersionError) {
        precondition(keep >= 1)
        self.directory = directory
        self.keep = keep
        let files = FileManager.default
        do {
            try files.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            for name in try files.contentsOfDirectory(atPath: directory.path) where name.hasPrefix(".staging-") {
                try files.removeItem(at: directory.appendingPathComponent(name))
            }
        } catch {
            throw .io("cannot prepare \(directory.path): \(error.localizedDescription)")
        }
        published = Self.scan(directory)
    }

    /// Complete versions, oldest first. A directory counts once its stats.json reads back.
    private static func scan(_ directory: URL) -> [PublishedVersion] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.compactMap { name -> PublishedVersion? in
            guard name.count == 6, let version = Int(name), version > 0 else { return nil }
            let stats = directory.appendingPathComponent(name).appendingPathComponent(statsFileName)
            guard let data = try? Data(contentsOf: stats),
                  var entry = try? JSONDecoder().decode(PublishedVersion.self, from: data) else { return nil }
            entry.path = directory.appendingPathComponent(name).path
            return entry
        }.sorted { $0.version < $1.version }
    }

    public var latest: PublishedVersion? { lock.withLock { published.last } }
    public var all: [PublishedVersion] { lock.withLock { published } }
    public var nextVersion: Int { (latest?.version ?? 0) + 1 }

    /// Publishes the next version: `write` fills the staging directory (e.g. `Trainer.save(to:)`),
    /// then stats.json is added, everything flushed and renamed into place; older versions beyond
    /// `keep` are removed.
    @discardableResult
    public func publish(step: Int, metrics: [String: Double],
                        write: (URL) throws -> Void) throws(ModelVersionError) -> PublishedVersion {
        try place(version: nextVersion, step: step, publishedAt: Date().timeIntervalSince1970, metrics: metrics, write: write)
    }

    /// Installs a version another daemon published (a replica following its trainer), under that
    /// daemon's number, step and time, the same way a publication is placed: complete or absent.
    /// Its number must be above every version here.
    @discardableResult
    public func install(version: Int, step: Int, publishedAt: Double, metrics: [String: Double] = [:],
                        files: [(name: String, bytes: [UInt8])]) throws(ModelVersionError) -> PublishedVersion {
        guard version > (latest?.version ?? 0) else {
            throw .io("version \(version) is not newer than the latest here, \(latest?.version ?? 0)")
        }
        return try place(version: version, step: step, publishedAt: publishedAt, metrics: metrics) { staging in
            for file in files {
                guard !file.name.contains("/"), !file.name.hasPrefix(".") else { throw ModelVersionError.io("file name \(file.name)") }
                try Data(file.bytes).write(to: staging.appendingPathComponent(file.name))
            }
        }
    }

    private func place(version: Int, step: Int, publishedAt: Double, metrics: [String: Double],
                       write: (URL) throws -> Void) throws(ModelVersionError) -> PublishedVersion {
        let name = String(format: "%06d", version)
        let staging = directory.appendingPathComponent(".staging-\(name)-\(getpid())")
        let final = directory.appendingPathComponent(name)
        var entry = PublishedVersion(version: version, path: final.path, step: step, publishedAt: publishedAt, metrics: metrics)
        do {
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            try write(staging)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(entry).write(to: staging.appendingPathComponent(Self.statsFileName))
            try Durability.flushTree(staging)
            guard rename(staging.path, final.path) == 0 else {
                throw ModelVersionError.io("rename \(staging.lastPathComponent) → \(name): \(String(cString: strerror(errno)))")
            }
            try Durability.flushDirectory(directory)
        } catch let error as ModelVersionError {
            try? FileManager.default.removeItem(at: staging)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: staging)
            throw .io("publishing version \(version): \(error.localizedDescription)")
        }
        entry.path = final.path
        lock.withLock {
            published.append(entry)
            prune()
        }
        return entry
    }

    /// Keeps `version` for `purpose` until another version (or nil) is pinned for it; the one it
    /// replaces may then go, if it is not among the last `keep` nor pinned for another purpose.
    public func pin(_ version: Int?, for purpose: Pin) {
        lock.withLock {
            pinned[purpose] = version
            prune()
        }
    }

    /// Lets `version` go for `purpose`, if it is still the one pinned for it.
    public func unpin(_ version: Int, for purpose: Pin) {
        lock.withLock {
            guard pinned[purpose] == version else { return }
            pinned[purpose] = nil
            prune()
        }
    }

    /// Under `lock`: removes the oldest versions beyond `keep`, except the pinned ones.
    private func prune() {
        let held = Set(pinned.values)
        let removable = published.dropLast(keep).filter { !held.contains($0.version) }
        for old in removable { try? FileManager.default.removeItem(atPath: old.path) }
        published.removeAll { entry in removable.contains { $0.version == entry.version } }
    }
}

/// fsync for files and directories: what makes a rename-based publication survive a power cut.
enum Durability {
    static func flushTree(_ directory: URL) throws(ModelVersionError) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names {
            try flush(directory.appendingPathComponent(name).path, flags: O_RDONLY)
        }
        try flushDirectory(directory)
    }

    static func flushDirectory(_ directory: URL) throws(ModelVersionError) {
        try flush(directory.path, flags: O_RDONLY | O_DIRECTORY)
    }

    private static func flush(_ path: String, flags: Int32) throws(ModelVersionError) {
        let fd = open(path, flags)
        guard fd >= 0 else { throw .io("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .io("fsync \(path): \(String(cString: strerror(errno)))") }
    }
}
