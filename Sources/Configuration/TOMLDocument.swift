// A reader for the subset of TOML 1.0 that glfd's configuration needs, written here so the daemon
// takes no TOML dependency. It reads a document into a flat map from dotted key path
// ("server.request_endpoint") to a typed value and the line and column of its key.
//
// Read:     comments (#) on their own line or after a value; blank lines; [table] and [table.sub]
//           headers; key = value with bare keys (A-Za-z0-9_-) and dotted keys (a.b = 1), spaces
//           allowed around dots; basic strings "..." with the escapes \" \\ \n \t \r \b \f
//           \uXXXX \UXXXXXXXX; literal strings '...'; decimal integers with an optional sign and
//           underscores between digits; floats (1.5, -0.25, 1e-3, 6.02E+23, 1_000.5); true and
//           false; arrays of these scalars, on one line or many, with comments between elements
//           and an optional trailing comma. LF and CRLF line ends.
// Refused with an error naming the line, the column and the construct: inline tables {...},
//           arrays of tables [[...]], multi-line strings """...""" and '''...''', quoted keys,
//           dates and times, hexadecimal, octal and binary integers, inf and nan (no setting
//           takes a non-finite number), arrays of arrays.
// As in TOML: a key defined twice, a table defined twice (by headers, or by a header and by
//           dotted keys), and a key used both as a value and as a table are errors; leading zeros
//           (012), doubled or dangling underscores (1__0, 1_) and control characters are errors.
public struct TOMLDocument: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var value: TOMLValue
        /// Where the key was written (1-based; columns count Unicode scalars).
        public var line: Int
        public var column: Int

        public init(value: TOMLValue, line: Int, column: Int) {
            self.value = value
            self.line = line
            self.column = column
        }
    }

    /// Every value by its full dotted key path.
    public private(set) var entries: [String: Entry] = [:]
    /// The key paths of `entries` in the order they appear in the document.
    public private(set) var keys: [String] = []
    /// The tables named by a [header], by dotted path, with the header's line.
    public private(set) var tables: [String: Int] = [:]

    public subscript(key: String) -> TOMLValue? { entries[key]?.value }

    public init(parsing text: String) throws(TOMLError) {
        var parser = TOMLParser(text)
        try parser.parseDocument(into: &self)
    }

    /// One value on its own, as in `GLFD_TRAINING_BATCH=128` or `--set training.batch=128`:
    /// optional surrounding spaces, no comment.
    public static func parseValue(_ text: String) throws(TOMLError) -> TOMLValue {
        var parser = TOMLParser(text)
        parser.skipSpaces()
        let value = try parser.parseValue()
        parser.skipSpaces()
        if !parser.atEnd { throw parser.error("unexpected text after the value") }
        return value
    }

    // Where each path stands, so that redefinitions are caught the way TOML defines them.
    enum Node {
        case value(line: Int)
        case headerTable(line: Int)   // defined by its own [header]
        case implicitTable            // created as the parent of a [header], may be defined later
        case dottedTable(line: Int)   // created by a dotted key
    }

    mutating func addValue(_ value: TOMLValue, at path: String, line: Int, column: Int) {
        entries[path] = Entry(value: value, line: line, column: column)
        keys.append(path)
    }

    mutating func addTable(_ path: String, line: Int) {
        tables[path] = line
    }
}

struct TOMLParser {
    let scalars: [Unicode.Scalar]
    var position = 0
    var line = 1
    var lineStart = 0
    var nodes: [String: TOMLDocument.Node] = [:]
    var currentTable: [String] = []

    init(_ text: String) {
        scalars = Array(text.unicodeScalars)
        if scalars.first == "\u{FEFF}" {  // a byte order mark is not part of the first line
            position = 1
            lineStart = 1
        }
    }

    var atEnd: Bool { position >= scalars.count }
    var peek: Unicode.Scalar? { atEnd ? nil : scalars[position] }
    func peek(_ offset: Int) -> Unicode.Scalar? {
        position + offset < scalars.count ? scalars[position + offset] : nil
    }
    var column: Int { position - lineStart + 1 }

    func error(_ message: String) -> TOMLError { TOMLError(line: line, column: column, message) }
    func error(_ message: String, line: Int, column: Int) -> TOMLError { TOMLError(line: line, column: column, message) }

    static let subsetNote = "(glfd reads a subset of TOML; see systemd/glfd.toml)"

    // MARK: Document

    mutating func parseDocument(into document: inout TOMLDocument) throws(TOMLError) {
        while true {
            skipSpaces()
            guard let scalar = peek else { return }
            switch scalar {
            case "#":
                try skipComment()
                try expectLineEnd()
            case "\n", "\r":
                try expectLineEnd()
            case "[":
                try parseHeader(into: &document)
            default:
                try parseKeyValue(into: &document)
            }
        }
    }

    mutating func parseHeader(into document: inout TOMLDocument) throws(TOMLError) {
        let headerLine = line, headerColumn = column
        position += 1  // [
        if peek == "[" {
            throw error("arrays of tables ([[...]]) are not supported \(Self.subsetNote)", line: headerLine, column: headerColumn)
        }
        skipSpaces()
        let path = try parseKey()
        skipSpaces()
        guard peek == "]" else {
            throw error("expected ']' to close the table header")
        }
        position += 1
        try finishLine(after: "the table header")

        let name = path.joined(separator: ".")
        for depth in 1..<path.count {
            let prefix = path[..<depth].joined(separator: ".")
            switch nodes[prefix] {
            case nil: nodes[prefix] = .implicitTable
            case .value(let line)?:
                throw error("'\(prefix)' is a value (line \(line)), not a table", line: headerLine, column: headerColumn)
            default: break
            }
        }
        switch nodes[name] {
        case nil, .implicitTable?:
            nodes[name] = .headerTable(line: headerLine)
        case .headerTable(let line)?:
            throw error("table [\(name)] is defined twice (first at line \(line))", line: headerLine, column: headerColumn)
        case .dottedTable(let line)?:
            throw error("table [\(name)] was already defined by dotted keys at line \(line)", line: headerLine, column: headerColumn)
        case .value(let line)?:
            throw error("'\(name)' is a value (line \(line)), not a table", line: headerLine, column: headerColumn)
        }
        currentTable = path
        document.addTable(name, line: headerLine)
    }

    mutating func parseKeyValue(into document: inout TOMLDocument) throws(TOMLError) {
        let keyLine = line, keyColumn = column
        let key = try parseKey()
        skipSpaces()
        guard peek == "=" else {
            throw error("expected '=' after the key '\(key.joined(separator: "."))'")
        }
        position += 1
        skipSpaces()
        let value = try parseValue()
        try finishLine(after: "the value")

        let path = currentTable + key
        for depth in (currentTable.count + 1)..<path.count {
            let prefix = path[..<depth].joined(separator: ".")
            switch nodes[prefix] {
            case nil: nodes[prefix] = .dottedTable(line: keyLine)
            case .dottedTable?: break
            case .headerTable?, .implicitTable?:
                throw error("table [\(prefix)] is defined by a [header]; dotted keys cannot add to it from elsewhere",
                            line: keyLine, column: keyColumn)
            case .value(let line)?:
                throw error("'\(prefix)' is a value (line \(line)), not a table", line: keyLine, column: keyColumn)
            }
        }
        let name = path.joined(separator: ".")
        switch nodes[name] {
        case nil:
            nodes[name] = .value(line: keyLine)
        case .value(let line)?:
            throw error("duplicate key '\(name)' (first defined at line \(line))", line: keyLine, column: keyColumn)
        case .headerTable(let line)?, .dottedTable(let line)?:
            throw error("'\(name)' is already a table (line \(line))", line: keyLine, column: keyColumn)
        case .implicitTable?:
            throw error("'\(name)' is already a table", line: keyLine, column: keyColumn)
        }
        document.addValue(value, at: name, line: keyLine, column: keyColumn)
    }

    /// A bare or dotted key: `a`, `a.b`, `a . b`.
    mutating func parseKey() throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            if peek == "\"" || peek == "'" {
                throw error("quoted keys are not supported; keys are bare (A-Za-z0-9_-) \(Self.subsetNote)")
            }
            var part = ""
            while let scalar = peek, Self.isBareKeyScalar(scalar) {
                part.unicodeScalars.append(scalar)
                position += 1
            }
            if part.isEmpty {
                throw error(parts.isEmpty ? "expected a key, a [table] header or a comment" : "expected a key after '.'")
            }
            parts.append(part)
            skipSpaces()
            guard peek == "." else { return parts }
            position += 1
            skipSpaces()
        }
    }

    static func isBareKeyScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "A"..."Z", "a"..."z", "0"..."9", "_", "-": true
        default: false
        }
    }

    // MARK: Values

    mutating func parseValue() throws(TOMLError) -> TOMLValue {
        guard let scalar = peek, scalar != "\n", scalar != "\r", scalar != "#" else {
            throw error("expected a value after '='")
        }
        switch scalar {
        case "\"":
            if peek(1) == "\"" && peek(2) == "\"" {
                throw error("multi-line strings (\"\"\"...\"\"\") are not supported \(Self.subsetNote)")
            }
            return .string(try parseBasicString())
        case "'":
            if peek(1) == "'" && peek(2) == "'" {
                throw error("multi-line literal strings ('''...''') are not supported \(Self.subsetNote)")
            }
            return .string(try parseLiteralString())
        case "[":
            return try parseArray()
        case "{":
            throw error("inline tables ({...}) are not supported; write a [table] section instead \(Self.subsetNote)")
        case "t", "f":
            return .boolean(try parseBoolean())
        case "0"..."9", "+", "-", "i", "n", ".":
            return try parseNumber()
        default:
            throw error("expected a value (a \"string\", a number, true, false or an array); strings need quotes")
        }
    }

    mutating func parseBoolean() throws(TOMLError) -> Bool {
        let startColumn = column
        let word = scanToken()
        switch word {
        case "true": return true
        case "false": return false
        default:
            throw error("expected a value, found '\(word)' (strings need quotes; booleans are true and false)",
                        line: line, column: startColumn)
        }
    }

    /// Scans a run of characters that can make up a number, boolean or date, without judging it.
    mutating func scanToken() -> String {
        var token = ""
        while let scalar = peek, Self.isBareKeyScalar(scalar) || scalar == "." || scalar == "+" || scalar == ":" {
            token.unicodeScalars.append(scalar)
            position += 1
        }
        return token
    }

    mutating func parseNumber() throws(TOMLError) -> TOMLValue {
        let startColumn = column
        let token = scanToken()
        func fail(_ message: String) -> TOMLError { error(message, line: line, column: startColumn) }

        let unsigned = token.hasPrefix("+") || token.hasPrefix("-") ? String(token.dropFirst()) : token
        if unsigned == "inf" || unsigned == "nan" {
            throw fail("inf and nan are not supported: every setting takes a finite number \(Self.subsetNote)")
        }
        if Self.looksLikeDateOrTime(token) {
            throw fail("dates and times are not supported \(Self.subsetNote)")
        }
        if unsigned.hasPrefix("0x") || unsigned.hasPrefix("0o") || unsigned.hasPrefix("0b") {
            throw fail("hexadecimal, octal and binary integers are not supported; write '\(token)' in decimal \(Self.subsetNote)")
        }
        guard let number = Self.decimalNumber(token) else {
            throw fail("expected a value, found '\(token)' (strings need quotes; numbers start with a digit or a sign)")
        }
        switch number {
        case .failure(let reason):
            throw fail("'\(token)' is not a valid number: \(reason)")
        case .success(let value):
            return value
        }
    }

    static func looksLikeDateOrTime(_ token: String) -> Bool {
        let s = Array(token.unicodeScalars)
        func digits(_ range: Range<Int>) -> Bool {
            range.upperBound <= s.count && range.allSatisfy { ("0"..."9").contains(s[$0]) }
        }
        let date = digits(0..<4) && s.count > 4 && s[4] == "-" && digits(5..<7)
        let time = digits(0..<2) && s.count > 2 && s[2] == ":"
        return date || time
    }

    struct NumberReason: Error { var text: String }

    /// Nil when the token does not even start like a number; otherwise the value or why it is invalid.
    static func decimalNumber(_ token: String) -> Result<TOMLValue, NumberReason>? {
        let s = Array(token.unicodeScalars)
        var i = 0
        if i < s.count && (s[i] == "+" || s[i] == "-") { i += 1 }
        guard i < s.count, ("0"..."9").contains(s[i]) else { return nil }

        // digits ('_'? digits)*, returning the digits without underscores.
        func digitRun(allowLeadingZero: Bool) -> Result<String, NumberReason> {
            let start = i
            var digits = ""
            var previousWasDigit = false
            while i < s.count, ("0"..."9").contains(s[i]) || s[i] == "_" {
                if s[i] == "_" {
                    if !previousWasDigit || i + 1 >= s.count || !("0"..."9").contains(s[i + 1]) {
                        return .failure(NumberReason(text: "an underscore must stand between two digits"))
                    }
                    previousWasDigit = false
                } else {
                    digits.unicodeScalars.append(s[i])
                    previousWasDigit = true
                }
                i += 1
            }
            if digits.isEmpty { return .failure(NumberReason(text: "expected digits")) }
            if !allowLeadingZero && digits.count > 1 && s[start] == "0" {
                return .failure(NumberReason(text: "leading zeros are not allowed"))
            }
            return .success(digits)
        }

        let sign = s[0] == "-" ? "-" : ""
        let integerPart: String
        switch digitRun(allowLeadingZero: false) {
        case .failure(let reason): return .failure(reason)
        case .success(let digits): integerPart = digits
        }
        var fraction: String?
        var exponent: String?
        if i < s.count && s[i] == "." {
            i += 1
            guard i < s.count, ("0"..."9").contains(s[i]) else {
                return .failure(NumberReason(text: "a decimal point must be followed by digits"))
            }
            switch digitRun(allowLeadingZero: true) {
            case .failure(let reason): return .failure(reason)
            case .success(let digits): fraction = digits
            }
        }
        if i < s.count && (s[i] == "e" || s[i] == "E") {
            i += 1
            var exponentSign = ""
            if i < s.count && (s[i] == "+" || s[i] == "-") {
                exponentSign = s[i] == "-" ? "-" : ""
                i += 1
            }
            guard i < s.count, ("0"..."9").contains(s[i]) else {
                return .failure(NumberReason(text: "an exponent must have digits"))
            }
            switch digitRun(allowLeadingZero: true) {
            case .failure(let reason): return .failure(reason)
            case .success(let digits): exponent = exponentSign + digits
            }
        }
        if i < s.count {
            return .failure(NumberReason(text: "unexpected '\(String(s[i]))'"))
        }
        if fraction == nil && exponent == nil {
            guard let integer = Int(sign + integerPart) else {
                return .failure(NumberReason(text: "out of the 64-bit integer range"))
            }
            return .success(.integer(integer))
        }
        let text = sign + integerPart + (fraction.map { "." + $0 } ?? "") + (exponent.map { "e" + $0 } ?? "")
        guard let float = Double(text), float.isFinite else {
            return .failure(NumberReason(text: "out of the float range"))
        }
        return .success(.float(float))
    }

    mutating func parseBasicString() throws(TOMLError) -> String {
        let startLine = line, startColumn = column
        position += 1  // "
        var out = ""
        while true {
            guard let scalar = peek, scalar != "\n", scalar != "\r" else {
                throw error("unterminated string: a string must end on the line it starts (multi-line strings are not supported)",
                            line: startLine, column: startColumn)
            }
            position += 1
            switch scalar {
            case "\"":
                return out
            case "\\":
                out.unicodeScalars.append(try parseEscape())
            default:
                if Self.isForbiddenControl(scalar) {
                    throw error("control character U+\(String(scalar.value, radix: 16, uppercase: true)) in a string; write it as an escape",
                                line: line, column: column - 1)
                }
                out.unicodeScalars.append(scalar)
            }
        }
    }

    /// After a backslash.
    mutating func parseEscape() throws(TOMLError) -> Unicode.Scalar {
        let escapeColumn = column - 1
        guard let scalar = peek else {
            throw error("unterminated string")
        }
        position += 1
        switch scalar {
        case "\"": return "\""
        case "\\": return "\\"
        case "n": return "\n"
        case "t": return "\t"
        case "r": return "\r"
        case "b": return "\u{08}"
        case "f": return "\u{0C}"
        case "u", "U":
            let count = scalar == "u" ? 4 : 8
            var hex = ""
            for _ in 0..<count {
                guard let digit = peek, digit.properties.isASCIIHexDigit else {
                    throw error("\\\(scalar) needs \(count) hexadecimal digits", line: line, column: escapeColumn)
                }
                hex.unicodeScalars.append(digit)
                position += 1
            }
            guard let code = UInt32(hex, radix: 16), let result = Unicode.Scalar(code) else {
                throw error("\\\(scalar)\(hex) is not a Unicode scalar value", line: line, column: escapeColumn)
            }
            return result
        default:
            throw error("unknown escape '\\\(scalar)' (known: \\\" \\\\ \\n \\t \\r \\b \\f \\uXXXX \\UXXXXXXXX)",
                        line: line, column: escapeColumn)
        }
    }

    mutating func parseLiteralString() throws(TOMLError) -> String {
        let startLine = line, startColumn = column
        position += 1  // '
        var out = ""
        while true {
            guard let scalar = peek, scalar != "\n", scalar != "\r" else {
                throw error("unterminated string: a string must end on the line it starts (multi-line strings are not supported)",
                            line: startLine, column: startColumn)
            }
            position += 1
            if scalar == "'" { return out }
            if Self.isForbiddenControl(scalar) {
                throw error("control character U+\(String(scalar.value, radix: 16, uppercase: true)) in a string",
                            line: line, column: column - 1)
            }
            out.unicodeScalars.append(scalar)
        }
    }

    mutating func parseArray() throws(TOMLError) -> TOMLValue {
        let startLine = line, startColumn = column
        position += 1  // [
        var elements: [TOMLValue] = []
        while true {
            try skipSpacesNewlinesAndComments()
            guard let scalar = peek else {
                throw error("unterminated array (opened here)", line: startLine, column: startColumn)
            }
            if scalar == "]" {
                position += 1
                return .array(elements)
            }
            if scalar == "[" {
                throw error("arrays of arrays are not supported \(Self.subsetNote)")
            }
            if scalar == "," {
                throw error("expected a value before ','")
            }
            elements.append(try parseValue())
            try skipSpacesNewlinesAndComments()
            switch peek {
            case ","?:
                position += 1
            case "]"?:
                continue
            case nil:
                throw error("unterminated array (opened here)", line: startLine, column: startColumn)
            default:
                throw error("expected ',' or ']' in the array")
            }
        }
    }

    // MARK: Spaces, comments, line ends

    static func isForbiddenControl(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value < 0x20 && scalar != "\t") || scalar.value == 0x7F
    }

    mutating func skipSpaces() {
        while let scalar = peek, scalar == " " || scalar == "\t" { position += 1 }
    }

    /// From '#' to the end of the line (not consuming the line end).
    mutating func skipComment() throws(TOMLError) {
        while let scalar = peek, scalar != "\n", scalar != "\r" {
            if Self.isForbiddenControl(scalar) {
                throw error("control character U+\(String(scalar.value, radix: 16, uppercase: true)) in a comment")
            }
            position += 1
        }
    }

    /// A line end (LF or CRLF) or the end of the document.
    mutating func expectLineEnd() throws(TOMLError) {
        guard let scalar = peek else { return }
        if scalar == "\r" && peek(1) == "\n" { position += 1 }
        guard peek == "\n" else {
            throw error(scalar == "\r" ? "a carriage return must be followed by a line feed" : "expected the end of the line")
        }
        position += 1
        line += 1
        lineStart = position
    }

    /// After a header or a value: optional spaces and comment, then the line end.
    mutating func finishLine(after what: String) throws(TOMLError) {
        skipSpaces()
        if peek == "#" { try skipComment() }
        guard atEnd || peek == "\n" || peek == "\r" else {
            throw error("unexpected text after \(what); one key = value per line, comments start with #")
        }
        try expectLineEnd()
    }

    mutating func skipSpacesNewlinesAndComments() throws(TOMLError) {
        while true {
            skipSpaces()
            switch peek {
            case "#"?: try skipComment()
            case "\n"?, "\r"?: try expectLineEnd()
            default: return
            }
        }
    }
}
