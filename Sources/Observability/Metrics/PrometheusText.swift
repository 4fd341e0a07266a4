// The small rules of the Prometheus text format 0.0.4: names, escaping, numbers.
//   metric names  [a-zA-Z_:][a-zA-Z0-9_:]*      label names  [a-zA-Z_][a-zA-Z0-9_]*
//   HELP text     escapes \ and newline          label values escape \, " and newline
//   numbers       Go's ParseFloat syntax: integers without ".0", +Inf, -Inf, NaN
enum PrometheusText {
    /// The content type of the exposition, as scrapers expect it.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    static func metricName(_ name: String) -> String { sanitized(name, allowColon: true) }
    static func labelName(_ name: String) -> String { sanitized(name, allowColon: false) }

    private static func sanitized(_ name: String, allowColon: Bool) -> String {
        var result = ""
        for scalar in name.unicodeScalars {
            let ok = (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9")
                || scalar == "_" || (allowColon && scalar == ":")
            result.unicodeScalars.append(ok ? scalar : "_")
        }
        if let first = result.unicodeScalars.first, first >= "0" && first <= "9" { result = "_" + result }
        return result.isEmpty ? "_" : result
    }

    static func escapeHelp(_ text: String) -> String {
        guard text.contains(where: { $0 == "\\" || $0 == "\n" }) else { return text }
        var result = ""
        for character in text {
            switch character {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            default: result.append(character)
            }
        }
        return result
    }

    static func escapeLabelValue(_ text: String) -> String {
        guard text.contains(where: { $0 == "\\" || $0 == "\n" || $0 == "\"" }) else { return text }
        var result = ""
        for character in text {
            switch character {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\"": result += "\\\""
            default: result.append(character)
            }
        }
        return result
    }

    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value == .infinity { return "+Inf" }
        if value == -.infinity { return "-Inf" }
        if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
