// The TOML subset as an executable spec: what it reads (every value kind, dotted keys, tables,
// multi-line arrays, comments, escapes) and reads back after rendering; and a corpus of documents
// it refuses, each with the line of the mistake and the words that explain it.
import Configuration
import Testing

@Suite struct TOMLDocumentTests {
    static let everyKind = #"""
        # A comment on its own line, then a blank line.

        title = "glfd"            # inline comment after a value
        literal = 'C:\no\escapes' # literal strings keep backslashes
        escapes = "quote \" backslash \\ newline \n tab \t cr \r unicode \u00e9 \U0001F600"
        hash = "# is not a comment inside a string"
        zero = 0
        positive = +42
        negative = -17
        grouped = 1_000_000
        float = 1.5
        negative_float = -0.25
        exponent = 1e-3
        big_exponent = 6.02E+23
        grouped_float = 1_000.5
        leading_zero_exponent = 1e05
        yes = true
        no = false
        empty = []
        numbers = [1, 2, 3]
        mixed = ["a", 1, 2.5, false]
        a.b.c = 1
        a . b . d = 2
        bare-key_9 = "dashes and digits"

        [server]
        endpoint = "tcp://127.0.0.1:5555"
        lines = [
          "one",   # a comment inside an array
          'two',

          "three", # trailing comma allowed
        ]

        [server.tls]
        enabled = false

        [ store . replay ]
        policy = "fifo"
        """#

    @Test func readsEveryValueKind() throws {
        let document = try TOMLDocument(parsing: Self.everyKind)
        let expected: [String: TOMLValue] = [
            "title": .string("glfd"),
            "literal": .string(#"C:\no\escapes"#),
            "escapes": .string("quote \" backslash \\ newline \n tab \t cr \r unicode \u{e9} \u{1F600}"),
            "hash": .string("# is not a comment inside a string"),
            "zero": .integer(0), "positive": .integer(42), "negative": .integer(-17), "grouped": .integer(1_000_000),
            "float": .float(1.5), "negative_float": .float(-0.25), "exponent": .float(1e-3),
            "big_exponent": .float(6.02e23), "grouped_float": .float(1000.5), "leading_zero_exponent": .float(1e5),
            "yes": .boolean(true), "no": .boolean(false),
            "empty": .array([]), "numbers": .array([.integer(1), .integer(2), .integer(3)]),
            "mixed": .array([.string("a"), .integer(1), .float(2.5), .boolean(false)]),
            "a.b.c": .integer(1), "a.b.d": .integer(2), "bare-key_9": .string("dashes and digits"),
            "server.endpoint": .string("tcp://127.0.0.1:5555"),
            "server.lines": .array([.string("one"), .string("two"), .string("three")]),
            "server.tls.enabled": .boolean(false),
            "store.replay.policy": .string("fifo"),
        ]
        #expect(document.entries.mapValues(\.value) == expected)
        #expect(document.keys.first == "title" && document.keys.last == "store.replay.policy")
        #expect(document.keys.count == expected.count)
        #expect(document.tables == ["server": 26, "server.tls": 35, "store.replay": 38])
        #expect(document.entries["title"]?.line == 3)
        #expect(document.entries["server.lines"]?.line == 28)
        #expect(document.entries["a.b.d"]?.line == 23)
        #expect(document.entries["a.b.d"]?.column == 1)
        #expect(document.entries["server.tls.enabled"]?.column == 1)
    }

    /// Rendering every value with `tomlText` and parsing the result gives the same document.
    @Test func roundTripsThroughTomlText() throws {
        let document = try TOMLDocument(parsing: Self.everyKind)
        let rendered = document.keys.map { "\($0) = \(document.entries[$0]!.value.tomlText)" }.joined(separator: "\n")
        let reparsed = try TOMLDocument(parsing: rendered)
        #expect(reparsed.entries.mapValues(\.value) == document.entries.mapValues(\.value))

        let awkward: [TOMLValue] = [
            .string("control \u{01} and delete \u{7F} and \u{08}\u{0C}"), .string(""), .string("'single' \"double\""),
            .float(1), .float(-0.0), .float(1e-300), .float(123456789.125), .float(5e-4), .float(1e22),
            .integer(Int.max), .integer(Int.min), .array([.float(2), .string("x")]),
        ]
        for value in awkward {
            #expect(try TOMLDocument.parseValue(value.tomlText) == value, "\(value.tomlText)")
        }
    }

    @Test func lineEndsMayBeCRLFAndTheLastLineNeedsNone() throws {
        let document = try TOMLDocument(parsing: "a = 1\r\n[t]\r\nb = [\r\n 2,\r\n]\r\nc = 'x'")
        #expect(document["a"] == .integer(1))
        #expect(document["t.b"] == .array([.integer(2)]))
        #expect(document.entries["t.c"]?.line == 6)
    }

    @Test func headersCreateParentsThatMayBeDefinedLater() throws {
        let document = try TOMLDocument(parsing: "[a.b]\nx = 1\n[a]\ny = 2\n[a.c]\nz = 3\n")
        #expect(document["a.b.x"] == .integer(1))
        #expect(document["a.y"] == .integer(2))
        #expect(document["a.c.z"] == .integer(3))
    }

    @Test func dottedKeysMayBeExtendedBySubTableHeaders() throws {
        let document = try TOMLDocument(parsing: "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true\n")
        #expect(document["fruit.apple.color"] == .string("red"))
        #expect(document["fruit.apple.taste.sweet"] == .boolean(true))
        #expect(document["fruit.apple.texture.smooth"] == .boolean(true))
    }

    @Test func singleValues() throws {
        #expect(try TOMLDocument.parseValue("128") == .integer(128))
        #expect(try TOMLDocument.parseValue("  -2.5e2 ") == .float(-250))
        #expect(try TOMLDocument.parseValue("true") == .boolean(true))
        #expect(try TOMLDocument.parseValue(#""quoted \"x\"""#) == .string("quoted \"x\""))
        #expect(try TOMLDocument.parseValue("[1,\n2]") == .array([.integer(1), .integer(2)]))
        #expect(throws: TOMLError.self) { try TOMLDocument.parseValue("debug") }
        #expect(throws: TOMLError.self) { try TOMLDocument.parseValue("tcp://127.0.0.1:5555") }
        #expect(throws: TOMLError.self) { try TOMLDocument.parseValue("1 # comment") }
        #expect(throws: TOMLError.self) { try TOMLDocument.parseValue("") }
    }

    @Test func byteOrderMarkIsSkipped() throws {
        let document = try TOMLDocument(parsing: "\u{FEFF}a = 1\n")
        #expect(document.entries["a"]?.line == 1)
        #expect(document.entries["a"]?.column == 1)
    }

    /// Seeded mutations of a valid document (bytes replaced, inserted, deleted, lines swapped):
    /// each must give a document or a TOMLError at a line of the text, never a crash.
    @Test func mutatedDocumentsGiveAValueOrAnError() {
        var random = SplitMix64(seed: 7)
        let alphabet = Array("\"'[]{}=.,#_-+0123456789eE:\\ \t\nabcxyz\u{0}\u{7F}\u{E9}\r".unicodeScalars)
        let original = Array(Self.everyKind.unicodeScalars)
        var accepted = 0
        for _ in 0..<3000 {
            var scalars = original
            for _ in 0..<(1 + random.next(below: 4)) {
                let position = random.next(below: scalars.count)
                switch random.next(below: 3) {
                case 0: scalars[position] = alphabet[random.next(below: alphabet.count)]
                case 1: scalars.insert(alphabet[random.next(below: alphabet.count)], at: position)
                default: scalars.remove(at: position)
                }
            }
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars)
            do {
                _ = try TOMLDocument(parsing: text)
                accepted += 1
            } catch {
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
                #expect(error.line >= 1 && error.line <= lines && error.column >= 1, "\(error)")
            }
        }
        #expect(accepted > 0 && accepted < 3000)
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        var name: String
        var text: String
        var line: Int
        var column: Int?
        /// Words the message must contain.
        var says: String
        var testDescription: String { name }
    }

    static let invalidDocuments: [Invalid] = [
        Invalid(name: "unterminated string", text: "a = 1\nb = \"open\n", line: 2, column: 5, says: "unterminated string"),
        Invalid(name: "unterminated literal string", text: "b = 'open", line: 1, column: 5, says: "unterminated string"),
        Invalid(name: "unterminated array", text: "a = [1,\n2\n", line: 1, column: 5, says: "unterminated array"),
        Invalid(name: "duplicate key", text: "a = 1\nb = 2\na = 3\n", line: 3, column: 1, says: "duplicate key 'a' (first defined at line 1)"),
        Invalid(name: "duplicate key in a table", text: "[t]\nx = 1\n  x = 2\n", line: 3, column: 3, says: "duplicate key 't.x'"),
        Invalid(name: "table redefined after others", text: "[t]\nx = 1\n[u]\n[t.s]\n[v]\nx = 2\n[t]\n", line: 7, column: 1,
                says: "table [t] is defined twice (first at line 1)"),
        Invalid(name: "duplicate dotted key", text: "a.b = 1\na.b = 2\n", line: 2, says: "duplicate key 'a.b'"),
        Invalid(name: "redefined table", text: "[server]\nx = 1\n\n[server]\ny = 2\n", line: 4, column: 1, says: "defined twice"),
        Invalid(name: "table defined by dotted keys", text: "[fruit]\napple.color = 'red'\n[fruit.apple]\n", line: 3,
                says: "already defined by dotted keys at line 2"),
        Invalid(name: "dotted keys into a header's table", text: "[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", line: 4, says: "defined by a [header]"),
        Invalid(name: "value used as a table", text: "a = 1\na.b = 2\n", line: 2, says: "'a' is a value (line 1), not a table"),
        Invalid(name: "value used as a table header", text: "a = 1\n[a]\n", line: 2, says: "'a' is a value (line 1), not a table"),
        Invalid(name: "table used as a value", text: "[a.b]\n[a]\nb = 1\n", line: 3, says: "already a table"),
        Invalid(name: "inline table", text: "# settings\nserver = { port = 5555 }\n", line: 2, column: 10, says: "inline tables ({...}) are not supported"),
        Invalid(name: "array of tables", text: "\n\n[[clients]]\n", line: 3, column: 1, says: "arrays of tables ([[...]]) are not supported"),
        Invalid(name: "multi-line basic string", text: "a = \"\"\"\ntext\"\"\"\n", line: 1, column: 5, says: "multi-line strings"),
        Invalid(name: "multi-line literal string", text: "a = '''text'''\n", line: 1, column: 5, says: "multi-line literal strings"),
        Invalid(name: "date", text: "when = 1979-05-27\n", line: 1, column: 8, says: "dates and times are not supported"),
        Invalid(name: "time", text: "when = 07:32:00\n", line: 1, says: "dates and times are not supported"),
        Invalid(name: "hexadecimal", text: "a = 0xFF\n", line: 1, says: "hexadecimal, octal and binary integers are not supported"),
        Invalid(name: "inf", text: "a = inf\n", line: 1, says: "inf and nan are not supported"),
        Invalid(name: "negative nan", text: "a = -nan\n", line: 1, says: "inf and nan are not supported"),
        Invalid(name: "leading zero", text: "\na = 012\n", line: 2, column: 5, says: "leading zeros are not allowed"),
        Invalid(name: "leading zero in a float", text: "a = 01.5\n", line: 1, says: "leading zeros are not allowed"),
        Invalid(name: "double underscore", text: "a = 1__0\n", line: 1, column: 5, says: "an underscore must stand between two digits"),
        Invalid(name: "trailing underscore", text: "a = 10_\n", line: 1, says: "an underscore must stand between two digits"),
        Invalid(name: "underscore before the point", text: "a = 1_.5\n", line: 1, says: "an underscore must stand between two digits"),
        Invalid(name: "fraction without digits", text: "a = 1.\n", line: 1, says: "followed by digits"),
        Invalid(name: "fraction without an integer part", text: "a = .5\n", line: 1, says: "numbers start with a digit"),
        Invalid(name: "exponent without digits", text: "a = 1e\n", line: 1, says: "an exponent must have digits"),
        Invalid(name: "integer overflow", text: "a = 9223372036854775808\n", line: 1, says: "out of the 64-bit integer range"),
        Invalid(name: "float overflow", text: "a = 1e400\n", line: 1, says: "out of the float range"),
        Invalid(name: "missing equals", text: "[server]\nrequest_endpoint \"tcp://x:1\"\n", line: 2, column: 18, says: "expected '=' after the key 'request_endpoint'"),
        Invalid(name: "missing value", text: "a =\n", line: 1, says: "expected a value after '='"),
        Invalid(name: "garbage after value", text: "a = 1\nb = \"x\" y\n", line: 2, column: 9, says: "unexpected text after the value"),
        Invalid(name: "two values on a line", text: "a = true false\n", line: 1, column: 10, says: "unexpected text after the value"),
        Invalid(name: "garbage after header", text: "[server] x = 1\n", line: 1, column: 10, says: "unexpected text after the table header"),
        Invalid(name: "unquoted string", text: "level = debug\n", line: 1, column: 9, says: "strings need quotes"),
        Invalid(name: "misspelt boolean", text: "on = True\n", line: 1, says: "strings need quotes"),
        Invalid(name: "quoted key", text: "\"a b\" = 1\n", line: 1, column: 1, says: "quoted keys are not supported"),
        Invalid(name: "empty key", text: "= 1\n", line: 1, column: 1, says: "expected a key"),
        Invalid(name: "dangling dot in a key", text: "a. = 1\n", line: 1, says: "expected a key after '.'"),
        Invalid(name: "unclosed header", text: "[server\n", line: 1, says: "expected ']'"),
        Invalid(name: "unknown escape", text: "a = \"\\q\"\n", line: 1, column: 6, says: "unknown escape '\\q'"),
        Invalid(name: "short unicode escape", text: "a = \"\\u12\"\n", line: 1, says: "needs 4 hexadecimal digits"),
        Invalid(name: "surrogate escape", text: "a = \"\\uD800\"\n", line: 1, says: "not a Unicode scalar value"),
        Invalid(name: "control character in a string", text: "a = \"x\u{01}\"\n", line: 1, column: 7, says: "control character U+1"),
        Invalid(name: "array of arrays", text: "a = [[1], [2]]\n", line: 1, column: 6, says: "arrays of arrays are not supported"),
        Invalid(name: "missing comma in an array", text: "a = [1 2]\n", line: 1, column: 8, says: "expected ',' or ']'"),
        Invalid(name: "leading comma in an array", text: "a = [, 1]\n", line: 1, says: "expected a value before ','"),
        Invalid(name: "lone carriage return", text: "a = 1\rb = 2\n", line: 1, says: "carriage return"),
    ]

    @Test(arguments: invalidDocuments)
    func refuses(_ invalid: Invalid) {
        do {
            let document = try TOMLDocument(parsing: invalid.text)
            Issue.record("accepted: \(document.entries)")
        } catch {
            #expect(error.line == invalid.line, "\(error)")
            if let column = invalid.column { #expect(error.column == column, "\(error)") }
            #expect(error.message.contains(invalid.says), "\(error)")
        }
    }
}

/// A small seeded generator, so the mutation test is the same on every run.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(below bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
