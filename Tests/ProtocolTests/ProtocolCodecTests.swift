// The protocol codec as an executable spec: every request and reply round-trips; every malformed
// request gets the documented error code (and its id back when the header was readable); a seeded
// fuzzer throws mutated and random frames at the decoder, which must answer each with a value or a
// typed error.
import Foundation
import Protocol
import Testing

let jpegLike: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + Array(repeating: 7, count: 60)

let everyRequest: [Request] = [
    Request(id: .number(1), .ingest([ImagePayload(jpegLike, ImageDescriptor(source: "cam-3", meta: "{\"label\":\"cat\"}")),
                                     ImagePayload([1, 2, 3, 4, 5, 6], ImageDescriptor(format: .raw, width: 2, height: 1, channels: 3))])),
    Request(id: .string("e-7"), .embed([ImagePayload(jpegLike)])),
    Request(id: .number(3), .knn(KNNQuery(.image(ImagePayload(jpegLike, ImageDescriptor(format: .jpeg))), k: 5, source: "cam-3"))),
    Request(id: .number(4), .knn(KNNQuery(.item(42), k: 1000, exact: true))),
    Request(id: .number(5), .knn(KNNQuery(.vector([0.5, -1, 3.25e-8, 0]), k: 3))),
    Request(id: .number(6), .get(ids: [1, 2, 3], pixels: true)),
    Request(.delete(ids: [9])),
    Request(id: .number(8), .status),
    Request(id: .number(9), .model),
    Request(id: .number(10), .lastAnnouncement),
    Request(id: .number(11), .export(after: 1024, limit: 512)),
    Request(id: .number(12), .modelFiles(version: 7)),
    Request(id: .number(13), .modelFile(version: 7, name: "model.safetensors", offset: 4 << 20)),
    Request(id: .number(16), .knn(KNNQuery(.item(42), k: 5, source: "cam", ingestedAfter: 1.7e9, ingestedBefore: 1.8e9))),
    Request(id: .number(17), .knn(KNNQuery(.vectors([[1, 2, 3], [4, 5, 6]]), k: 3))),
    Request(id: .number(18), .knn(KNNQuery(.images([ImagePayload(jpegLike), ImagePayload(jpegLike)]), k: 3, exact: true))),
    Request(id: .number(19), .snapshot(dir: "/var/backups/glfd/one")),
    Request(id: .number(20), .history(after: 12, limit: 50)),
    Request(id: .number(14), .duplicates(DuplicatesQuery(within: 0.25, source: "cam", maxGroups: 50))),
    Request(id: .number(15), .duplicates(DuplicatesQuery())),
    Request(id: .number(21), .duplicates(DuplicatesQuery(within: 0.1, ingestedAfter: 1.7e9, ingestedBefore: 1.8e9))),
]

func decodeError(_ frames: [[UInt8]]) -> RequestDecodingFailure? {
    if case .failure(let failure) = Request.decode(frames) { return failure }
    return nil
}

func header(_ json: String, _ payloads: [[UInt8]] = []) -> [[UInt8]] {
    [Array("glfd/1".utf8), Array(json.utf8)] + payloads
}

@Suite struct ProtocolCodecTests {
    @Test(arguments: everyRequest)
    func everyRequestRoundTrips(_ request: Request) throws {
        let frames = request.encode()
        #expect(frames[0] == Array("glfd/1".utf8))
        #expect(try Request.decode(frames).get() == request)
    }

    @Test func everyReplyRoundTrips() throws {
        let announcement = Announcement(version: 3, path: "state/models/000003", step: 1500, publishedAt: 1.8e9,
                                        metrics: ["loss": 1.25, "collapse": 0.06])
        let replies: [(Reply, (Reply) throws -> Bool)] = [
            (.success(id: .number(1), IngestResult(ids: [7, 8])), { try $0.result(as: IngestResult.self) == IngestResult(ids: [7, 8]) }),
            (.success(id: .string("x"), EmbedResult(version: 3, dim: 4), payloads: [VectorFrame.encode([1, 2, 3, 4])]),
             { try $0.result(as: EmbedResult.self).dim == 4 && VectorFrame.decode($0.payloads[0], dimension: 4) == [1, 2, 3, 4] }),
            (.success(id: nil, KNNResult(version: 3, exact: false, neighbours: [Neighbour(id: 5, score: 0.99)])),
             { try $0.result(as: KNNResult.self).neighbours == [Neighbour(id: 5, score: 0.99)] }),
            (.success(id: .number(2), GetResult(items: [nil, ItemInfo(id: 2, source: "s", meta: "m", width: 640, height: 480, format: "jpeg", ingestedAt: 1.7e9, storedSide: 32, storedChannels: 3)])),
             { try $0.result(as: GetResult.self).items[1]?.width == 640 }),
            (.success(id: .number(2), LastAnnouncementResult(announcement: announcement)),
             { try $0.result(as: LastAnnouncementResult.self).announcement == announcement }),
            (.success(id: .number(3), ModelFilesResult(version: 7, step: 3500, publishedAt: 1.8e9,
                                                       files: [.init(name: "config.json", bytes: 391, crc32: 0xDEAD_BEEF)])),
             { try $0.result(as: ModelFilesResult.self).files == [.init(name: "config.json", bytes: 391, crc32: 0xDEAD_BEEF)] }),
            (.success(id: .number(4), ModelFileChunkResult(version: 7, name: "config.json", offset: 0, bytes: 3, nextOffset: nil),
                      payloads: [[1, 2, 3]]),
             { try $0.result(as: ModelFileChunkResult.self).nextOffset == nil && $0.payloads == [[1, 2, 3]] }),
            (.success(id: .number(6), KNNBatchResult(version: 3, exact: false, results: [.init(neighbours: [Neighbour(id: 5, score: 0.9)]), .init(neighbours: [])],
                                                     catalogItems: 10, storeItems: 10)),
             { try $0.result(as: KNNBatchResult.self).results.map(\.neighbours.count) == [1, 0] }),
            (.success(id: .number(7), SnapshotResult(dir: "/b", version: 3, step: 500, items: 10, bytes: 4096, seconds: 0.5)),
             { try $0.result(as: SnapshotResult.self) == SnapshotResult(dir: "/b", version: 3, step: 500, items: 10, bytes: 4096, seconds: 0.5) }),
            (.success(id: .number(5), DuplicatesResult(version: 4, items: 900, storeItems: 1000, spacing: 0.2, within: 0.3, maxDistance: 0.06,
                                                       groupsFound: 2, groups: [.init(ids: [3, 9, 12], weakestLink: 0.97)])),
             { try $0.result(as: DuplicatesResult.self).groups == [.init(ids: [3, 9, 12], weakestLink: 0.97)] }),
            (.failure(id: .number(9), ProtocolError(.badImage, "truncated JPEG", index: 2)),
             { reply in
                 do { _ = try reply.result(as: IngestResult.self); return false }
                 catch { return (error as? ProtocolError) == ProtocolError(.badImage, "truncated JPEG", index: 2) }
             }),
        ]
        for (reply, check) in replies {
            let decoded = try Reply.decode(reply.encode())
            #expect(decoded.id == reply.id)
            #expect(try check(decoded), "\(reply.encode().map { String(decoding: $0, as: UTF8.self) })")
        }
        #expect(try Announcement.decode(announcement.encode()) == announcement)
        // Drift alerts share the PUB socket under their own topic: neither decodes as the other.
        let alert = DriftAlert(state: .rising, version: 3, score: 1.74, alertScore: 1.5, arrivals: 256, checkedThrough: 51_200, at: 1.8e9)
        #expect(alert.encode().first == Array("drift".utf8))
        #expect(try DriftAlert.decode(alert.encode()) == alert)
        #expect(String(decoding: alert.encode()[2], as: UTF8.self).contains("\"alert_score\":1.5"))
        #expect(throws: ProtocolError.self) { try Announcement.decode(alert.encode()) }
        #expect(throws: ProtocolError.self) { try DriftAlert.decode(announcement.encode()) }
    }

    @Test func theEnvelopeOfDealerAndReqClientsIsKeptForTheReply() {
        let dealer = Envelope.split([[0, 1, 2], Array("glfd/1".utf8), Array("{}".utf8)])!
        #expect(dealer.envelope.frames == [[0, 1, 2]] && dealer.body.count == 2)
        let req = Envelope.split([[9], [], Array("glfd/1".utf8), Array("{}".utf8)])!
        #expect(req.envelope.frames == [[9], []] && req.body.count == 2)
        #expect(req.envelope.wrap([[1]]) == [[9], [], [1]])
        #expect(Envelope.split([]) == nil)
    }

    @Test func malformedRequestsGetTheDocumentedErrors() {
        let cases: [([[UInt8]], ErrorCode)] = [
            ([], .badFrames),
            ([Array("glfd/1".utf8)], .badFrames),
            ([Array("glfd/2".utf8), Array("{}".utf8)], .unsupportedVersion),
            ([Array("GET / HTTP/1.1".utf8), []], .unsupportedVersion),
            ([Array("HTTP/1.1 GET /".utf8)], .unsupportedVersion),
            (header("not json"), .badHeader),
            (header("[1, 2]"), .badHeader),
            (header("{\"id\": 1}"), .badHeader),
            (header("{\"cmd\": 7}"), .badHeader),
            (header("{\"cmd\": \"fly\"}"), .unknownCommand),
            (header("{\"cmd\": \"ingest\"}"), .badHeader),
            (header("{\"cmd\": \"ingest\", \"images\": []}"), .badHeader),
            (header("{\"cmd\": \"ingest\", \"images\": [{}]}"), .badFrames),
            (header("{\"cmd\": \"ingest\", \"images\": [{}]}", [jpegLike, jpegLike]), .badFrames),
            (header("{\"cmd\": \"ingest\", \"images\": [{}]}", [[]]), .badImage),
            (header("{\"cmd\": \"ingest\", \"images\": [{\"width\": \"wide\"}]}", [jpegLike]), .badHeader),
            (header("{\"cmd\": \"ingest\", \"images\": [{\"format\": \"gif\"}]}", [jpegLike]), .badHeader),
            (header("{\"cmd\": \"ingest\", \"images\": [{\"format\": \"raw\", \"width\": 2, \"height\": 2, \"channels\": 3}]}", [[1, 2, 3]]), .badImage),
            (header("{\"cmd\": \"ingest\", \"images\": [{\"format\": \"raw\", \"width\": 2, \"height\": 2}]}", [[1, 2, 3, 4]]), .badHeader),
            (header("{\"cmd\": \"ingest\", \"images\": [{\"format\": \"raw\", \"width\": 4611686018427387904, \"height\": 4, \"channels\": 3}]}", [[1]]), .badImage),
            (header("{\"cmd\": \"ingest\", \"images\": [{\"source\": \"\(String(repeating: "s", count: 300))\"}]}", [jpegLike]), .tooLarge),
            (header("{\"cmd\": \"ingest\", \"images\": [\(Array(repeating: "{}", count: 257).joined(separator: ","))]}",
                    Array(repeating: jpegLike, count: 257)), .tooLarge),
            (header("{\"cmd\": \"ingest\", \"images\": [{}]}", [[UInt8](repeating: 1, count: (16 << 20) + 1)]), .tooLarge),
            (header("{\"cmd\": \"status\", \"pad\": \"\(String(repeating: "x", count: (1 << 20) + 1))\"}"), .tooLarge),
            (header("{\"cmd\": \"status\"}", [[1]]), .badFrames),
            (header("{\"cmd\": \"model_files\"}"), .badHeader),
            (header("{\"cmd\": \"knn\", \"by\": \"vectors\", \"dim\": 1}", [[0, 0, 128, 63]]), .badHeader),
            (header("{\"cmd\": \"knn\", \"by\": \"vectors\", \"dim\": 1, \"count\": 2}", [[0, 0, 128, 63]]), .badFrames),
            (header("{\"cmd\": \"knn\", \"by\": \"vectors\", \"dim\": 1, \"count\": 257}", [[]]), .tooLarge),
            (header("{\"cmd\": \"knn\", \"by\": \"images\"}", [jpegLike]), .badHeader),
            (header("{\"cmd\": \"snapshot\"}"), .badHeader),
            (header("{\"cmd\": \"duplicates\", \"within\": 0}"), .badHeader),
            (header("{\"cmd\": \"duplicates\", \"within\": 2.5}"), .badHeader),
            (header("{\"cmd\": \"duplicates\", \"max_groups\": 0}"), .badHeader),
            (header("{\"cmd\": \"duplicates\", \"max_groups\": 10001}"), .tooLarge),
            (header("{\"cmd\": \"duplicates\"}", [[1]]), .badFrames),
            (header("{\"cmd\": \"model_files\", \"version\": 0}"), .badHeader),
            (header("{\"cmd\": \"model_file\", \"version\": 2}"), .badHeader),
            (header("{\"cmd\": \"model_file\", \"version\": 2, \"name\": \"config.json\", \"offset\": -1}"), .badHeader),
            (header("{\"cmd\": \"model_files\", \"version\": 2}", [[1]]), .badFrames),
            (header("{\"cmd\": \"knn\", \"k\": 0}", [jpegLike]), .badHeader),
            (header("{\"cmd\": \"knn\", \"k\": 100000}", [jpegLike]), .tooLarge),
            (header("{\"cmd\": \"knn\", \"by\": \"colour\"}", [jpegLike]), .badHeader),
            (header("{\"cmd\": \"knn\", \"by\": \"item\"}"), .badHeader),
            (header("{\"cmd\": \"knn\", \"by\": \"vector\", \"dim\": 4}", [[0, 0, 128, 63]]), .badFrames),
            (header("{\"cmd\": \"knn\", \"by\": \"vector\", \"dim\": 1}", [[0, 0, 192, 127]]), .badHeader),
            (header("{\"cmd\": \"knn\", \"by\": \"vector\"}", [[0, 0, 128, 63]]), .badHeader),
            (header("{\"cmd\": \"knn\", \"by\": \"vector\", \"dim\": 0}", [[]]), .badHeader),
            (header("{\"cmd\": \"knn\", \"by\": \"vector\", \"dim\": 65537}", [[UInt8](repeating: 0, count: 65537 * 4)]), .tooLarge),
            (header("{\"cmd\": \"get\"}"), .badHeader),
            (header("{\"cmd\": \"export\", \"limit\": 0}"), .badHeader),
            (header("{\"cmd\": \"export\", \"limit\": 20000}"), .tooLarge),
            (header("{\"cmd\": \"get\", \"ids\": [-1]}"), .badHeader),
            (header("{\"cmd\": \"delete\", \"ids\": [\(Array(repeating: "1", count: 10_001).joined(separator: ","))]}"), .tooLarge),
        ]
        for (frames, code) in cases {
            let failure = decodeError(frames)
            #expect(failure?.error.code == code,
                    "\(frames.prefix(2).map { String(decoding: $0.prefix(120), as: UTF8.self) }) → \(String(describing: failure?.error))")
            #expect(failure?.error.message.isEmpty == false)
        }
    }

    @Test func theRequestIDComesBackWhenTheHeaderCouldBeRead() {
        #expect(decodeError(header("{\"id\": 77, \"cmd\": \"fly\"}"))?.id == .number(77))
        #expect(decodeError(header("{\"id\": \"abc\", \"cmd\": \"ingest\", \"images\": 3}"))?.id == .string("abc"))
        #expect(decodeError(header("{\"id\": 5, \"cmd\": \"ingest\", \"images\": [{}]}", [[]]))?.error.index == 0)
        #expect(decodeError(header("{\"id\": 5"))?.id == nil)
        // Whatever else is wrong: another version frame, a header over its limit, a request over its limit.
        #expect(decodeError([Array("glfd/2".utf8), Array("{\"id\": 8, \"cmd\": \"status\"}".utf8)])?.id == .number(8))
        let padded = "{\"id\": 9, \"cmd\": \"status\", \"pad\": \"\(String(repeating: "x", count: (1 << 20) + 1))\"}"
        #expect(decodeError(header(padded))?.id == .number(9))
        let huge = header("{\"id\": 10, \"cmd\": \"ingest\", \"images\": [{}, {}, {}, {}, {}]}", Array(repeating: [UInt8](repeating: 1, count: 14 << 20), count: 5))
        #expect(decodeError(huge)?.error.code == .tooLarge)
        #expect(decodeError(huge)?.id == .number(10))
        // Past what is worth parsing for an id alone (4 MiB), none.
        let enormous = "{\"id\": 11, \"cmd\": \"status\", \"pad\": \"\(String(repeating: "x", count: 5 << 20))\"}"
        #expect(decodeError(header(enormous))?.id == nil)
    }

    /// Each limit of PROTOCOL.md §6 can be reached: at its edge the request decodes.
    @Test func everyLimitIsReachable() throws {
        // 10,000 ids of 20 digits in one header.
        let ids = Array(repeating: UInt64.max - 1, count: 10_000)
        #expect(try Request.decode(Request(id: .number(1), .get(ids: ids, pixels: false)).encode()).get().command == .get(ids: ids, pixels: false))
        // A meta of 64 KiB that JSON escapes byte by byte (\u0001: 6 bytes each), beside a source of 256 bytes.
        let meta = String(repeating: "\u{1}", count: 64 << 10), source = String(repeating: "s", count: 256)
        let ingest = Request(id: .number(2), .ingest([ImagePayload(jpegLike, ImageDescriptor(source: source, meta: meta))]))
        #expect(ingest.encode()[1].count > 6 * (64 << 10))
        #expect(try Request.decode(ingest.encode()).get() == ingest)
        // dim at its limit, k at its limit, 256 images.
        let vector = Request(.knn(KNNQuery(.vector([Float](repeating: 0.5, count: 65_536)), k: 1000)))
        #expect(try Request.decode(vector.encode()).get() == vector)
        let many = Request(.embed(Array(repeating: ImagePayload(jpegLike), count: 256)))
        #expect(try Request.decode(many.encode()).get() == many)
    }

    @Test func aValueOfTheWrongTypeIsNamedNotCalledGarbage() {
        let failure = decodeError(header("{\"cmd\": \"ingest\", \"images\": [{\"format\": \"raw\", \"width\": 32.5, \"height\": 1, \"channels\": 1}]}", [[1]]))
        #expect(failure?.error.code == .badHeader)
        #expect(failure?.error.message.contains("images[0].width: 32.5 is not an integer") == true, "\(String(describing: failure))")
        #expect(decodeError(header("{\"cmd\": \"get\", \"ids\": [3, -1]}"))?.error.message.contains("ids[1]") == true)
        #expect(decodeError(header("{nope"))?.error.message.contains("not a JSON object") == true)
    }

    /// Fields the spec types "T|null" are sent as null, never left out.
    @Test func nullableResultFieldsAreSentAsNull() throws {
        func json(_ value: some Encodable) throws -> [String: Any] {
            let reply = Reply.success(id: nil, value).encode()
            let object = try JSONSerialization.jsonObject(with: Data(reply[1])) as! [String: Any]
            return object["result"] as! [String: Any]
        }
        #expect(try json(ExportResult(version: 1, dim: 4, ids: [], nextAfter: nil))["next_after"] is NSNull)
        #expect(try json(ModelResult(version: 0, path: nil, step: 0, publishedAt: nil))["path"] is NSNull)
        #expect(try json(ModelResult(version: 0, path: nil, step: 0, publishedAt: nil))["published_at"] is NSNull)
        #expect(try json(LastAnnouncementResult(announcement: nil))["announcement"] is NSNull)
        #expect(try json(StatusResult.Catalog(version: 0, items: 0, building: nil))["building"] is NSNull)
        #expect(try json(ExportResult(version: 1, dim: 4, ids: [3], nextAfter: 3))["next_after"] as? Int == 3)
    }

    @Test func unknownFieldsAreIgnored() throws {
        let request = try Request.decode(header("{\"cmd\": \"status\", \"id\": 1, \"trace\": {\"span\": [1, 2]}, \"future\": true}")).get()
        #expect(request == Request(id: .number(1), .status))
    }

    /// 30,000 seeded inputs: valid requests with bytes flipped, frames dropped, duplicated or
    /// truncated, and random frames. Every one decodes to a request (which then round-trips) or to a
    /// typed error with a message; none traps.
    @Test func fuzzedInputsAlwaysGetAnAnswer() throws {
        var rng = SplitMix(seed: 2026)
        var decoded = 0, refused = 0
        let seeds = everyRequest.map { $0.encode() }
        for _ in 0..<30_000 {
            var frames = seeds[Int(rng.next() % UInt64(seeds.count))]
            switch rng.next() % 6 {
            case 0:  // flip bytes in a frame
                let f = Int(rng.next() % UInt64(frames.count))
                if !frames[f].isEmpty {
                    for _ in 0...(rng.next() % 4) {
                        let i = Int(rng.next() % UInt64(frames[f].count))
                        frames[f][i] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                    }
                }
            case 1:  // truncate a frame
                let f = Int(rng.next() % UInt64(frames.count))
                frames[f] = Array(frames[f].prefix(Int(rng.next() % UInt64(frames[f].count + 1))))
            case 2:  // drop or duplicate a frame
                let f = Int(rng.next() % UInt64(frames.count))
                if rng.next() % 2 == 0 { frames.remove(at: f) } else { frames.insert(frames[f], at: f) }
            case 3:  // replace the header by random printable bytes around JSON punctuation
                let alphabet = Array("{}[]\":,0123456789-.eE truefalsnul\\cmdidimagesk".utf8)
                frames[1] = (0..<Int(rng.next() % 80)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            case 4:  // random frames
                frames = (0..<Int(rng.next() % 5)).map { _ in (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
            default:  // splice a field into the header
                let fields = ["\"k\":-3", "\"dim\":1e99", "\"ids\":[1e30]", "\"by\":\"vector\"", "\"images\":[{\"format\":\"raw\",\"width\":-1}]", "\"cmd\":\"knn\""]
                var text = String(decoding: frames[1], as: UTF8.self)
                if text.hasPrefix("{") { text.insert(contentsOf: fields[Int(rng.next() % UInt64(fields.count))] + ",", at: text.index(after: text.startIndex)) }
                frames[1] = Array(text.utf8)
            }
            switch Request.decode(frames) {
            case .success(let request):
                decoded += 1
                #expect(try Request.decode(request.encode()).get() == request)
            case .failure(let failure):
                refused += 1
                #expect(!failure.error.message.isEmpty)
            }
        }
        #expect(decoded > 1000 && refused > 10_000, "decoded \(decoded), refused \(refused)")
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Request: CustomTestStringConvertible {
    public var testDescription: String { command.name }
}
