// Replies: what the server sends back (after the request's envelope).
//
//   frame 0      "glfd/1"
//   frame 1      header: {"id": <the request's id>, "ok": true, "result": {...}}
//                     or {"id": <id>, "ok": false, "error": {"code": "...", "message": "...", "index": n}}
//   frames 2...  binary results (embeddings as float32 little-endian; pixels for get)
import Foundation

public struct Reply: Sendable {
    public var id: RequestID?
    public var outcome: Result<Data, ProtocolError>
    public var payloads: [[UInt8]]

    /// A success carrying `result` (any Encodable, sent as the JSON object under "result").
    public static func success(id: RequestID?, _ result: some Encodable, payloads: [[UInt8]] = []) -> Reply {
        Reply(id: id, outcome: .success(try! JSONCoding.encoder.encode(result)), payloads: payloads)
    }

    public static func failure(id: RequestID?, _ error: ProtocolError) -> Reply {
        Reply(id: id, outcome: .failure(error), payloads: [])
    }

    public func encode() -> [[UInt8]] {
        var header = Data("{".utf8)
        if let id { header += Data("\"id\":".utf8) + (try! JSONCoding.encoder.encode(id)) + Data(",".utf8) }
        switch outcome {
        case .success(let result):
            header += Data("\"ok\":true,\"result\":".utf8) + result
        case .failure(let error):
            header += Data("\"error\":".utf8) + (try! JSONCoding.encoder.encode(error)) + Data(",\"ok\":false".utf8)
        }
        header += Data("}".utf8)
        return [GLFDProtocol.versionFrame, Array(header)] + payloads
    }

    /// Decodes a reply body (clients). A malformed reply is a `ProtocolError` too.
    public static func decode(_ frames: [[UInt8]]) throws(ProtocolError) -> Reply {
        guard frames.count >= 2 else { throw ProtocolError(.badFrames, "a reply has at least 2 frames, got \(frames.count)") }
        guard frames[0] == GLFDProtocol.versionFrame else {
            throw ProtocolError(.unsupportedVersion, "reply frame 0 is \"\(String(decoding: frames[0].prefix(32), as: UTF8.self))\"")
        }
        struct Header: Decodable {
            var id: RequestID?
            var ok: Bool
            var error: ProtocolError?
        }
        let header: Header
        do {
            header = try JSONCoding.decoder.decode(Header.self, from: Data(frames[1]))
        } catch {
            throw ProtocolError(.badHeader, "reply header: \(JSONCoding.describe(error))")
        }
        let payloads = Array(frames.dropFirst(2))
        if header.ok {
            // The result object's bytes, cut out of the header for typed decoding by the caller.
            guard let object = try? JSONSerialization.jsonObject(with: Data(frames[1])) as? [String: Any],
                  let result = object["result"],
                  let data = try? JSONSerialization.data(withJSONObject: result, options: [.fragmentsAllowed]) else {
                throw ProtocolError(.badHeader, "reply has ok but no result object")
            }
            return Reply(id: header.id, outcome: .success(data), payloads: payloads)
        }
        return Reply(id: header.id,
                     outcome: .failure(header.error ?? ProtocolError(.internalError, "reply has neither ok nor error")),
                     payloads: payloads)
    }

    /// The result decoded as `T`, or the error the server sent.
    public func result<T: Decodable>(as type: T.Type) throws(ProtocolError) -> T {
        switch outcome {
        case .failure(let error):
            throw error
        case .success(let data):
            do {
                return try JSONCoding.decoder.decode(T.self, from: data)
            } catch {
                throw ProtocolError(.badHeader, "result: \(JSONCoding.describe(error))")
            }
        }
    }
}
