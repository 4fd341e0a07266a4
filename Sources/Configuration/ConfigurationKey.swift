// One setting of glfd, described once: its dotted name, what it takes, its default, one line of
// documentation, and the field of GLFDConfiguration it fills. The table of these
// (`GLFDConfiguration.keys`) drives everything else: reading the file, the environment and --set,
// type checks and validation, filling the typed struct, describe() and so systemd/glfd.toml.
import Foundation

public struct ConfigurationKey: Sendable {
    public enum ValueType: Sendable, Equatable {
        case string
        /// A file system path; relative ones are resolved against `base`.
        case path(base: PathBase)
        case integer
        case float
        case boolean
        /// A string from a fixed list.
        case choice([String])
    }

    public enum PathBase: Sendable, Equatable {
        case workingDirectory
        /// `paths.state_directory`, itself resolved first.
        case stateDirectory
    }

    /// "section.key".
    public let name: String
    public let type: ValueType
    public let defaultValue: TOMLValue
    /// One line, no final full stop: what the setting does and its unit.
    public let doc: String
    /// What a valid value is, as a noun phrase: "an integer >= 2", "sync or fast".
    public let expectation: String

    /// The problem with a value of the right type, or nil when it is valid.
    let problem: @Sendable (TOMLValue) -> String?
    let store: @Sendable (inout GLFDConfiguration, TOMLValue) -> Void
    /// For paths: makes the stored path absolute, given the working directory.
    let resolve: (@Sendable (inout GLFDConfiguration, _ workingDirectory: String) -> Void)?

    public var section: String { String(name.prefix(while: { $0 != "." })) }
    public var leaf: String { String(name.drop(while: { $0 != "." }).dropFirst()) }
    /// `GLFD_SERVER_REQUEST_ENDPOINT` for `server.request_endpoint`.
    public var environmentVariable: String {
        GLFDConfiguration.environmentPrefix + name.uppercased().map { $0 == "." || $0 == "-" ? "_" : $0 }.map(String.init).joined()
    }

    /// The value converted to this key's type (an integer where a float is expected becomes that
    /// float), or nil when it has the wrong type.
    public func converted(_ value: TOMLValue) -> TOMLValue? {
        switch (type, value) {
        case (.string, .string), (.path, .string), (.choice, .string),
             (.integer, .integer), (.float, .float), (.boolean, .boolean):
            return value
        case (.float, .integer(let integer)):
            return .float(Double(integer))
        default:
            return nil
        }
    }

    /// The line above the key in systemd/glfd.toml and describe(): "# <doc> [<expectation>]".
    public var docComment: String { "# \(doc) [\(expectation)]" }

    /// Whether values of this key are strings (so raw environment and --set text is taken as is).
    var takesString: Bool {
        switch type {
        case .string, .path, .choice: true
        case .integer, .float, .boolean: false
        }
    }
}

// MARK: The constructors the key table uses

extension ConfigurationKey {
    enum StringRule {
        case nonEmpty
        /// `transport://address`; tcp needs host:port with a port from 1 to 65535 (or *).
        case zeroMQEndpoint
        /// `host:port`, or "" to disable.
        case hostPortOrEmpty
        /// NATS server URLs, `nats://host:port` separated by commas, or "" to disable.
        case natsServersOrEmpty
        /// A ZeroMQ endpoint to connect to, or "" to disable.
        case zeroMQEndpointOrEmpty

        var expectation: String {
            switch self {
            case .nonEmpty: "a non-empty string"
            case .zeroMQEndpoint: "a ZeroMQ endpoint: tcp://host:port, ipc://path, ..."
            case .hostPortOrEmpty: "host:port, or \"\" to disable"
            case .natsServersOrEmpty: "nats://host:port[,nats://host:port...], or \"\" to disable"
            case .zeroMQEndpointOrEmpty: "a ZeroMQ endpoint (tcp://host:port, ...), or \"\" to disable"
            }
        }

        func problem(_ string: String) -> String? {
            switch self {
            case .nonEmpty:
                return string.isEmpty ? "must not be empty" : nil
            case .zeroMQEndpoint:
                return ConfigurationKey.endpointProblem(string)
            case .hostPortOrEmpty:
                if string.isEmpty { return nil }
                return ConfigurationKey.hostPortProblem(string, allowWildcard: false)
            case .natsServersOrEmpty:
                if string.isEmpty { return nil }
                for server in string.split(separator: ",", omittingEmptySubsequences: false) {
                    guard server.hasPrefix("nats://") else { return "'\(server)' is not a nats://host:port URL" }
                    if let problem = ConfigurationKey.hostPortProblem(String(server.dropFirst("nats://".count)), allowWildcard: false) {
                        return problem
                    }
                }
                return nil
            case .zeroMQEndpointOrEmpty:
                return string.isEmpty ? nil : ConfigurationKey.endpointProblem(string)
            }
        }
    }

    enum IntegerRule {
        case atLeast(Int)
        case oneOf([Int])

        var expectation: String {
            switch self {
            case .atLeast(let minimum): "an integer >= \(minimum)"
            case .oneOf(let values): Self.list(values.map(String.init))
            }
        }

        func accepts(_ value: Int) -> Bool {
            switch self {
            case .atLeast(let minimum): value >= minimum
            case .oneOf(let values): values.contains(value)
            }
        }

        static func list(_ items: [String]) -> String {
            items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " or " + items.last!
        }
    }

    enum FloatRule {
        case positive
        case nonNegative
        /// 0 ≤ x < 1: a decay.
        case fraction
        /// 0 < x ≤ 1: a share.
        case share

        var expectation: String {
            switch self {
            case .positive: "a number > 0"
            case .nonNegative: "a number >= 0"
            case .fraction: "a number >= 0 and < 1"
            case .share: "a number > 0 and <= 1"
            }
        }

        func accepts(_ value: Double) -> Bool {
            switch self {
            case .positive: value > 0
            case .nonNegative: value >= 0
            case .fraction: value >= 0 && value < 1
            case .share: value > 0 && value <= 1
            }
        }
    }

    typealias Field<Value> = WritableKeyPath<GLFDConfiguration, Value> & Sendable

    static func string(_ name: String, _ field: Field<String>, _ defaultValue: String, _ rule: StringRule,
                       _ doc: String) -> ConfigurationKey {
        ConfigurationKey(
            name: name, type: .string, defaultValue: .string(defaultValue), doc: doc, expectation: rule.expectation,
            problem: { value in
                guard case .string(let string) = value else { return nil }
                return rule.problem(string)
            },
            store: { configuration, value in
                if case .string(let string) = value { configuration[keyPath: field] = string }
            },
            resolve: nil)
    }

    /// A path; "" means none when `optional`, and stays "" after resolution.
    static func path(_ name: String, _ field: Field<String>, _ defaultValue: String, relativeTo base: PathBase,
                     optional: Bool = false, _ doc: String) -> ConfigurationKey {
        let expectation = optional ? "a path, or \"\" for none" : "a non-empty path"
        return ConfigurationKey(
            name: name, type: .path(base: base), defaultValue: .string(defaultValue), doc: doc, expectation: expectation,
            problem: { value in
                guard case .string(let string) = value else { return nil }
                if string.isEmpty && !optional { return "must not be empty; expected \(expectation)" }
                if string.unicodeScalars.contains("\0") { return "a path cannot contain a NUL character" }
                return nil
            },
            store: { configuration, value in
                if case .string(let string) = value { configuration[keyPath: field] = string }
            },
            resolve: { configuration, workingDirectory in
                let path = configuration[keyPath: field]
                if path.isEmpty { return }
                let directory = base == .workingDirectory ? workingDirectory : configuration.paths.stateDirectory
                configuration[keyPath: field] = absolutePath(path, relativeTo: directory)
            })
    }

    static func integer(_ name: String, _ field: Field<Int>, _ defaultValue: Int, _ rule: IntegerRule,
                        _ doc: String) -> ConfigurationKey {
        ConfigurationKey(
            name: name, type: .integer, defaultValue: .integer(defaultValue), doc: doc, expectation: rule.expectation,
            problem: { value in
                guard case .integer(let integer) = value, !rule.accepts(integer) else { return nil }
                return "must be \(rule.expectation), got \(integer)"
            },
            store: { configuration, value in
                if case .integer(let integer) = value { configuration[keyPath: field] = integer }
            },
            resolve: nil)
    }

    static func float(_ name: String, _ field: Field<Double>, _ defaultValue: Double, _ rule: FloatRule,
                      _ doc: String) -> ConfigurationKey {
        ConfigurationKey(
            name: name, type: .float, defaultValue: .float(defaultValue), doc: doc, expectation: rule.expectation,
            problem: { value in
                guard case .float(let float) = value, !rule.accepts(float) else { return nil }
                return "must be \(rule.expectation), got \(TOMLValue.floatText(float))"
            },
            store: { configuration, value in
                if case .float(let float) = value { configuration[keyPath: field] = float }
            },
            resolve: nil)
    }

    static func boolean(_ name: String, _ field: Field<Bool>, _ defaultValue: Bool, _ doc: String) -> ConfigurationKey {
        ConfigurationKey(
            name: name, type: .boolean, defaultValue: .boolean(defaultValue), doc: doc, expectation: "true or false",
            problem: { _ in nil },
            store: { configuration, value in
                if case .boolean(let boolean) = value { configuration[keyPath: field] = boolean }
            },
            resolve: nil)
    }

    /// `listed`: the cases the file and --print-config list (default: all); any case `Choice`
    /// accepts is valid.
    static func choice<Choice>(_ name: String, _ field: Field<Choice>, _ defaultValue: Choice, listed: [Choice]? = nil,
                               _ doc: String) -> ConfigurationKey
    where Choice: RawRepresentable & CaseIterable & Sendable, Choice.RawValue == String {
        let names = (listed ?? Array(Choice.allCases)).map(\.rawValue)
        let expectation = IntegerRule.list(names)
        return ConfigurationKey(
            name: name, type: .choice(names), defaultValue: .string(defaultValue.rawValue), doc: doc,
            expectation: expectation,
            problem: { value in
                guard case .string(let string) = value, Choice(rawValue: string) == nil else { return nil }
                return "must be \(expectation), got \(TOMLValue.quoted(string))"
            },
            store: { configuration, value in
                if case .string(let string) = value, let choice = Choice(rawValue: string) {
                    configuration[keyPath: field] = choice
                }
            },
            resolve: nil)
    }
}

// MARK: Checks shared by the rules

extension ConfigurationKey {
    static let zeroMQTransports = ["tcp", "ipc", "inproc", "pgm", "epgm", "vmci", "ws", "wss", "udp"]

    static func endpointProblem(_ endpoint: String) -> String? {
        let expected = "expected \(StringRule.zeroMQEndpoint.expectation)"
        guard let separator = endpoint.range(of: "://") else {
            return endpoint.isEmpty ? "must not be empty; \(expected)" : "has no transport; \(expected)"
        }
        let transport = String(endpoint[..<separator.lowerBound])
        let address = String(endpoint[separator.upperBound...])
        guard zeroMQTransports.contains(transport) else {
            return "unknown transport '\(transport)' (known: \(zeroMQTransports.joined(separator: ", ")))"
        }
        if address.isEmpty { return "has no address; \(expected)" }
        if transport == "tcp" { return hostPortProblem(address, allowWildcard: true) }
        return nil
    }

    /// host:port, [v6-address]:port; `*` for the host and the port when binding ZeroMQ sockets.
    static func hostPortProblem(_ text: String, allowWildcard: Bool) -> String? {
        guard let colon = text.lastIndex(of: ":") else {
            return "'\(text)' has no port; expected host:port"
        }
        let host = text[..<colon]
        let port = text[text.index(after: colon)...]
        if host.isEmpty { return "'\(text)' has no host; expected host:port" }
        if allowWildcard && port == "*" { return nil }
        // ZeroMQ endpoints spell "any free port" as *, plain host:port (the metrics endpoint) as 0.
        let ports = allowWildcard ? 1...65535 : 0...65535
        guard let number = Int(port), ports.contains(number) else {
            return "'\(port)' is not a port; expected a number from \(ports.lowerBound) to 65535"
        }
        return nil
    }

    /// `path` made absolute against `directory`, with "." and ".." segments and doubled slashes
    /// removed lexically (symbolic links are left alone; "~" is not expanded).
    static func absolutePath(_ path: String, relativeTo directory: String) -> String {
        let joined = path.hasPrefix("/") ? path : directory + "/" + path
        var segments: [Substring] = []
        for segment in joined.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": if !segments.isEmpty { segments.removeLast() }
            default: segments.append(segment)
            }
        }
        return "/" + segments.joined(separator: "/")
    }
}
