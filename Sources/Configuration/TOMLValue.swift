// A value of the TOML subset glfd reads (see TOMLDocument.swift for the subset), and its rendering
// back as TOML text: `TOMLDocument(parsing:)` of a rendered value gives the same value.
public enum TOMLValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    /// 64-bit signed, as TOML specifies (Int is 64-bit on every platform glfd runs on).
    case integer(Int)
    /// Finite when read: the parser refuses inf and nan.
    case float(Double)
    case boolean(Bool)
    /// Of scalars only (arrays of arrays are refused); element types may be mixed, as in TOML 1.0.
    case array([TOMLValue])

    /// "a string", "an integer", ...: for error messages.
    public var kindDescription: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .boolean: "a boolean"
        case .array: "an array"
        }
    }

    /// The value as TOML source text: strings as basic strings with escapes, floats always with a
    /// fraction or an exponent (so they read back as floats), arrays on one line.
    public var tomlText: String {
        switch self {
        case .string(let string): Self.quoted(string)
        case .integer(let integer): String(integer)
        case .float(let float): Self.floatText(float)
        case .boolean(let boolean): boolean ? "true" : "false"
        case .array(let elements): "[" + elements.map(\.tomlText).joined(separator: ", ") + "]"
        }
    }

    public var description: String { tomlText }

    static func quoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func floatText(_ float: Double) -> String {
        // TOML's spelling; the reader refuses these, and no setting accepts them.
        if float.isNaN { return "nan" }
        if float.isInfinite { return float < 0 ? "-inf" : "inf" }
        // Swift prints the shortest text that reads back exactly: "0.06", "0.0005", "1e-05", "1e+20".
        let text = "\(float)"
        return text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? text : text + ".0"
    }
}
