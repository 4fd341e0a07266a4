// glfctl: talk to a running glfd — ingest files, embed, nearest neighbours, status, follow model
// versions, export the catalog's embeddings.
import ArgumentParser
import Foundation
import GLFDClient
import Imaging
import Pictures
import Protocol
import TerminalProgress
import ZeroMQ

struct GLFCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "glfctl",
        abstract: "Control and query a running glfd (protocol/PROTOCOL.md).",
        subcommands: [Ingest.self, Embed.self, KNN.self, Dedup.self, Status.self, Watch.self, Export.self, Map.self, Curves.self, Snapshot.self, Keygen.self])
}

struct Connection: ParsableArguments {
    @Option(help: "glfd's request endpoint; several, comma-separated, spread requests over replicas.") var endpoint = "tcp://127.0.0.1:5555"
    @Option(help: "Seconds to wait for a reply.") var timeout = 120.0
    @Option(name: .customLong("server-key"), help: "CURVE: the server's public key (Z85), or a file holding it.")
    var serverKey: String?
    @Option(name: .customLong("secret-key-file"), help: "CURVE: this client's secret key file (from glfctl keygen).")
    var secretKeyFile: String?

    var curve: ClientCurve? {
        get throws {
            guard let serverKey else { return nil }
            guard let secretKeyFile else { throw ValidationError("--server-key needs --secret-key-file") }
            func key(_ text: String) throws -> String {
                let value = FileManager.default.fileExists(atPath: text) ? try String(contentsOfFile: text, encoding: .utf8) : text
                return value.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                    .first { !$0.isEmpty && !$0.hasPrefix("#") } ?? ""
            }
            return ClientCurve(serverPublicKey: try key(serverKey), secretKey: try key(secretKeyFile))
        }
    }

    func client() throws -> GLFDClient {
        try GLFDClient(endpoint: endpoint, timeoutMilliseconds: Int32(timeout * 1000), curve: try curve)
    }
}

func printJSON(_ value: some Encodable) {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    print(String(decoding: try! encoder.encode(value), as: UTF8.self))
}

func readImage(_ path: String) throws -> ImagePayload {
    guard let data = FileManager.default.contents(atPath: path) else { throw ClientError("cannot read \(path)") }
    return ImagePayload([UInt8](data))
}

// MARK: ingest

struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store images: files, folders (recursively) or quoted globs; prints a summary, ids with --print-ids.")

    @OptionGroup var connection: Connection
    @Option(help: "Source tag stored with every image.") var source = "glfctl"
    @Option(help: "Metadata string stored with every image.") var meta: String?
    @Option(help: "Images per request.") var batch = 32
    @Option(help: "Requests in flight (glfd allows 8 per client).") var inflight = 4
    @Flag(name: .customLong("print-ids"), help: "Print \"<id>\\t<path>\" for each stored image.") var printIDs = false
    @Argument(help: "Files, folders or globs (*.jpg).") var paths: [String]

    func run() throws {
        let files = try expand(paths)
        guard !files.isEmpty else { throw ValidationError("no .jpg, .jpeg or .png files in \(paths)") }
        let client = try connection.client()
        var chunks = stride(from: 0, to: files.count, by: batch).map { Array(files[$0..<min($0 + batch, files.count)]) }
        var pending: [RequestID: [String]] = [:]
        var next = 0, stored = 0, refused: [String: Int] = [:]
        let started = Date()
        let progress = ProgressLine("ingest", total: files.count, unit: "files")
        while next < chunks.count || !pending.isEmpty {
            while next < chunks.count && pending.count < inflight {
                let chunk = chunks[next]
                next += 1
                let images = try chunk.map { path -> ImagePayload in
                    var image = try readImage(path)
                    image.descriptor = ImageDescriptor(source: source, meta: meta)
                    return image
                }
                pending[try client.send(.ingest(images))] = chunk
            }
            let reply = try client.receive()
            guard let id = reply.id, let chunk = pending.removeValue(forKey: id) else { continue }
            switch reply.outcome {
            case .success:
                let ids = try reply.result(as: IngestResult.self).ids
                stored += ids.count
                if printIDs { for (id, path) in zip(ids, chunk) { print("\(id)\t\(path)") } }
            case .failure(let error):
                // A request is all or nothing: when glfd names the bad image, only that file is
                // refused and the rest of its batch goes again.
                if let index = error.index, chunk.indices.contains(index) {
                    refused[error.code.rawValue, default: 0] += 1
                    FileHandle.standardError.write(Data("refused \(chunk[index]): \(error.code.rawValue): \(error.message)\n".utf8))
                    var rest = chunk
                    rest.remove(at: index)
                    if !rest.isEmpty { chunks.append(rest) }
                } else {
                    refused[error.code.rawValue, default: 0] += chunk.count
                    FileHandle.standardError.write(Data("refused a batch of \(chunk.count) (\(chunk[0]) ...): \(error)\n".utf8))
                }
            }
            progress.update(done: stored + refused.values.reduce(0, +))
        }
        progress.finish()
        let seconds = Date().timeIntervalSince(started)
        let refusedText = refused.isEmpty ? "" : ", not stored: " + refused.sorted { $0.key < $1.key }.map { "\($0.value) (\($0.key))" }.joined(separator: ", ")
        FileHandle.standardError.write(Data(String(format: "%d stored in %.1f s (%.0f images/s)%@\n", stored, seconds,
                                                   Double(stored) / max(seconds, 1e-9), refusedText).utf8))
        if !refused.isEmpty { throw ExitCode(2) }
    }
}

/// Files for paths that are files, folders (recursive) or globs.
func expand(_ paths: [String]) throws -> [String] {
    let extensions: Set<String> = ["jpg", "jpeg", "png"]
    var files: [String] = []
    for path in paths {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue {
                let found = FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? []
                files += found.filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
                    .map { (path as NSString).appendingPathComponent($0) }
            } else {
                files.append(path)
            }
            continue
        }
        var matches = glob_t()
        defer { globfree(&matches) }
        guard glob(path, 0, nil, &matches) == 0 else { throw ValidationError("\(path): no such file, folder or glob match") }
        for i in 0..<Int(matches.gl_pathc) {
            if let match = matches.gl_pathv[i] { files.append(String(cString: match)) }
        }
    }
    return files
}

// MARK: embed, knn, status

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the embedding of an image under the current model version.")
    @OptionGroup var connection: Connection
    @Flag(help: "Print JSON.") var json = false
    @Argument(help: "An image file.") var file: String

    func run() throws {
        let reply = try connection.client().call(.embed([try readImage(file)]))
        let result = try reply.result(as: EmbedResult.self)
        let vector = VectorFrame.decode(reply.payloads.first ?? [], dimension: result.dim) ?? []
        if json {
            struct Output: Encodable { var version: Int; var vector: [Float] }
            printJSON(Output(version: result.version, vector: vector))
        } else {
            print("version \(result.version), \(result.dim) dimensions")
            print(vector.map { String(format: "%.6f", $0) }.joined(separator: " "))
        }
    }
}

struct KNN: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "knn", abstract: "Nearest stored items of images (several in one request) or of a stored item.")
    @OptionGroup var connection: Connection
    @Option(help: "Neighbours to return.") var k = 10
    @Option(help: "A stored item's id instead of an image.") var item: UInt64?
    @Option(help: "Only items with this source tag.") var source: String?
    @Option(help: "Only items ingested after this time: ISO 8601 (2026-12-06T10:00:00Z) or seconds since the epoch.")
    var after: String?
    @Option(help: "Only items ingested before this time (as --after).") var before: String?
    @Flag(help: "Exact search over every item (else the approximate index).") var exact = false
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Also write a PNG: the query and its neighbours, with scores and sources (the first query's, with several).")
    var montage: String?
    @Argument(help: "Image files (unless --item): several are asked in one request.") var files: [String] = []

    func run() throws {
        let target: KNNQuery.Target
        if let item { target = .item(item) }
        else if files.count == 1 { target = .image(try readImage(files[0])) }
        else if !files.isEmpty { target = .images(try files.map(readImage)) }
        else { throw ValidationError("give image files or --item ID") }
        let client = try connection.client()
        let query = KNNQuery(target, k: k, source: source, exact: exact,
                             ingestedAfter: try after.map(secondsSinceEpoch), ingestedBefore: try before.map(secondsSinceEpoch))
        let reply = try client.call(.knn(query))
        let answers: [(name: String?, neighbours: [Protocol.Neighbour])]
        let (version, exactly, partial): (Int, Bool, (Int, Int)?)
        if target.isBatch {
            let result = try reply.result(as: KNNBatchResult.self)
            if json { return printJSON(result) }
            answers = zip(files, result.results).map { ($0, $1.neighbours) }
            (version, exactly) = (result.version, result.exact)
            partial = result.catalogItems < result.storeItems ? (result.catalogItems, result.storeItems) : nil
        } else {
            let result = try reply.result(as: KNNResult.self)
            if json { return printJSON(result) }
            answers = [(nil, result.neighbours)]
            (version, exactly) = (result.version, result.exact)
            partial = result.isPartial ? (result.catalogItems, result.storeItems) : nil
        }
        print("version \(version), \(exactly ? "exact" : "approximate") search")
        if let (searched, stored) = partial {
            print("partial: searched \(searched) of \(stored) stored items (the rest is being embedded)")
        }
        if let montage, let first = answers.first {
            try writeMontage(first.neighbours, client: client, to: montage)
        }
        for (name, neighbours) in answers {
            if let name { print("\n\(name)") }
            let infos = try client.call(.get(ids: neighbours.map(\.id), pixels: false)).result(as: GetResult.self).items
            print("rank  id            score    source        meta")
            for (rank, (neighbour, info)) in zip(neighbours, infos).enumerated() {
                print(String(format: "%4d  %-12llu  %7.4f  %-12@  %@", rank + 1, neighbour.id, neighbour.score,
                             (info?.source ?? "-") as NSString, (info?.meta ?? "") as NSString))
            }
        }
    }
}

extension KNN {
    /// The query (the image file, or the stored item) and its neighbours' stored images as one PNG.
    func writeMontage(_ neighbours: [Protocol.Neighbour], client: GLFDClient, to path: String) throws {
        let ids = (item.map { [$0] } ?? []) + neighbours.map(\.id)
        let (infos, frames) = try fetchPixels(ids, client: client)
        var tiles: [MontageTile] = []
        if item == nil, let file = files.first {
            let query = try ImageDecoder().decode(try readImage(file).bytes, to: .rgb)
            tiles.append(MontageTile(image: query, caption: ["query", (file as NSString).lastPathComponent]))
        } else if let info = infos.first {
            tiles.append(MontageTile(image: frames[0], caption: ["query", "item \(info.id)", info.source]))
        }
        let offset = item == nil ? 0 : 1
        for (rank, neighbour) in neighbours.enumerated() {
            let info = infos[offset + rank]
            tiles.append(MontageTile(image: frames[offset + rank],
                                     caption: ["#\(rank + 1) \(neighbour.id)", String(format: "%.4f", neighbour.score), info.source]))
        }
        try Data(try Montage.render(tiles).png()).write(to: URL(fileURLWithPath: path))
        FileHandle.standardError.write(Data("wrote \(path)\n".utf8))
    }
}

/// Stored items' metadata and canonical pixels, in the order of `ids` (get, at most 64 a
/// request); an item deleted meanwhile gets a grey square and "deleted".
func fetchPixels(_ ids: [UInt64], client: GLFDClient) throws -> (infos: [ItemInfo], images: [DecodedImage]) {
    var infos: [ItemInfo] = [], images: [DecodedImage] = []
    for start in stride(from: 0, to: ids.count, by: 64) {
        let chunk = Array(ids[start..<min(start + 64, ids.count)])
        let reply = try client.call(.get(ids: chunk, pixels: true))
        var frames = reply.payloads.makeIterator()   // one frame per item found, in order
        for (id, item) in zip(chunk, try reply.result(as: GetResult.self).items) {
            guard let info = item, let pixels = frames.next() else {
                infos.append(ItemInfo.deleted(id))
                images.append(DecodedImage(width: 1, height: 1, channels: 1, pixels: [128]))
                continue
            }
            infos.append(info)
            images.append(DecodedImage(width: info.storedSide, height: info.storedSide, channels: info.storedChannels, pixels: pixels))
        }
    }
    return (infos, images)
}

/// Stored items' metadata in the order of `ids` (get, at most 10,000 a request); an item deleted
/// meanwhile gets `ItemInfo.deleted`.
func fetchInfos(_ ids: [UInt64], client: GLFDClient) throws -> [ItemInfo] {
    try stride(from: 0, to: ids.count, by: 10_000).flatMap { start in
        let chunk = Array(ids[start..<min(start + 10_000, ids.count)])
        return zip(chunk, try client.result(.get(ids: chunk, pixels: false), as: GetResult.self).items).map { $1 ?? .deleted($0) }
    }
}

extension ItemInfo {
    /// What the pictures show for an item deleted since it was answered.
    static func deleted(_ id: UInt64) -> ItemInfo {
        ItemInfo(id: id, source: "deleted", meta: "", width: 0, height: 0, format: "", ingestedAt: 0, storedSide: 1, storedChannels: 1)
    }
}

/// A time as seconds since the epoch: ISO 8601 with a zone, or the number itself.
func secondsSinceEpoch(_ text: String) throws -> Double {
    if let seconds = Double(text), seconds.isFinite { return seconds }
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = ISO8601DateFormatter().date(from: text) ?? formatter.date(from: text) { return date.timeIntervalSince1970 }
    throw ValidationError("\(text): not a time (ISO 8601 such as 2026-12-06T10:00:00Z, or seconds since the epoch)")
}

struct Dedup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Near-duplicate groups among the stored items under the served version: a group per line, largest first.",
        discussion: """
            Two items are near-duplicates when their distance (1 - cosine) is at most --within times the \
            catalog's spacing (the median distance from an item to its 10th nearest); groups join such \
            pairs. glfd compares the whole catalog with itself (sgemm), not one knn per item.
            """)
    @OptionGroup var connection: Connection
    @Option(help: "Share of the catalog's spacing below which two items are duplicates.") var within = DuplicatesQuery.defaultWithin
    @Option(help: "Only items of this source tag.") var source: String?
    @Option(help: "Only items ingested after this time: ISO 8601 (2026-12-06T10:00:00Z) or seconds since the epoch.") var after: String?
    @Option(help: "Only items ingested before this time (as --after).") var before: String?
    @Option(name: .customLong("max-groups"), help: "Groups to list, largest first.") var maxGroups = DuplicatesQuery.defaultMaxGroups
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Also write a contact sheet per group (its images, ids and sources) as DIR/group-0001.png, ...")
    var png: String?

    func run() throws {
        let client = try connection.client()
        let query = DuplicatesQuery(within: within, source: source, maxGroups: maxGroups,
                                    ingestedAfter: try after.map(secondsSinceEpoch), ingestedBefore: try before.map(secondsSinceEpoch))
        let result = try client.result(.duplicates(query), as: DuplicatesResult.self)
        if let png {
            try FileManager.default.createDirectory(atPath: png, withIntermediateDirectories: true)
            for (number, group) in result.groups.enumerated() {
                let (infos, images) = try fetchPixels(Array(group.ids.prefix(60)), client: client)
                let tiles = zip(infos, images).map { MontageTile(image: $1, caption: ["\($0.id)", $0.source]) }
                let path = (png as NSString).appendingPathComponent(String(format: "group-%04d.png", number + 1))
                try Data(try Montage.render(tiles, scale: 3, perRow: 8).png()).write(to: URL(fileURLWithPath: path))
            }
            FileHandle.standardError.write(Data("wrote \(result.groups.count) contact sheets to \(png)\n".utf8))
        }
        if json { return printJSON(result) }
        let inGroups = result.groups.reduce(0) { $0 + $1.ids.count }
        print(String(format: "version %d: %d groups (%d items) among %d items compared (%d stored); duplicates within %.4f = %.2f × spacing %.4f",
                     result.version, result.groupsFound, inGroups, result.items, result.storeItems, result.maxDistance, result.within, result.spacing))
        if result.groups.count < result.groupsFound { print("listing the \(result.groups.count) largest") }
        for group in result.groups {
            print(String(format: "%5d  weakest %.4f  ", group.ids.count, group.weakestLink) + group.ids.map(String.init).joined(separator: " "))
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "What glfd is doing: store, training, model, catalog, memory, drift, replica, JetStream ingest.")
    @OptionGroup var connection: Connection
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let s = try connection.client().call(.status).result(as: StatusResult.self)
        if json { return printJSON(s) }
        let loss = s.training.loss.sorted { $0.key < $1.key }.map { term, value in
            String(format: "%@ %.4f", term, value) + (s.training.gradientShare[term].map { String(format: " (∇ %.0f%%)", $0 * 100) } ?? "")
        }.joined(separator: ", ")
        print("""
            uptime     \(Int(s.uptimeSeconds)) s\(s.role.map { ", \($0)" } ?? "")
            store      \(s.store.items) items (\(s.store.bytes >> 20) MiB), \(s.store.ingested) ingested; replay \(s.store.replayPolicy), \(s.store.replayMembers) members\(s.store.replayPolicy.hasSuffix("minred") ? " (\(s.store.replayEmbedded) seen by the model)" : ""); map \(s.store.mapUsedBytes >> 20)/\(s.store.mapSize >> 20) MiB
            training   \(s.training.method) step \(s.training.step), \(String(format: "%.1f", s.training.imagesPerSecond)) images/s, collapse \(String(format: "%.4f", s.training.collapse)), rolled back \(s.training.rolledBack)
            loss       \(loss.isEmpty ? "-" : loss)
            model      version \(s.model.version) (step \(s.model.step)) \(s.model.path ?? "")
            catalog    \(s.catalog.version == 0 ? "not built yet" : "version \(s.catalog.version), \(s.catalog.items) items")\(s.catalog.building.map { "; building version \($0)" } ?? "")\(s.catalog.nextBuildAt.map { String(format: "; next rebuild in %.0f s (index.rebuild_share)", max(0, $0 - Date().timeIntervalSince1970)) } ?? "")
            """)
        if let m = s.memory {
            func mib(_ bytes: Int) -> String { "\(bytes >> 20) MiB" }
            print("memory     resident \(mib(m.residentBytes)) (\(mib(m.residentFileBytes)) of files), heap \(mib(m.heapInUseBytes)) in use of \(mib(m.heapHeldBytes)) held; "
                  + "networks \(mib(m.networksBytes)), catalog \(mib(m.catalogBytes))"
                  + (m.catalogBuildingBytes > 0 ? " (+ \(mib(m.catalogBuildingBytes)) building)" : "") + ", replay \(mib(m.replayBytes))")
        }
        if let d = s.drift {
            let score = d.score.map { String(format: "score %.2f over %d new items", $0, d.arrivals) } ?? "no new items measured yet"
            print("drift      \(score) (1 = as close to the replay set as its members are to each other; version \(d.version))")
        }
        if let r = s.replica {
            let trainer = r.trainerVersion.map { "trainer at version \($0)" } ?? "trainer not reached yet"
            let installed = r.installedVersion.map { "version \($0) installed" } ?? "nothing installed yet"
            print("replica    of \(r.follow): \(trainer), \(installed), serving \(s.model.version)"
                  + (r.lastError.map { "; failing: \($0)" } ?? ""))
        }
        if let j = s.jetstream {
            let state = j.connected ? "consuming" : "paused (\(j.lastError ?? "connecting"))"
            let lag = j.pending.map { "\($0) pending" } ?? "lag unknown yet"
            print("jetstream  \(j.stream)/\(j.consumer) \(state), \(lag); \(j.stored) stored, \(j.duplicates) redelivered, \(j.rejected) rejected")
        }
    }
}

// MARK: watch, export

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Follow model versions as glfd publishes them (the last one first).")
    @OptionGroup var connection: Connection
    @Option(help: "glfd's announcement endpoint.") var announceEndpoint = "tcp://127.0.0.1:5556"
    @Option(help: "Stop after this many new announcements.") var count: Int?
    @Flag(help: "Also print drift alerts (new items far from the replay set).") var drift = false
    @Flag(help: "Print JSON lines.") var json = false

    func run() throws {
        let subscriber = try ZMQSocket(context: try ZMQContext(), type: .sub)
        try connection.curve?.apply(to: subscriber)
        try subscriber.subscribe(Array(GLFDProtocol.announcementTopic.utf8))
        if drift { try subscriber.subscribe(Array(GLFDProtocol.driftTopic.utf8)) }
        try subscriber.connect(announceEndpoint)
        // PUB does not replay: the latest one comes from a request, then the stream.
        if let last = try connection.client().call(.lastAnnouncement).result(as: LastAnnouncementResult.self).announcement {
            show(last)
        }
        var seen = 0
        while count.map({ seen < $0 }) ?? true {
            let message = try subscriber.receive()
            if message.first == Array(GLFDProtocol.driftTopic.utf8) {
                show(try DriftAlert.decode(message))
            } else {
                show(try Announcement.decode(message))
            }
            seen += 1
        }
    }

    func show(_ alert: DriftAlert) {
        if json {
            printJSONLine(alert)
        } else {
            let when = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: alert.at))
            print(String(format: "drift %@  score %.2f (alert at %.2f) over %d new items  version %d  %@",
                         alert.state.rawValue, alert.score, alert.alertScore, alert.arrivals, alert.version, when))
        }
        fflush(nil)
    }

    func show(_ a: Announcement) {
        if json {
            printJSONLine(a)
        } else {
            let when = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: a.publishedAt))
            print("version \(a.version)  step \(a.step)  \(when)  \(a.path)")
        }
        fflush(nil)  // all streams: a pipe reader sees each version as it comes
    }
}

/// One JSON object on one line, snake_case keys (`watch --json`).
func printJSONLine(_ value: some Encodable) {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try! encoder.encode(value), as: UTF8.self))
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the catalog's embeddings: DIR/embeddings.npy (float32, N × dim) and DIR/ids.npy (uint64, N).")
    @OptionGroup var connection: Connection
    @Option(help: "Output folder.") var out: String
    @Option(help: "Items per page.") var page = 4096

    func run() throws {
        let client = try connection.client()
        var after: UInt64 = 0, ids: [UInt64] = [], vectors: [Float] = []
        var version: Int?, dim = 0
        // The catalog's size now: items arriving meanwhile make the walk a little longer.
        let progress = ProgressLine("export", total: try client.result(.status, as: StatusResult.self).catalog.items, unit: "items")
        while true {
            let reply = try client.call(.export(after: after, limit: page))
            let result = try reply.result(as: ExportResult.self)
            if let version, version != result.version {
                // A version was published mid-walk: start again, so the file holds one version.
                progress.finish()
                FileHandle.standardError.write(Data("version \(version) → \(result.version) during export; starting over\n".utf8))
                (after, ids, vectors) = (0, [], [])
            }
            version = result.version
            dim = result.dim
            ids += result.ids
            vectors += VectorFrame.decode(reply.payloads.first ?? [], dimension: result.ids.count * result.dim) ?? []
            progress.update(done: ids.count)
            guard let next = result.nextAfter else { break }
            after = next
        }
        progress.finish()
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try writeNpy(descr: "<f4", shape: [ids.count, dim], bytes: vectors.withUnsafeBytes { Array($0) }, to: out + "/embeddings.npy")
        try writeNpy(descr: "<u8", shape: [ids.count], bytes: ids.map(\.littleEndian).withUnsafeBytes { Array($0) }, to: out + "/ids.npy")
        FileHandle.standardError.write(Data("\(ids.count) embeddings of version \(version ?? 0), dim \(dim), in \(out)\n".utf8))
    }
}

struct Map: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw a 2-D map of the catalog (a sample of it) under the served version: its embeddings on their two principal components, as points coloured by source (or by --labels), or as thumbnails.")
    @OptionGroup var connection: Connection
    @Option(help: "The PNG to write.") var out: String
    @Option(help: "Items in the map, spread evenly over the ids.") var sample = 2000
    @Option(help: "A file of \"<id> <label>\" lines: colour by these labels instead of the sources.") var labels: String?
    @Flag(help: "Draw each item's stored image (shrunk to 24 pixels) instead of a dot.") var thumbnails = false
    @Option(help: "pca (fast), or tsne (exact t-SNE, perplexity 30: N² a step, about a minute for 1,000 items).") var method = "pca"

    func run() throws {
        guard sample >= 2 else { throw ValidationError("--sample must be at least 2") }
        let client = try connection.client()
        // Pages of 64 from evenly spaced starting ids: a sample of a catalog of any size, one version.
        let newest = UInt64(try client.result(.status, as: StatusResult.self).store.ingested)
        let pages = max(1, sample / 64)
        var ids: [UInt64] = [], vectors: [Float] = [], version: Int?, dim = 0
        for page in 0..<pages {
            // A page can reach past the next start (ids deleted in between): never read an id twice.
            let after = newest * UInt64(page) / UInt64(pages)
            guard after >= (ids.last ?? 0) else { continue }
            let reply = try client.call(.export(after: after, limit: 64))
            let result = try reply.result(as: ExportResult.self)
            if let version, version != result.version { throw ClientError("a new version was published while the map was read; run it again") }
            version = result.version
            dim = result.dim
            ids += result.ids
            vectors += VectorFrame.decode(reply.payloads.first ?? [], dimension: result.ids.count * result.dim) ?? []
        }
        guard ids.count >= 2 else { throw ClientError("the catalog holds \(ids.count) items: nothing to map") }
        guard method == "pca" || method == "tsne" else { throw ValidationError("--method is pca or tsne, not \(method)") }
        let projected = method == "pca" ? PrincipalComponents.project(vectors, dimension: dim) : TSNE.embed(vectors, dimension: dim)
        var groupOf: [UInt64: String] = [:]
        if let labels {
            for line in try String(contentsOfFile: labels, encoding: .utf8).split(whereSeparator: \.isNewline) {
                let parts = line.split(maxSplits: 1, whereSeparator: \.isWhitespace)
                if parts.count == 2, let id = UInt64(parts[0]) { groupOf[id] = String(parts[1]) }
            }
        }
        var images: [DecodedImage]? = nil
        if thumbnails {
            let (infos, pictures) = try fetchPixels(ids, client: client)
            images = pictures.map { $0.resized(side: 24) }
            if labels == nil { for (id, info) in zip(ids, infos) { groupOf[id] = info.source } }
        } else if labels == nil {
            for (id, info) in zip(ids, try fetchInfos(ids, client: client)) { groupOf[id] = info.source }
        }
        let legend = Array(Set(ids.map { groupOf[$0] ?? "-" })).sorted()
        let index = Dictionary(uniqueKeysWithValues: legend.enumerated().map { ($1, $0) })
        let points = ids.indices.map { i in
            MapPoint(x: projected[i][0], y: projected[i][1], group: index[groupOf[ids[i]] ?? "-"]!, thumbnail: images?[i])
        }
        let title = "catalog of version \(version ?? 0): \(ids.count) items, " + (method == "pca" ? "on their two principal components" : "t-SNE")
        try Data(try CatalogMap.render(points, legend: legend, title: title).png()).write(to: URL(fileURLWithPath: out))
        print("wrote \(out): \(ids.count) items, \(legend.count) \(labels == nil ? "sources" : "labels")")
    }
}

struct Curves: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw the training's history (every published version: loss terms, collapse monitor, ADC gradient shares, images/s) against steps, as a PNG.")
    @OptionGroup var connection: Connection
    @Option(help: "The PNG to write.") var out: String
    @Flag(help: "Print the history as JSON lines instead.") var json = false

    func run() throws {
        let client = try connection.client()
        var history: [Announcement] = [], after = 0
        while true {
            let page = try client.result(.history(after: after, limit: 1000), as: HistoryResult.self)
            history += page.announcements
            guard let next = page.nextAfter else { break }
            after = next
        }
        if json { return history.forEach(printJSONLine) }
        // The initial version (step 0) was published before any training: no statistics to draw.
        history = history.filter { $0.step > 0 }
        guard !history.isEmpty else { throw ClientError("glfd has published no trained version yet") }
        func series(_ prefix: String, strip: Bool = true) -> [Series] {
            let names = Set(history.flatMap { $0.metrics.keys.filter { $0.hasPrefix(prefix) } }).sorted()
            return names.map { name in
                Series(name: strip ? String(name.dropFirst(prefix.count)) : name,
                       points: history.compactMap { a in a.metrics[name].map { (Double(a.step), $0) } })
            }
        }
        let panels = [Panel(title: "loss terms (unweighted)", series: series("loss.")),
                      Panel(title: "collapse monitor (std of the normalised projections)", series: series("collapse", strip: false)),
                      Panel(title: "ADC gradient share (of the method's)", series: series("gradient_share.")),
                      Panel(title: "training images/s", series: series("images_per_second", strip: false))]
            .filter { !$0.series.isEmpty }
        try Data(try LineChart.render(panels).png()).write(to: URL(fileURLWithPath: out))
        print("wrote \(out): \(history.count) versions, steps \(history.first!.step)–\(history.last!.step)")
    }
}

struct Snapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Have glfd write a consistent copy of its state (store, served model version, catalog) to DIR on its machine; glfd --restore DIR starts from it.")
    @OptionGroup var connection: Connection
    @Flag(help: "Print JSON.") var json = false
    @Argument(help: "A directory on glfd's machine, new or empty (relative paths are made absolute here).") var dir: String

    func run() throws {
        // The copy reads the whole store: give it time.
        let client = try GLFDClient(endpoint: connection.endpoint, timeoutMilliseconds: 3_600_000, curve: try connection.curve)
        let result = try client.result(.snapshot(dir: URL(fileURLWithPath: dir).path), as: SnapshotResult.self)
        if json { return printJSON(result) }
        print(String(format: "%@: %d items, model version %d (step %d), %.1f MiB in %.1f s", result.dir, result.items, result.version,
                     result.step, Double(result.bytes) / 1_048_576, result.seconds))
    }
}

/// NumPy's .npy format 1.0: magic, header dict padded to 64 bytes, raw little-endian data.
func writeNpy(descr: String, shape: [Int], bytes: [UInt8], to path: String) throws {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
    let unpadded = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var file: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
    file += withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { Array($0) }
    file += Array(header.utf8) + bytes
    guard FileManager.default.createFile(atPath: path, contents: Data(file)) else { throw ClientError("cannot write \(path)") }
}

// MARK: keygen

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub (public), Z85 text.",
        discussion: "For the server, point security.server_secret_key_file at NAME.key and give clients NAME.pub; for a client, add its NAME.pub line to the server's security.allowed_clients_file.")
    @Argument(help: "Path prefix of the two files.") var name: String

    func run() throws {
        let pair = try ZMQCurve.generateKeyPair()
        let secretPath = name + ".key", publicPath = name + ".pub"
        guard !FileManager.default.fileExists(atPath: secretPath) else { throw ValidationError("\(secretPath) exists; not overwriting a key") }
        guard FileManager.default.createFile(atPath: secretPath, contents: Data("# glfd CURVE secret key\n\(pair.secret)\n".utf8),
                                             attributes: [.posixPermissions: 0o600]),
              FileManager.default.createFile(atPath: publicPath, contents: Data("\(pair.public)\n".utf8)) else {
            throw ClientError("cannot write \(secretPath) / \(publicPath)")
        }
        print(pair.public)
    }
}

GLFCtl.main()
