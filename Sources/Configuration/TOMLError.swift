// A syntax error in a TOML document, or a construct outside the subset glfd reads, at a 1-based
// line and column (columns count Unicode scalars).
public struct TOMLError: Error, Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String

    public init(line: Int, column: Int, _ message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    /// "line 3, column 9: ...".
    public var description: String { "line \(line), column \(column): \(message)" }
}
