// Requests: what a client sends after the routing envelope.
//
//   frame 0      "glfd/1"
//   frame 1      header: a JSON object with "cmd", an optional "id" echoed in the reply, and the
//                command's fields (unknown fields are ignored)
//   frames 2...  binary payloads, as many as the command's fields say (images, a vector)
//
// `Request.decode` checks everything in the order of cost — frame count, version, header size,
// JSON, command, fields, payload sizes — and returns a typed ProtocolError for the first problem,
// along with the request id when the header got that far (so the error reply can echo it).
import Foundation

/// The client's request id: a number or a string, echoed verbatim in the reply.
public enum RequestID: Codable, Hashable, Sendable, CustomStringConvertible {
    case number(Int64)
    case string(String)

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            self = .number(number)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .number(let number): try container.encode(number)
        case .string(let string): try container.encode(string)
        }
    }

    public var description: String {
        switch self {
        case .number(let number): "\(number)"
        case .string(let string): string
        }
    }
}

/// How an image payload is to be read.
public enum ImageEncoding: String, Codable, Sendable {
    /// JPEG or PNG, recognised by its magic bytes.
    case auto
    case jpeg
    case png
    /// 8-bit pixels, height × width × channels, row-major; width, height and channels required.
    case raw
}

/// What the header says about one image frame.
public struct ImageDescriptor: Codable, Equatable, Sendable {
    public var format: ImageEncoding?
    public var width: Int?
    public var height: Int?
    public var channels: Int?
    /// Ingest only: the client's source tag (at most 256 bytes) and a metadata string kept verbatim.
    public var source: String?
    public var meta: String?

    public init(format: ImageEncoding? = nil, width: Int? = nil, height: Int? = nil, channels: Int? = nil,
                source: String? = nil, meta: String? = nil) {
        self.format = format
        self.width = width
        self.height = height
        self.channels = channels
        self.source = source
        self.meta = meta
    }
}

public struct ImagePayload: Equatable, Sendable {
    public var descriptor: ImageDescriptor
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8], _ descriptor: ImageDescriptor = ImageDescriptor()) {
        self.bytes = bytes
        self.descriptor = descriptor
    }
}

public struct KNNQuery: Equatable, Sendable {
    public enum Target: Equatable, Sendable {
        case image(ImagePayload)
        /// A stored item: its embedding under the current version.
        case item(UInt64)
        case vector([Float])
        /// Several queries in one request (issue 17): one answer each, in order (KNNBatchResult).
        case images([ImagePayload])
        case vectors([[Float]])

        /// Whether the reply is a KNNBatchResult.
        public var isBatch: Bool {
            switch self {
            case .images, .vectors: true
            case .image, .item, .vector: false
            }
        }
    }

    public var target: Target
    public var k: Int
    /// Only items ingested with this source tag.
    public var source: String?
    /// Exact search over every item (sgemm) instead of the approximate index.
    public var exact: Bool
    /// Only items ingested after / before these times (seconds since the Unix epoch, exclusive).
    public var ingestedAfter: Double?
    public var ingestedBefore: Double?

    public init(_ target: Target, k: Int = 10, source: String? = nil, exact: Bool = false,
                ingestedAfter: Double? = nil, ingestedBefore: Double? = nil) {
        self.target = target
        self.k = k
        self.source = source
        self.exact = exact
        self.ingestedAfter = ingestedAfter
        self.ingestedBefore = ingestedBefore
    }
}

public enum Command: Equatable, Sendable {
    case ingest([ImagePayload])
    case embed([ImagePayload])
    case knn(KNNQuery)
    case get(ids: [UInt64], pixels: Bool)
    case delete(ids: [UInt64])
    case status
    case model
    case lastAnnouncement
    /// The catalog's embeddings under the current version, a page at a time: items with id > after.
    case export(after: UInt64, limit: Int)
    /// A published version's serving files (its weights and their configuration): their names,
    /// sizes and checksums, for replicas that follow this daemon (issue 16).
    case modelFiles(version: Int)
    /// One of them, a chunk at a time: bytes from `offset` (a reply carries at most the reply
    /// payload limit).
    case modelFile(version: Int, name: String, offset: Int)
    /// Near-duplicate groups among the stored items under the served version (issue 17).
    case duplicates(DuplicatesQuery)
    /// A consistent copy of the daemon's state written to `dir` on the daemon's machine (issue 17).
    case snapshot(dir: String)
    /// Every announcement since the state directory was made, after version `after`: the
    /// training's history (issue 17; glfctl curves).
    case history(after: Int, limit: Int)

    public var name: String {
        switch self {
        case .ingest: "ingest"
        case .embed: "embed"
        case .knn: "knn"
        case .get: "get"
        case .delete: "delete"
        case .status: "status"
        case .model: "model"
        case .lastAnnouncement: "last_announcement"
        case .export: "export"
        case .modelFiles: "model_files"
        case .modelFile: "model_file"
        case .duplicates: "duplicates"
        case .snapshot: "snapshot"
        case .history: "history"
        }
    }
}

public struct DuplicatesQuery: Equatable, Sendable {
    /// Pairs closer than this share of the catalog's spacing are duplicates (distance 1 − cosine;
    /// the spacing is the median distance from an item to its 10th nearest other item).
    public var within: Double
    /// Only items ingested with this source tag.
    public var source: String?
    /// Groups in the reply, largest first.
    public var maxGroups: Int
    /// Only items ingested after / before these times (seconds since the epoch, exclusive).
    public var ingestedAfter: Double?
    public var ingestedBefore: Double?

    /// Chosen with tools/bench/dedup_probe.py under a trained encoder (README, "Near-duplicates").
    public static let defaultWithin = 0.15
    public static let defaultMaxGroups = 1000

    public init(within: Double = Self.defaultWithin, source: String? = nil, maxGroups: Int = Self.defaultMaxGroups,
                ingestedAfter: Double? = nil, ingestedBefore: Double? = nil) {
        self.within = within
        self.source = source
        self.maxGroups = maxGroups
        self.ingestedAfter = ingestedAfter
        self.ingestedBefore = ingestedBefore
    }
}

public struct Request: Equatable, Sendable {
    public var id: RequestID?
    public var command: Command

    public init(id: RequestID? = nil, _ command: Command) {
        self.id = id
        self.command = command
    }
}

// MARK: - Encoding (clients)

/// The header fields of every command, one struct: unknown fields are ignored on decoding.
struct RequestHeader: Codable {
    var cmd: String
    var id: RequestID?
    var images: [ImageDescriptor]?
    var image: ImageDescriptor?
    var by: String?
    var k: Int?
    var item: UInt64?
    var dim: Int?
    var source: String?
    var exact: Bool?
    var ids: [UInt64]?
    var pixels: Bool?
    var after: UInt64?
    var limit: Int?
    var version: Int?
    var name: String?
    var offset: Int?
    var within: Double?
    var maxGroups: Int?
    var ingestedAfter: Double?
    var ingestedBefore: Double?
    var count: Int?
    var dir: String?
    var afterVersion: Int?
}

extension Request {
    public func encode() -> [[UInt8]] {
        var header = RequestHeader(cmd: command.name, id: id)
        var payloads: [[UInt8]] = []
        switch command {
        case .ingest(let images), .embed(let images):
            header.images = images.map(\.descriptor)
            payloads = images.map(\.bytes)
        case .knn(let query):
            header.k = query.k
            header.source = query.source
            header.exact = query.exact
            header.ingestedAfter = query.ingestedAfter
            header.ingestedBefore = query.ingestedBefore
            switch query.target {
            case .image(let image):
                header.by = "image"
                header.image = image.descriptor
                payloads = [image.bytes]
            case .item(let id):
                header.by = "item"
                header.item = id
            case .vector(let vector):
                header.by = "vector"
                header.dim = vector.count
                payloads = [VectorFrame.encode(vector)]
            case .images(let images):
                header.by = "images"
                header.images = images.map(\.descriptor)
                payloads = images.map(\.bytes)
            case .vectors(let vectors):
                header.by = "vectors"
                header.dim = vectors.first?.count ?? 0
                header.count = vectors.count
                payloads = [VectorFrame.encode(vectors.flatMap { $0 })]
            }
        case .get(let ids, let pixels):
            header.ids = ids
            header.pixels = pixels
        case .delete(let ids):
            header.ids = ids
        case .export(let after, let limit):
            header.after = after
            header.limit = limit
        case .modelFiles(let version):
            header.version = version
        case .modelFile(let version, let name, let offset):
            header.version = version
            header.name = name
            header.offset = offset
        case .duplicates(let query):
            header.within = query.within
            header.source = query.source
            header.maxGroups = query.maxGroups
            header.ingestedAfter = query.ingestedAfter
            header.ingestedBefore = query.ingestedBefore
        case .snapshot(let dir):
            header.dir = dir
        case .history(let after, let limit):
            header.afterVersion = after
            header.limit = limit
        case .status, .model, .lastAnnouncement:
            break
        }
        return [GLFDProtocol.versionFrame, Array(try! JSONCoding.encoder.encode(header))] + payloads
    }
}

// MARK: - Decoding (the server)

extension Request {
    /// Decodes a request body (the frames after the envelope). On failure, `id` is the request id
    /// whenever the header can be read, whatever else is wrong with the request: a DEALER client
    /// with several requests in flight must be able to tell which one failed.
    public static func decode(_ frames: [[UInt8]], limits: ProtocolLimits = .default)
        -> Result<Request, RequestDecodingFailure> {
        do {
            // The version first: anything that does not start with "glfd/1" (an HTTP request, a
            // stray one-frame message) is another protocol, whatever its frame count.
            guard let version = frames.first else {
                throw ProtocolError(.badFrames, "an empty message; a request has at least 2 frames (version, header)")
            }
            guard version == GLFDProtocol.versionFrame else {
                let shown = String(decoding: version.prefix(32), as: UTF8.self)
                throw ProtocolError(.unsupportedVersion, "frame 0 must be \"\(GLFDProtocol.version)\", not \"\(shown)\"")
            }
            guard frames.count >= 2 else {
                throw ProtocolError(.badFrames, "a request has at least 2 frames (version, header), this one has \(frames.count)")
            }
            let total = frames.reduce(0) { $0 + $1.count }
            guard total <= limits.maxRequestBytes else {
                throw ProtocolError(.tooLarge, "request of \(total) bytes; at most \(limits.maxRequestBytes)")
            }
            guard frames[1].count <= limits.maxHeaderBytes else {
                throw ProtocolError(.tooLarge, "header of \(frames[1].count) bytes; at most \(limits.maxHeaderBytes)")
            }
            let header: RequestHeader
            do {
                header = try JSONCoding.decoder.decode(RequestHeader.self, from: Data(frames[1]))
            } catch {
                throw ProtocolError(.badHeader, "the header is not a valid request: \(JSONCoding.describe(error, in: frames[1]))")
            }
            let command = try decodeCommand(header, payloads: Array(frames.dropFirst(2)), limits: limits)
            return .success(Request(id: header.id, command))
        } catch {
            let protocolError = error as? ProtocolError ?? ProtocolError(.internalError, "\(error)")
            return .failure(RequestDecodingFailure(id: frames.count >= 2 ? peekID(frames[1], limits: limits) : nil, error: protocolError))
        }
    }

    /// The request id alone, read from a header that failed as a whole (too large, a wrong field,
    /// under another version frame). Bounded: a header over `maxIDPeekBytes` is not parsed at all.
    private struct IDOnly: Decodable { var id: RequestID? }

    private static func peekID(_ header: [UInt8], limits: ProtocolLimits) -> RequestID? {
        guard header.count <= limits.maxIDPeekBytes else { return nil }
        return (try? JSONCoding.decoder.decode(IDOnly.self, from: Data(header)))?.id
    }

    private static func decodeCommand(_ header: RequestHeader, payloads: [[UInt8]], limits: ProtocolLimits) throws -> Command {
        func expectPayloads(_ count: Int) throws {
            guard payloads.count == count else {
                throw ProtocolError(.badFrames, "\(header.cmd) with these fields takes \(count) payload frame\(count == 1 ? "" : "s"), got \(payloads.count)")
            }
        }
        func images() throws -> [ImagePayload] {
            guard let descriptors = header.images, !descriptors.isEmpty else {
                throw ProtocolError(.badHeader, "\(header.cmd) needs \"images\": a non-empty array with one descriptor per image frame")
            }
            guard descriptors.count <= limits.maxImagesPerRequest else {
                throw ProtocolError(.tooLarge, "\(descriptors.count) images; at most \(limits.maxImagesPerRequest) per request")
            }
            try expectPayloads(descriptors.count)
            return try zip(descriptors, payloads).enumerated().map { index, pair in
                try checkedImage(pair.0, pair.1, index: index, limits: limits)
            }
        }
        func ids() throws -> [UInt64] {
            guard let ids = header.ids else { throw ProtocolError(.badHeader, "\(header.cmd) needs \"ids\": an array of item ids") }
            guard ids.count <= limits.maxIDsPerRequest else {
                throw ProtocolError(.tooLarge, "\(ids.count) ids; at most \(limits.maxIDsPerRequest) per request")
            }
            try expectPayloads(0)
            return ids
        }

        switch header.cmd {
        case "ingest":
            return .ingest(try images())
        case "embed":
            return .embed(try images())
        case "knn":
            let k = header.k ?? 10
            guard k >= 1 else { throw ProtocolError(.badHeader, "k must be at least 1, not \(k)") }
            guard k <= limits.maxK else { throw ProtocolError(.tooLarge, "k = \(k); at most \(limits.maxK)") }
            let target: KNNQuery.Target
            switch header.by ?? "image" {
            case "image":
                try expectPayloads(1)
                target = .image(try checkedImage(header.image ?? ImageDescriptor(), payloads[0], index: 0, limits: limits))
            case "item":
                guard let item = header.item else { throw ProtocolError(.badHeader, "knn by item needs \"item\": an item id") }
                try expectPayloads(0)
                target = .item(item)
            case "vector", "vectors":
                guard let dim = header.dim, dim >= 1 else {
                    throw ProtocolError(.badHeader, "knn by \(header.by!) needs \"dim\": the vector's length, at least 1")
                }
                guard dim <= limits.maxVectorDimension else {
                    throw ProtocolError(.tooLarge, "dim \(dim); at most \(limits.maxVectorDimension)")
                }
                let count = header.by == "vector" ? 1 : header.count ?? 0
                guard count >= 1 else { throw ProtocolError(.badHeader, "knn by vectors needs \"count\": the number of vectors, at least 1") }
                guard count <= limits.maxImagesPerRequest else {
                    throw ProtocolError(.tooLarge, "\(count) vectors; at most \(limits.maxImagesPerRequest) per request")
                }
                try expectPayloads(1)
                guard let flat = VectorFrame.decode(payloads[0], dimension: count * dim) else {
                    throw ProtocolError(.badFrames, "the vector frame has \(payloads[0].count) bytes; \(count) × dim \(dim) needs \(count * dim * 4)")
                }
                guard flat.allSatisfy(\.isFinite) else { throw ProtocolError(.badHeader, "the vector has non-finite values") }
                let vectors = (0..<count).map { Array(flat[$0 * dim..<($0 + 1) * dim]) }
                target = header.by == "vector" ? .vector(vectors[0]) : .vectors(vectors)
            case "images":
                target = .images(try images())
            case let other:
                throw ProtocolError(.badHeader, "\"by\" must be \"image\", \"item\", \"vector\", \"images\" or \"vectors\", not \"\(other)\"")
            }
            for bound in [header.ingestedAfter, header.ingestedBefore].compactMap({ $0 }) where !bound.isFinite {
                throw ProtocolError(.badHeader, "ingested_after and ingested_before must be finite seconds since the epoch")
            }
            return .knn(KNNQuery(target, k: k, source: header.source, exact: header.exact ?? false,
                                 ingestedAfter: header.ingestedAfter, ingestedBefore: header.ingestedBefore))
        case "get":
            return .get(ids: try ids(), pixels: header.pixels ?? false)
        case "delete":
            return .delete(ids: try ids())
        case "status":
            try expectPayloads(0)
            return .status
        case "model":
            try expectPayloads(0)
            return .model
        case "last_announcement":
            try expectPayloads(0)
            return .lastAnnouncement
        case "export":
            try expectPayloads(0)
            let limit = header.limit ?? 1024
            guard limit >= 1 else { throw ProtocolError(.badHeader, "limit must be at least 1, not \(limit)") }
            guard limit <= limits.maxIDsPerRequest else {
                throw ProtocolError(.tooLarge, "limit \(limit); at most \(limits.maxIDsPerRequest) per page")
            }
            return .export(after: header.after ?? 0, limit: limit)
        case "history":
            try expectPayloads(0)
            let limit = header.limit ?? 1000
            guard limit >= 1, header.afterVersion ?? 0 >= 0 else { throw ProtocolError(.badHeader, "limit must be at least 1 and after_version at least 0") }
            guard limit <= limits.maxIDsPerRequest else { throw ProtocolError(.tooLarge, "limit \(limit); at most \(limits.maxIDsPerRequest)") }
            return .history(after: header.afterVersion ?? 0, limit: limit)
        case "snapshot":
            try expectPayloads(0)
            guard let dir = header.dir, !dir.isEmpty else { throw ProtocolError(.badHeader, "snapshot needs \"dir\": an absolute path on the daemon's machine") }
            return .snapshot(dir: dir)
        case "duplicates":
            try expectPayloads(0)
            let within = header.within ?? DuplicatesQuery.defaultWithin
            guard within > 0 && within <= 2 else { throw ProtocolError(.badHeader, "within must be in (0, 2], not \(within)") }
            let maxGroups = header.maxGroups ?? DuplicatesQuery.defaultMaxGroups
            guard maxGroups >= 1 else { throw ProtocolError(.badHeader, "max_groups must be at least 1, not \(maxGroups)") }
            guard maxGroups <= limits.maxIDsPerRequest else {
                throw ProtocolError(.tooLarge, "max_groups \(maxGroups); at most \(limits.maxIDsPerRequest)")
            }
            for bound in [header.ingestedAfter, header.ingestedBefore].compactMap({ $0 }) where !bound.isFinite {
                throw ProtocolError(.badHeader, "ingested_after and ingested_before must be finite seconds since the epoch")
            }
            return .duplicates(DuplicatesQuery(within: within, source: header.source, maxGroups: maxGroups,
                                               ingestedAfter: header.ingestedAfter, ingestedBefore: header.ingestedBefore))
        case "model_files", "model_file":
            try expectPayloads(0)
            guard let version = header.version, version >= 1 else {
                throw ProtocolError(.badHeader, "\(header.cmd) needs \"version\": a published version number, at least 1")
            }
            guard header.cmd == "model_file" else { return .modelFiles(version: version) }
            guard let name = header.name, !name.isEmpty, name.utf8.count <= 256 else {
                throw ProtocolError(.badHeader, "model_file needs \"name\": one of the names model_files lists")
            }
            let offset = header.offset ?? 0
            guard offset >= 0 else { throw ProtocolError(.badHeader, "offset must be at least 0, not \(offset)") }
            return .modelFile(version: version, name: name, offset: offset)
        default:
            throw ProtocolError(.unknownCommand, "unknown command \"\(header.cmd.prefix(64))\"")
        }
    }

    private static func checkedImage(_ descriptor: ImageDescriptor, _ bytes: [UInt8], index: Int,
                                      limits: ProtocolLimits) throws -> ImagePayload {
        // The descriptor first: a raw one that cannot describe an image is a header error, whatever the frame.
        var rawBytes: Int?
        if descriptor.format == .raw {
            guard let w = descriptor.width, let h = descriptor.height, let c = descriptor.channels, w >= 1, h >= 1, [1, 3, 4].contains(c) else {
                throw ProtocolError(.badHeader, "a raw image needs width and height of at least 1 and channels 1, 3 or 4", index: index)
            }
            // Too large a side is a property of the image (§6: bad_image), like a JPEG declaring one.
            guard w <= 65_535, h <= 65_535 else {
                throw ProtocolError(.badImage, "raw image declared \(w)×\(h); at most 16,384 pixels a side", index: index)
            }
            rawBytes = w * h * c
        }
        guard !bytes.isEmpty else { throw ProtocolError(.badImage, "the image frame is empty", index: index) }
        guard bytes.count <= limits.maxImageBytes else {
            throw ProtocolError(.tooLarge, "image of \(bytes.count) bytes; at most \(limits.maxImageBytes)", index: index)
        }
        if let rawBytes, rawBytes != bytes.count, let w = descriptor.width, let h = descriptor.height, let c = descriptor.channels {
            throw ProtocolError(.badImage, "raw image declared \(w)×\(h)×\(c) but the frame has \(bytes.count) bytes", index: index)
        }
        if let source = descriptor.source, source.utf8.count > limits.maxSourceBytes {
            throw ProtocolError(.tooLarge, "source tag of \(source.utf8.count) bytes; at most \(limits.maxSourceBytes)", index: index)
        }
        if let meta = descriptor.meta, meta.utf8.count > limits.maxMetaBytes {
            throw ProtocolError(.tooLarge, "meta of \(meta.utf8.count) bytes; at most \(limits.maxMetaBytes)", index: index)
        }
        return ImagePayload(bytes, descriptor)
    }
}

public struct RequestDecodingFailure: Error, Equatable, Sendable {
    public var id: RequestID?
    public var error: ProtocolError
}
