// A serve-only replica's link to its trainer (issue 16): it asks the trainer for its latest
// announcement every `pollSeconds`, and when that names a version newer than any here, fetches
// the version's serving files (`model_files`, then `model_file` chunks), checks their sizes and
// CRC-32 against the trainer's list, installs them under the trainer's version number (staged,
// flushed, renamed: complete or absent), and hands the version to the catalog service, which
// serves it once its catalog of the replica's own items is built (`serveWithCatalog`).
//
// Polling, not the PUB socket: a subscriber misses what is published while it is disconnected,
// while `last_announcement` always names the newest version; a second's delay is nothing beside
// a catalog build. The replica's items come from its own JetStream consumer on the same stream,
// so trainer and replica hold the same items under possibly different ids.
import Foundation
import GLFDClient
import Logging
import Protocol
import Store
import ZeroMQ

public final class ReplicaFollower: @unchecked Sendable {
    public struct Settings: Sendable, Codable, Equatable {
        /// The trainer's request endpoint (tcp://host:port); "" = this daemon is not a replica.
        public var follow = ""
        public var pollSeconds: Double = 1
        /// CURVE to a trainer with `security.curve` on: its public key and this replica's secret
        /// key (the replica's public key must be on the trainer's allowlist); nil = in the clear.
        public var curve: ClientCurve?
        public init() {}

        public var isEnabled: Bool { !follow.isEmpty }
    }

    public struct Status: Sendable, Equatable {
        /// The trainer's latest announced version, as last seen; nil before the first answer.
        public var trainerVersion: Int?
        /// The newest version installed here.
        public var installedVersion: Int?
        public var lastError: String?
    }

    public enum FollowError: Error, CustomStringConvertible {
        case damaged(name: String, expectedBytes: Int, bytes: Int, expectedCRC: UInt32, crc: UInt32)
        case incomplete(String)
        /// A trainer started afresh numbers its versions from 1 again: nothing it publishes is
        /// newer than what this replica has until it passes it.
        case trainerBehind(trainer: Int, replica: Int)
        public var description: String {
            switch self {
            case .damaged(let name, let expectedBytes, let bytes, let expectedCRC, let crc):
                "\(name): \(bytes) bytes with CRC-32 \(String(crc, radix: 16)), the trainer listed \(expectedBytes) bytes with \(String(expectedCRC, radix: 16))"
            case .incomplete(let message): message
            case .trainerBehind(let trainer, let replica):
                "the trainer's latest version, \(trainer), is older than this replica's, \(replica): was the trainer's state reset? Reset the replica's models/ too"
            }
        }
    }

    private let settings: Settings
    private let versions: ModelVersions
    private let logger: Logger
    private let onInstalled: @Sendable (PublishedVersion) -> Void
    private let lock = NSLock()
    private var currentStatus = Status()
    private let loop = PollingThread(name: "glfd-replica")
    /// The follower's own ZeroMQ context (nil if it could not be made: each client then makes its own).
    private let context = try? ZMQContext()

    public init(settings: Settings, versions: ModelVersions, logger: Logger,
                onInstalled: @escaping @Sendable (PublishedVersion) -> Void) {
        self.settings = settings
        self.versions = versions
        self.logger = logger
        self.onInstalled = onInstalled
        currentStatus.installedVersion = versions.latest?.version
    }

    public var status: Status { lock.withLock { currentStatus } }

    public func start() {
        loop.start { [self] in run() }
    }

    /// Ends the follower at once: a request in flight to an unreachable trainer would otherwise
    /// hold the stop for its whole timeout (10 s); shutting the context down makes it return.
    public func stop() {
        context?.shutdown()
        loop.stop()
    }

    private var shouldStop: Bool { loop.shouldStop }

    private func run() {
        var client: GLFDClient?
        while !shouldStop {
            do {
                let trainer = try client ?? GLFDClient(endpoint: settings.follow, context: context, timeoutMilliseconds: 10_000,
                                                       curve: settings.curve)
                client = trainer
                try followOnce(trainer)
                lock.withLock { currentStatus.lastError = nil }
            } catch {
                // A client whose request timed out may get the late reply first: start afresh.
                client = nil
                lock.withLock { currentStatus.lastError = "\(error)" }
                if shouldStop { break }  // stopping: the context was shut down under the request
                loop.warn(logger, "replica: following the trainer failed; retrying", error: error, metadata: ["trainer": "\(settings.follow)"])
            }
            loop.pause(settings.pollSeconds)
        }
    }

    /// One poll: the trainer's newest version, fetched and installed if it is newer than ours.
    private func followOnce(_ trainer: GLFDClient) throws {
        guard let announced = try trainer.result(.lastAnnouncement, as: LastAnnouncementResult.self).announcement else { return }
        lock.withLock { currentStatus.trainerVersion = announced.version }
        let installed = versions.latest?.version ?? 0
        if announced.version < installed { throw FollowError.trainerBehind(trainer: announced.version, replica: installed) }
        guard announced.version > installed else { return }
        let started = Date()
        let list = try trainer.result(.modelFiles(version: announced.version), as: ModelFilesResult.self)
        var files: [(name: String, bytes: [UInt8])] = []
        for file in list.files {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(file.bytes)
            var offset: Int? = 0
            while let from = offset, !shouldStop {
                let reply = try trainer.call(.modelFile(version: list.version, name: file.name, offset: from))
                let chunk = try reply.result(as: ModelFileChunkResult.self)
                guard chunk.offset == from, reply.payloads.count == 1, reply.payloads[0].count == chunk.bytes else {
                    throw FollowError.incomplete("\(file.name): a chunk at \(from) came back as \(chunk.bytes) bytes at \(chunk.offset) in \(reply.payloads.count) frames")
                }
                bytes += reply.payloads[0]
                offset = chunk.nextOffset
            }
            guard !shouldStop else { return }
            let crc = CRC32.checksum(bytes)
            guard bytes.count == file.bytes, crc == file.crc32 else {
                throw FollowError.damaged(name: file.name, expectedBytes: file.bytes, bytes: bytes.count, expectedCRC: file.crc32, crc: crc)
            }
            files.append((file.name, bytes))
        }
        let placed = try versions.install(version: list.version, step: list.step, publishedAt: list.publishedAt,
                                             metrics: announced.metrics, files: files)
        lock.withLock { currentStatus.installedVersion = placed.version }
        logger.info("replica: installed the trainer's version", metadata: [
            "version": "\(placed.version)", "step": "\(placed.step)", "bytes": "\(files.reduce(0) { $0 + $1.bytes.count })",
            "seconds": "\(String(format: "%.2f", Date().timeIntervalSince(started)))"])
        onInstalled(placed)
    }

}
