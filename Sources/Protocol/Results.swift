// The result objects of each command and the model announcement: shared by the server (encoding)
// and clients (decoding), so both sides agree by construction. Keys are snake_case on the wire.
// A field the spec types "T|null" is always sent, as null when absent (Swift's synthesised
// encoding would leave it out, and a client indexing `res["next_after"]` would crash): those
// types write their own `encode(to:)`.
import Foundation

public struct IngestResult: Codable, Equatable, Sendable {
    /// One id per image, in request order; given once the items are durable.
    public var ids: [UInt64]
    public init(ids: [UInt64]) { self.ids = ids }
}

public struct EmbedResult: Codable, Equatable, Sendable {
    /// The model version that computed the vectors; one float32 frame of `dim` values per image.
    public var version: Int
    public var dim: Int
    public init(version: Int, dim: Int) {
        self.version = version
        self.dim = dim
    }
}

public struct Neighbour: Codable, Equatable, Sendable {
    public var id: UInt64
    /// Cosine similarity of the unit embeddings, in [-1, 1]; higher is nearer.
    public var score: Float
    public init(id: UInt64, score: Float) {
        self.id = id
        self.score = score
    }
}

public struct KNNResult: Codable, Equatable, Sendable {
    public var version: Int
    public var exact: Bool
    /// Nearest first.
    public var neighbours: [Neighbour]
    /// The answer's coverage: the items it searched, and the items stored when it was answered.
    /// Fewer searched than stored is a partial answer (a burst not yet embedded).
    public var catalogItems: Int
    public var storeItems: Int
    public init(version: Int, exact: Bool, neighbours: [Neighbour], catalogItems: Int = 0, storeItems: Int = 0) {
        self.version = version
        self.exact = exact
        self.neighbours = neighbours
        self.catalogItems = catalogItems
        self.storeItems = storeItems
    }

    enum CodingKeys: String, CodingKey { case version, exact, neighbours, catalogItems, storeItems }

    /// The coverage came with issue 14: a daemon from before it sends none (read as 0).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(version: try c.decode(Int.self, forKey: .version), exact: try c.decode(Bool.self, forKey: .exact),
                  neighbours: try c.decode([Neighbour].self, forKey: .neighbours),
                  catalogItems: try c.decodeIfPresent(Int.self, forKey: .catalogItems) ?? 0,
                  storeItems: try c.decodeIfPresent(Int.self, forKey: .storeItems) ?? 0)
    }

    /// Whether the answer searched fewer items than were stored.
    public var isPartial: Bool { catalogItems < storeItems }
}

/// knn by `images` or `vectors`: one answer per query, in the request's order, all under one version.
public struct KNNBatchResult: Codable, Equatable, Sendable {
    public struct Answer: Codable, Equatable, Sendable {
        /// Nearest first.
        public var neighbours: [Neighbour]
        public init(neighbours: [Neighbour]) { self.neighbours = neighbours }
    }
    public var version: Int
    /// True when every answer scored all matching items.
    public var exact: Bool
    public var results: [Answer]
    public var catalogItems: Int
    public var storeItems: Int
    public init(version: Int, exact: Bool, results: [Answer], catalogItems: Int, storeItems: Int) {
        self.version = version
        self.exact = exact
        self.results = results
        self.catalogItems = catalogItems
        self.storeItems = storeItems
    }
}

public struct ItemInfo: Codable, Equatable, Sendable {
    public var id: UInt64
    public var source: String
    public var meta: String
    public var width: Int
    public var height: Int
    public var format: String
    /// Seconds since 1970-01-01 UTC.
    public var ingestedAt: Double
    /// Side and channels of the stored (canonical) image; its pixels are a frame when asked for.
    public var storedSide: Int
    public var storedChannels: Int

    public init(id: UInt64, source: String, meta: String, width: Int, height: Int, format: String,
                ingestedAt: Double, storedSide: Int, storedChannels: Int) {
        self.id = id
        self.source = source
        self.meta = meta
        self.width = width
        self.height = height
        self.format = format
        self.ingestedAt = ingestedAt
        self.storedSide = storedSide
        self.storedChannels = storedChannels
    }
}

public struct GetResult: Codable, Equatable, Sendable {
    /// In request order; null where there is no such item. With "pixels": one frame per found item.
    public var items: [ItemInfo?]
    public init(items: [ItemInfo?]) { self.items = items }
}

public struct DeleteResult: Codable, Equatable, Sendable {
    /// The ids that existed and are now gone.
    public var deleted: [UInt64]
    public init(deleted: [UInt64]) { self.deleted = deleted }
}

public struct ModelResult: Codable, Equatable, Sendable {
    /// 0 before the first version is published.
    public var version: Int
    public var path: String?
    public var step: Int
    public var publishedAt: Double?
    public init(version: Int, path: String?, step: Int, publishedAt: Double?) {
        self.version = version
        self.path = path
        self.step = step
        self.publishedAt = publishedAt
    }

    /// `path` and `published_at` are sent as null before the first version, never left out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(path, forKey: .path)
        try c.encode(step, forKey: .step)
        try c.encode(publishedAt, forKey: .publishedAt)
    }
}

/// Published on the PUB socket under the topic "model" whenever a version is published, and the
/// result of `last_announcement`.
public struct Announcement: Codable, Equatable, Sendable {
    public var version: Int
    /// The version's directory (model.safetensors, config.json, stats.json).
    public var path: String
    public var step: Int
    public var publishedAt: Double
    /// Training statistics at publication: loss terms, collapse monitor, images/s.
    public var metrics: [String: Double]

    public init(version: Int, path: String, step: Int, publishedAt: Double, metrics: [String: Double]) {
        self.version = version
        self.path = path
        self.step = step
        self.publishedAt = publishedAt
        self.metrics = metrics
    }

    /// The PUB message: topic frame `model`, version frame, JSON.
    public func encode() -> [[UInt8]] { PubMessage.encode(self, topic: GLFDProtocol.announcementTopic) }

    public static func decode(_ frames: [[UInt8]]) throws(ProtocolError) -> Announcement {
        try PubMessage.decode(frames, topic: GLFDProtocol.announcementTopic, what: "an announcement")
    }
}

/// Sent on the PUB socket, topic `drift`, when status's drift score crosses the alert level:
/// `rising` when it reaches it, `settled` when it falls back below it.
public struct DriftAlert: Codable, Equatable, Sendable {
    public enum State: String, Codable, Sendable { case rising, settled }
    public var state: State
    public var version: Int
    public var score: Double
    public var alertScore: Double
    public var arrivals: Int
    /// The newest item id measured.
    public var checkedThrough: UInt64
    /// Seconds since the Unix epoch.
    public var at: Double

    public init(state: State, version: Int, score: Double, alertScore: Double, arrivals: Int, checkedThrough: UInt64, at: Double) {
        self.state = state
        self.version = version
        self.score = score
        self.alertScore = alertScore
        self.arrivals = arrivals
        self.checkedThrough = checkedThrough
        self.at = at
    }

    /// The PUB message: topic frame `drift`, version frame, JSON.
    public func encode() -> [[UInt8]] { PubMessage.encode(self, topic: GLFDProtocol.driftTopic) }

    public static func decode(_ frames: [[UInt8]]) throws(ProtocolError) -> DriftAlert {
        try PubMessage.decode(frames, topic: GLFDProtocol.driftTopic, what: "a drift alert")
    }
}

/// What the PUB socket sends: 3 frames, the topic (subscribers filter by it), the version frame, JSON.
enum PubMessage {
    static func encode(_ value: some Encodable, topic: String) -> [[UInt8]] {
        [Array(topic.utf8), GLFDProtocol.versionFrame, Array(try! JSONCoding.encoder.encode(value))]
    }

    static func decode<Message: Decodable>(_ frames: [[UInt8]], topic: String, what: String) throws(ProtocolError) -> Message {
        guard frames.count == 3, frames[0] == Array(topic.utf8), frames[1] == GLFDProtocol.versionFrame else {
            throw ProtocolError(.badFrames, "\(what) is 3 frames: \"\(topic)\", \"\(GLFDProtocol.version)\", JSON")
        }
        do {
            return try JSONCoding.decoder.decode(Message.self, from: Data(frames[2]))
        } catch {
            throw ProtocolError(.badHeader, "\(what): \(JSONCoding.describe(error))")
        }
    }
}

public struct LastAnnouncementResult: Codable, Equatable, Sendable {
    /// Null before the first version.
    public var announcement: Announcement?
    public init(announcement: Announcement?) { self.announcement = announcement }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(announcement, forKey: .announcement)
    }
}

public struct StatusResult: Codable, Equatable, Sendable {
    public struct Store: Codable, Equatable, Sendable {
        public var items: Int
        public var bytes: UInt64
        public var ingested: UInt64
        public var replayPolicy: String
        public var replayMembers: Int
        /// Members MinRed sees an embedding of (0 under the other policies).
        public var replayEmbedded: Int
        public var mapUsedBytes: Int
        public var mapSize: Int
        public init(items: Int, bytes: UInt64, ingested: UInt64, replayPolicy: String, replayMembers: Int,
                    replayEmbedded: Int = 0, mapUsedBytes: Int, mapSize: Int) {
            self.items = items
            self.bytes = bytes
            self.ingested = ingested
            self.replayPolicy = replayPolicy
            self.replayMembers = replayMembers
            self.replayEmbedded = replayEmbedded
            self.mapUsedBytes = mapUsedBytes
            self.mapSize = mapSize
        }
    }

    public struct Training: Codable, Equatable, Sendable {
        public var method: String
        public var step: Int
        public var imagesPerSecond: Double
        /// Each loss term of the last step (aligning, constraining, adc.dcm, adc.lpm...).
        public var loss: [String: Double]
        /// Std of the unit projections over the batch; near 0 means collapse.
        public var collapse: Double
        public var rolledBack: Int
        /// For each ADC term: the norm of its weighted gradient over the method's, at the projections.
        public var gradientShare: [String: Double]
        public init(method: String, step: Int, imagesPerSecond: Double, loss: [String: Double], collapse: Double,
                    rolledBack: Int, gradientShare: [String: Double] = [:]) {
            self.method = method
            self.step = step
            self.imagesPerSecond = imagesPerSecond
            self.loss = loss
            self.collapse = collapse
            self.rolledBack = rolledBack
            self.gradientShare = gradientShare
        }

        /// `gradient_share` came with ADC's revision: a daemon from before it sends none.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(method: try c.decode(String.self, forKey: .method), step: try c.decode(Int.self, forKey: .step),
                      imagesPerSecond: try c.decode(Double.self, forKey: .imagesPerSecond),
                      loss: try c.decode([String: Double].self, forKey: .loss), collapse: try c.decode(Double.self, forKey: .collapse),
                      rolledBack: try c.decode(Int.self, forKey: .rolledBack),
                      gradientShare: try c.decodeIfPresent([String: Double].self, forKey: .gradientShare) ?? [:])
        }
    }

    /// What knn and export answer from: the catalog of stored items' embeddings.
    public struct Catalog: Codable, Equatable, Sendable {
        /// The model version of the catalog knn answers from; 0 until the first one is built.
        public var version: Int
        /// Items embedded into it.
        public var items: Int
        /// The version whose catalog is being built in the background, if any.
        public var building: Int?
        /// Every stored item is in it under `version`, and nothing is being built: knn and
        /// export see the whole store. (`items` still counts rows deleted since the build.)
        public var complete: Bool
        /// When a newer version's rebuild, waiting for the rebuild share, may start (seconds since
        /// the Unix epoch), or nil when none waits.
        public var nextBuildAt: Double?
        public init(version: Int, items: Int, building: Int?, complete: Bool = false, nextBuildAt: Double? = nil) {
            self.version = version
            self.items = items
            self.building = building
            self.complete = complete
            self.nextBuildAt = nextBuildAt
        }

        enum CodingKeys: String, CodingKey { case version, items, building, complete, nextBuildAt }

        /// `complete` came with issue 12 and `next_build_at` with issue 14: older daemons send neither.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(version: try c.decode(Int.self, forKey: .version), items: try c.decode(Int.self, forKey: .items),
                      building: try c.decodeIfPresent(Int.self, forKey: .building),
                      complete: try c.decodeIfPresent(Bool.self, forKey: .complete) ?? false,
                      nextBuildAt: try c.decodeIfPresent(Double.self, forKey: .nextBuildAt))
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(version, forKey: .version)
            try c.encode(items, forKey: .items)
            try c.encode(building, forKey: .building)
            try c.encode(complete, forKey: .complete)
            try c.encode(nextBuildAt, forKey: .nextBuildAt)
        }
    }

    /// Where the daemon's memory goes, in bytes: the kernel's and the allocator's counts of the
    /// process, and what its large structures hold by their owners' count.
    public struct Memory: Codable, Equatable, Sendable {
        /// Resident set (RSS): the process's pages in RAM.
        public var residentBytes: Int
        /// Of them, pages mapped from files: the store's LMDB map as it is read, the binary.
        public var residentFileBytes: Int
        /// Heap handed out and not yet freed.
        public var heapInUseBytes: Int
        /// Heap obtained from the kernel: in use, plus free memory the allocator keeps for reuse.
        public var heapHeldBytes: Int
        /// Networks: the trainer's replicas, parameters, gradients and optimiser state, and every
        /// loaded encoder, with the activation buffers of each.
        public var networksBytes: Int
        /// The catalog knn answers from: embeddings, the tail, the HNSW graph.
        public var catalogBytes: Int
        /// The catalog being built, as far as it got (0 when none is).
        public var catalogBuildingBytes: Int
        /// The replay policy: its members, and MinRed's view of them (embeddings, neighbours).
        public var replayBytes: Int

        public init(residentBytes: Int, residentFileBytes: Int, heapInUseBytes: Int, heapHeldBytes: Int, networksBytes: Int,
                    catalogBytes: Int, catalogBuildingBytes: Int, replayBytes: Int) {
            self.residentBytes = residentBytes
            self.residentFileBytes = residentFileBytes
            self.heapInUseBytes = heapInUseBytes
            self.heapHeldBytes = heapHeldBytes
            self.networksBytes = networksBytes
            self.catalogBytes = catalogBytes
            self.catalogBuildingBytes = catalogBuildingBytes
            self.replayBytes = replayBytes
        }
    }

    /// How far the newest items lie from the replay set under the served version: the mean
    /// distance (1 − cosine) of the last `arrivals` sampled arrivals to their nearest member of a
    /// sample of the replay set (`reference_members`), over the mean distance between those
    /// members and their nearest other member (`replay_spacing`). Near 1: arrivals look like what
    /// is replayed; well above: they are new. A new version starts it afresh (`arrivals` 0,
    /// `score` null until arrivals are measured).
    public struct Drift: Codable, Equatable, Sendable {
        public var version: Int
        public var score: Double?
        public var arrivals: Int
        public var arrivalDistance: Double?
        public var replaySpacing: Double
        public var referenceMembers: Int
        /// The newest item id measured (or held by the catalog the reference came from).
        public var checkedThrough: UInt64
        public init(version: Int, score: Double?, arrivals: Int, arrivalDistance: Double?, replaySpacing: Double,
                    referenceMembers: Int, checkedThrough: UInt64) {
            self.version = version
            self.score = score
            self.arrivals = arrivals
            self.arrivalDistance = arrivalDistance
            self.replaySpacing = replaySpacing
            self.referenceMembers = referenceMembers
            self.checkedThrough = checkedThrough
        }

        enum CodingKeys: String, CodingKey { case version, score, arrivals, arrivalDistance, replaySpacing, referenceMembers, checkedThrough }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(version, forKey: .version)
            try c.encode(score, forKey: .score)
            try c.encode(arrivals, forKey: .arrivals)
            try c.encode(arrivalDistance, forKey: .arrivalDistance)
            try c.encode(replaySpacing, forKey: .replaySpacing)
            try c.encode(referenceMembers, forKey: .referenceMembers)
            try c.encode(checkedThrough, forKey: .checkedThrough)
        }
    }

    /// Ingest from a NATS JetStream stream (issue 16), when configured: the durable consumer's
    /// connection and lag, and what it did with the messages since glfd started.
    public struct JetStream: Codable, Equatable, Sendable {
        public var stream: String
        public var consumer: String
        public var connected: Bool
        /// Messages in the stream not yet delivered to this consumer; null before the first check.
        public var pending: UInt64?
        /// Stored (each under its stream sequence), already stored before (acknowledged again),
        /// and terminated as not images.
        public var stored: Int
        public var duplicates: Int
        public var rejected: Int
        /// Why the consumer is paused (it retries), or null.
        public var lastError: String?
        public init(stream: String, consumer: String, connected: Bool, pending: UInt64?, stored: Int, duplicates: Int,
                    rejected: Int, lastError: String?) {
            self.stream = stream
            self.consumer = consumer
            self.connected = connected
            self.pending = pending
            self.stored = stored
            self.duplicates = duplicates
            self.rejected = rejected
            self.lastError = lastError
        }

        enum CodingKeys: String, CodingKey { case stream, consumer, connected, pending, stored, duplicates, rejected, lastError }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(stream, forKey: .stream)
            try c.encode(consumer, forKey: .consumer)
            try c.encode(connected, forKey: .connected)
            try c.encode(pending, forKey: .pending)
            try c.encode(stored, forKey: .stored)
            try c.encode(duplicates, forKey: .duplicates)
            try c.encode(rejected, forKey: .rejected)
            try c.encode(lastError, forKey: .lastError)
        }
    }

    /// A serve-only replica's view of its trainer (issue 16): the trainer's latest version as
    /// last seen and the newest installed here; `model.version` is the one served, which follows
    /// once its catalog is built.
    public struct Replica: Codable, Equatable, Sendable {
        public var follow: String
        public var trainerVersion: Int?
        public var installedVersion: Int?
        public var lastError: String?
        public init(follow: String, trainerVersion: Int?, installedVersion: Int?, lastError: String?) {
            self.follow = follow
            self.trainerVersion = trainerVersion
            self.installedVersion = installedVersion
            self.lastError = lastError
        }

        enum CodingKeys: String, CodingKey { case follow, trainerVersion, installedVersion, lastError }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(follow, forKey: .follow)
            try c.encode(trainerVersion, forKey: .trainerVersion)
            try c.encode(installedVersion, forKey: .installedVersion)
            try c.encode(lastError, forKey: .lastError)
        }
    }

    public var protocolVersion: String
    /// What this daemon is (issue 16): "trainer" (it trains and publishes), "replica" (it serves
    /// a trainer's versions, `replica`), or "serving" (training off, not following anyone). Nil
    /// from a daemon before it.
    public var role: String?
    public var uptimeSeconds: Double
    public var store: Store
    public var training: Training
    public var model: ModelResult
    public var catalog: Catalog
    /// Came with issue 14: nil from a daemon before it.
    public var memory: Memory?
    /// Came with issue 15: nil from a daemon before it, and until the first catalog with two
    /// replay members is built.
    public var drift: Drift?
    /// Came with issue 16: absent unless the daemon ingests from JetStream.
    public var jetstream: JetStream?
    /// Came with issue 16: absent unless the daemon is a replica.
    public var replica: Replica?

    public init(role: String? = nil, uptimeSeconds: Double, store: Store, training: Training, model: ModelResult, catalog: Catalog,
                memory: Memory? = nil, drift: Drift? = nil, jetstream: JetStream? = nil, replica: Replica? = nil) {
        protocolVersion = GLFDProtocol.version
        self.role = role
        self.uptimeSeconds = uptimeSeconds
        self.store = store
        self.training = training
        self.model = model
        self.catalog = catalog
        self.memory = memory
        self.drift = drift
        self.jetstream = jetstream
        self.replica = replica
    }
}

public struct ExportResult: Codable, Equatable, Sendable {
    public var version: Int
    public var dim: Int
    /// The page's item ids, ascending; one frame of ids.count × dim float32 follows.
    public var ids: [UInt64]
    /// Pass as "after" for the next page; null when this page was the last.
    public var nextAfter: UInt64?
    public init(version: Int, dim: Int, ids: [UInt64], nextAfter: UInt64?) {
        self.version = version
        self.dim = dim
        self.ids = ids
        self.nextAfter = nextAfter
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(dim, forKey: .dim)
        try c.encode(ids, forKey: .ids)
        try c.encode(nextAfter, forKey: .nextAfter)
    }
}

/// `model_files`: a published version's serving files, one payload frame each, in this order.
public struct ModelFilesResult: Codable, Equatable, Sendable {
    public struct File: Codable, Equatable, Sendable {
        public var name: String
        public var bytes: Int
        /// CRC-32 (zlib's polynomial) of the file's bytes, so a replica can tell a damaged copy.
        public var crc32: UInt32
        public init(name: String, bytes: Int, crc32: UInt32) {
            self.name = name
            self.bytes = bytes
            self.crc32 = crc32
        }
    }

    public var version: Int
    public var step: Int
    public var publishedAt: Double
    public var files: [File]
    public init(version: Int, step: Int, publishedAt: Double, files: [File]) {
        self.version = version
        self.step = step
        self.publishedAt = publishedAt
        self.files = files
    }
}

/// `model_file`: one chunk of a serving file, as the payload frame that follows.
public struct ModelFileChunkResult: Codable, Equatable, Sendable {
    public var version: Int
    public var name: String
    public var offset: Int
    /// Bytes in this chunk's frame.
    public var bytes: Int
    /// Pass as "offset" for the next chunk; null when this chunk ends the file.
    public var nextOffset: Int?
    public init(version: Int, name: String, offset: Int, bytes: Int, nextOffset: Int?) {
        self.version = version
        self.name = name
        self.offset = offset
        self.bytes = bytes
        self.nextOffset = nextOffset
    }

    enum CodingKeys: String, CodingKey { case version, name, offset, bytes, nextOffset }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(name, forKey: .name)
        try c.encode(offset, forKey: .offset)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(nextOffset, forKey: .nextOffset)
    }
}

/// `duplicates`: near-duplicate groups under one version.
public struct DuplicatesResult: Codable, Equatable, Sendable {
    public struct Group: Codable, Equatable, Sendable {
        /// Ascending.
        public var ids: [UInt64]
        /// The lowest cosine similarity among the group's pairs found within the distance.
        public var weakestLink: Float
        public init(ids: [UInt64], weakestLink: Float) {
            self.ids = ids
            self.weakestLink = weakestLink
        }
    }
    public var version: Int
    /// Items compared (those of `source`, if given), and all stored items at the time: fewer are
    /// compared while the newest are still being embedded (as knn's `catalog_items`).
    public var items: Int
    public var storeItems: Int
    /// The catalog's spacing: the median distance (1 − cosine) from an item to its 10th nearest.
    public var spacing: Double
    public var within: Double
    /// within × spacing, at least 10⁻⁵: pairs at most this far apart are duplicates.
    public var maxDistance: Double
    /// Groups found; `groups` holds the first `max_groups` of them, largest first.
    public var groupsFound: Int
    public var groups: [Group]
    public init(version: Int, items: Int, storeItems: Int, spacing: Double, within: Double, maxDistance: Double,
                groupsFound: Int, groups: [Group]) {
        self.version = version
        self.items = items
        self.storeItems = storeItems
        self.spacing = spacing
        self.within = within
        self.maxDistance = maxDistance
        self.groupsFound = groupsFound
        self.groups = groups
    }
}

/// `snapshot`: what was written.
public struct SnapshotResult: Codable, Equatable, Sendable {
    /// The snapshot's directory (absolute).
    public var dir: String
    /// The model version copied (the one served when the snapshot began), and its step.
    public var version: Int
    public var step: Int
    /// Items in the store copy, and bytes of every file written.
    public var items: Int
    public var bytes: Int
    public var seconds: Double
    public init(dir: String, version: Int, step: Int, items: Int, bytes: Int, seconds: Double) {
        self.dir = dir
        self.version = version
        self.step = step
        self.items = items
        self.bytes = bytes
        self.seconds = seconds
    }
}

/// `history`: the announcements kept since the state directory was made, oldest first.
public struct HistoryResult: Codable, Equatable, Sendable {
    public var announcements: [Announcement]
    /// Pass as `after_version` for the next page; null when this was the last.
    public var nextAfter: Int?
    public init(announcements: [Announcement], nextAfter: Int?) {
        self.announcements = announcements
        self.nextAfter = nextAfter
    }
}
