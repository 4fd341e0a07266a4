// Model versions announced on the PUB socket: the newest one (what `last_announcement` answers)
// and the socket it goes out on.
import Foundation
import Protocol

/// The newest announcement (what `last_announcement` answers), and the PUB socket it goes out on.
final class AnnouncementBoard: @unchecked Sendable {
    private let server: RequestServer
    private let lock = NSLock()
    private var newest: Announcement?

    init(server: RequestServer, last: Announcement?) {
        self.server = server
        newest = last
    }

    var last: Announcement? { lock.withLock { newest } }

    func announce(_ announcement: Announcement) {
        lock.withLock { newest = announcement }
        server.announce(announcement)
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
