// One JSON configuration for every header: snake_case keys on the wire, sorted keys out (stable
// bytes for tests and diffs), and error descriptions a client can act on.
import Foundation

enum JSONCoding {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    /// "images[2].width: expected Int" rather than Foundation's full dump. With the bytes that
    /// failed, a value that is valid JSON but not of its field's type (32.5 for an integer) is
    /// told apart from bytes that are not a JSON object at all.
    static func describe(_ error: Error, in bytes: [UInt8]? = nil) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: ["."])
        }
        switch error as? DecodingError {
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): missing \(type)"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): missing"
        case .dataCorrupted(let context):
            if !context.codingPath.isEmpty { return "\(path(context.codingPath)): \(context.debugDescription)" }
            if let bytes, let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] {
                return misfitInteger(in: object) ?? context.debugDescription
            }
            return "not a JSON object"
        default:
            return "\(error)"
        }
    }

    /// Foundation's decoder reports a number that does not fit its integer field (32.5, -1 for an
    /// id) as invalid JSON, without a path. For a header that is a JSON object, this finds the
    /// field: "images[0].width: 32.5 is not an integer".
    static func misfitInteger(in header: [String: Any]) -> String? {
        func misfit(_ value: Any?, _ path: String, unsigned: Bool) -> String? {
            guard let number = value as? NSNumber else { return nil }
            let double = number.doubleValue
            let (low, high) = unsigned ? (0.0, 18_446_744_073_709_551_615.0) : (-9_223_372_036_854_775_808.0, 9_223_372_036_854_775_807.0)
            if double == double.rounded() && double >= low && double <= high { return nil }
            return "\(path): \(number) is not \(unsigned ? "an unsigned 64-bit integer" : "an integer")"
        }
        let descriptorFields = ["width", "height", "channels"]
        var descriptors: [(String, [String: Any])] = []
        if let image = header["image"] as? [String: Any] { descriptors.append(("image", image)) }
        for (i, image) in ((header["images"] as? [Any]) ?? []).enumerated() {
            if let image = image as? [String: Any] { descriptors.append(("images[\(i)]", image)) }
        }
        var checks: [String?] = []
        for key in ["k", "dim", "limit"] { checks.append(misfit(header[key], key, unsigned: false)) }
        for key in ["item", "after"] { checks.append(misfit(header[key], key, unsigned: true)) }
        for (i, id) in ((header["ids"] as? [Any]) ?? []).enumerated() { checks.append(misfit(id, "ids[\(i)]", unsigned: true)) }
        for (path, fields) in descriptors {
            for key in descriptorFields { checks.append(misfit(fields[key], "\(path).\(key)", unsigned: false)) }
        }
        checks.append(misfit(header["id"], "id", unsigned: false))
        return checks.lazy.compactMap { $0 }.first
    }
}
