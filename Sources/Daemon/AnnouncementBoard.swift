// Model versions announced on the PUB socket: the newest one (what `last_announcement` answers),
// the socket it goes out on, and the history of every one (what `history` answers, and glfctl
// curves draws): one JSON line per announcement appended to `history.jsonl` in the state
// directory, so it outlives the versions pruned from models/ and restarts.
import Foundation
import Protocol

final class AnnouncementBoard: @unchecked Sendable {
    private let server: RequestServer
    private let lock = NSLock()
    private var newest: Announcement?
    private let historyFile: URL

    init(server: RequestServer, last: Announcement?, historyFile: URL) {
        self.server = server
        self.historyFile = historyFile
        newest = last
    }

    var last: Announcement? { lock.withLock { newest } }

    func announce(_ announcement: Announcement) {
        lock.withLock {
            newest = announcement
            append(announcement)
        }
        server.announce(announcement)
    }

    /// Under `lock`. A history that cannot be written loses its line, not the announcement.
    private func append(_ announcement: Announcement) {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        guard var line = try? encoder.encode(announcement) else { return }
        line.append(0x0A)
        if !FileManager.default.fileExists(atPath: historyFile.path) {
            FileManager.default.createFile(atPath: historyFile.path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        guard let handle = try? FileHandle(forWritingTo: historyFile) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: line)
    }

    /// Announcements of versions after `after`, oldest first, at most `limit`; whether more follow.
    /// A line that does not parse (one torn by a crash) is skipped.
    func history(after: Int, limit: Int) -> (announcements: [Announcement], more: Bool) {
        let text = lock.withLock { (try? Data(contentsOf: historyFile)) ?? Data() }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let all = text.split(separator: 0x0A).compactMap { line in try? decoder.decode(Announcement.self, from: Data(line)) }
            .filter { $0.version > after }
        return (Array(all.prefix(limit)), all.count > limit)
    }

    /// Drift alerts go out on the same socket under their own topic; they are not kept.
    func announce(_ alert: DriftAlert) { server.announce(alert) }
}

extension Announcement {
    init(_ version: PublishedVersion) {
        self.init(version: version.version, path: version.path, step: version.step, publishedAt: version.publishedAt,
                  metrics: version.metrics)
    }
}
