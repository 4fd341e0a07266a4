// swift-log's messages as journald reads a service's stderr: one line per message, led by the
// sd-daemon priority prefix (sd-daemon(3): "<6>" is info), no timestamp (journald adds its own).
//
//   <6>glfd.store: store opened items=1204 map_bytes=67108864 path=/var/lib/glfd/store
//   <4>glfd.server: request refused code=busy reason="8 ingests in flight"
//
// Metadata follows the message as key=value, sorted by key (the handler's, the provider's, then
// the message's own, later ones winning); a value with a space, quote or '=' is quoted with \ and "
// escaped. Newlines are written as \n so that a message never spans two journal entries.
//
// Levels: glfd logs lifecycle and state changes at info and up (started, model published, store
// grown, refusals that need an operator); per-request events are debug or trace, so a busy daemon's
// journal stays readable at the default level.
import Logging

public struct JournaldLogHandler: LogHandler {
    public let label: String
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let output: LogOutput
    /// Set on this handler (a logger's own level); otherwise the output's level applies.
    private var ownLevel: Logger.Level?

    public init(label: String, output: LogOutput, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.output = output
        self.metadataProvider = metadataProvider
    }

    public var logLevel: Logger.Level {
        get { ownLevel ?? output.level }
        set { ownLevel = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        if let error = event.error, merged["error"] == nil { merged["error"] = .string(String(describing: error)) }
        output.write(Self.line(level: event.level, label: label, message: event.message.description, metadata: merged))
    }

    /// syslog(3) priorities, as sd-daemon(3) prefixes them.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// One journald line, without the trailing newline.
    public static func line(level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var line = "<\(priority(level))>\(label): \(escapeNewlines(message))"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            line += " \(Self.key(key))=\(quoted(text(value)))"
        }
        return line
    }

    private static func key(_ key: String) -> String {
        key.isEmpty ? "_" : String(key.map { $0 == " " || $0 == "=" || $0 == "\"" || $0.isNewline ? "_" : $0 })
    }

    private static func text(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let array): "[" + array.map(text).joined(separator: ",") + "]"
        case .dictionary(let dictionary):
            "{" + dictionary.sorted { $0.key < $1.key }.map { "\($0.key)=\(text($0.value))" }.joined(separator: ",") + "}"
        }
    }

    private static func quoted(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "\t" || $0 == "\"" || $0 == "=" }
        return needsQuotes ? "\"" + escaped(value, quotes: true) + "\"" : escaped(value, quotes: false)
    }

    private static func escapeNewlines(_ text: String) -> String { escaped(text, quotes: false) }

    /// Newlines as \n and \r; inside quotes also \\ and \".
    private static func escaped(_ text: String, quotes: Bool) -> String {
        let special: (Character) -> Bool = { $0.isNewline || (quotes && ($0 == "\\" || $0 == "\"")) }
        guard text.contains(where: special) else { return text }
        var result = ""
        for character in text {
            guard special(character) else { result.append(character); continue }
            switch character {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\r": result += "\\r"
            case "\r\n": result += "\\r\\n"
            default: result += "\\n"
            }
        }
        return result
    }
}
