// Snapshots of a running glfd (issue 17): a consistent copy of its state, taken while it goes on
// ingesting and training, and the start from one.
//
//   DIR/store/data.mdb                the store: LMDB's compacted copy of one read transaction
//                                     (every item committed when it began, with the replay set
//                                     and counters of that moment)
//   DIR/models/<version>/             the version served then: weights, configuration, and the
//                                     training state a trainer resumes from
//   DIR/catalog/<version>.index       its saved catalog embeddings, if any (rows of items newer
//                                     than the store copy are dropped when it is loaded)
//   DIR/history.jsonl                 the announcements so far (`history`, glfctl curves)
//   DIR/snapshot.json                 what was copied (SnapshotResult)
//
// `glfd --restore DIR` (GLFDaemon.restore) copies these into an empty state directory before the
// daemon opens it; the restored daemon serves the snapshot's version at once, with the store's
// items as they were.
import Foundation
import Protocol
import Store

extension GLFDaemon {
    /// Writes a snapshot to `path` (absolute; created, or an empty directory). Slow for a large
    /// store (the copy reads it all): call it off the request loop.
    func snapshot(to path: String) -> Result<SnapshotResult, ProtocolError> {
        let started = Date()
        guard path.hasPrefix("/") else { return .failure(ProtocolError(.badHeader, "dir must be an absolute path, not \"\(path.prefix(256))\"")) }
        let root = URL(fileURLWithPath: path)
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        if files.fileExists(atPath: root.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue, (try? files.contentsOfDirectory(atPath: root.path))?.isEmpty == true else {
                return .failure(ProtocolError(.badHeader, "\(root.path) exists and is not an empty directory"))
            }
        }
        guard let served = catalogs.servedVersion else { return .failure(ProtocolError(.notReady, "no model version is served yet")) }
        do {
            let store = root.appendingPathComponent(DaemonSettings.storeFolder)
            try files.createDirectory(at: store, withIntermediateDirectories: true)
            try self.store.snapshot(to: store)
            let models = root.appendingPathComponent(DaemonSettings.modelsFolder)
            try files.createDirectory(at: models, withIntermediateDirectories: true)
            let version = URL(fileURLWithPath: served.path)
            try files.copyItem(at: version, to: models.appendingPathComponent(version.lastPathComponent))
            let catalogName = String(format: "%06d.index", served.version)
            let catalog = settings.catalogDirectory.appendingPathComponent(catalogName)
            if files.fileExists(atPath: catalog.path) {
                let copied = root.appendingPathComponent(DaemonSettings.catalogFolder)
                try files.createDirectory(at: copied, withIntermediateDirectories: true)
                // Optional: a catalog being rewritten meanwhile is re-embedded after a restore.
                try? files.copyItem(at: catalog, to: copied.appendingPathComponent(catalogName))
            }
            let history = settings.stateDirectory.appendingPathComponent("history.jsonl")
            if files.fileExists(atPath: history.path) {
                try files.copyItem(at: history, to: root.appendingPathComponent("history.jsonl"))
            }
            let items = try ImageStore.countItems(inSnapshot: store)
            let bytes = Self.bytes(under: root)
            let result = SnapshotResult(dir: root.path, version: served.version, step: served.step, items: items, bytes: bytes,
                                        seconds: Date().timeIntervalSince(started))
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(result).write(to: root.appendingPathComponent("snapshot.json"), options: .atomic)
            return .success(result)
        } catch {
            try? files.removeItem(at: root)
            return .failure(Self.protocolError(error))
        }
    }

    /// Puts the snapshot in `snapshot` where `settings` keep their state, before a daemon opens
    /// it. Refuses a state directory that already holds a store or model versions: a restore
    /// never overwrites.
    public static func restore(from snapshot: URL, into settings: DaemonSettings) throws {
        let files = FileManager.default
        let manifest = snapshot.appendingPathComponent("snapshot.json")
        guard files.fileExists(atPath: manifest.path) else {
            throw SnapshotError("\(snapshot.path) is not a glfd snapshot (no snapshot.json)")
        }
        let store = URL(fileURLWithPath: settings.store.directory)
        let storeData = store.appendingPathComponent("data.mdb").path
        let versions = (try? files.contentsOfDirectory(atPath: settings.modelsDirectory.path)) ?? []
        let occupied = (files.fileExists(atPath: storeData) ? [storeData] : []) + (versions.isEmpty ? [] : [settings.modelsDirectory.path])
        guard occupied.isEmpty else {
            throw SnapshotError("the state directory already holds \(occupied.joined(separator: " and ")); restore into an empty one")
        }
        try files.createDirectory(at: store, withIntermediateDirectories: true)
        try files.copyItem(at: snapshot.appendingPathComponent(DaemonSettings.storeFolder).appendingPathComponent("data.mdb"),
                           to: store.appendingPathComponent("data.mdb"))
        try files.createDirectory(at: settings.modelsDirectory, withIntermediateDirectories: true)
        for version in try files.contentsOfDirectory(atPath: snapshot.appendingPathComponent(DaemonSettings.modelsFolder).path) {
            try files.copyItem(at: snapshot.appendingPathComponent(DaemonSettings.modelsFolder).appendingPathComponent(version),
                               to: settings.modelsDirectory.appendingPathComponent(version))
        }
        let history = snapshot.appendingPathComponent("history.jsonl")
        if files.fileExists(atPath: history.path) {
            try files.copyItem(at: history, to: settings.stateDirectory.appendingPathComponent("history.jsonl"))
        }
        let catalogs = snapshot.appendingPathComponent(DaemonSettings.catalogFolder)
        if let saved = try? files.contentsOfDirectory(atPath: catalogs.path) {
            try files.createDirectory(at: settings.catalogDirectory, withIntermediateDirectories: true)
            for file in saved {
                try files.copyItem(at: catalogs.appendingPathComponent(file), to: settings.catalogDirectory.appendingPathComponent(file))
            }
        }
    }

    private static func bytes(under directory: URL) -> Int {
        let found = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.fileSizeKey])
        return (found?.allObjects as? [URL] ?? []).reduce(0) { $0 + ((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
    }
}

public struct SnapshotError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
