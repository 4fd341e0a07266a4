// Why a configuration was refused: a code a caller can switch on, and a message an operator can act
// on that names where the bad value came from (file:line, environment variable, or --set).
public struct ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The configuration file given does not exist or cannot be read as UTF-8 text.
        case unreadableFile = "unreadable_file"
        /// The file is not valid TOML, or uses TOML the reader does not support.
        case syntax
        /// A key, table or GLFD_ environment variable that names no setting.
        case unknownKey = "unknown_key"
        /// A value of the wrong type (a string where an integer is expected, ...).
        case wrongType = "wrong_type"
        /// A value of the right type outside what the setting accepts, or settings that contradict.
        case invalidValue = "invalid_value"
        /// A --set argument that is not section.key=value.
        case badOverride = "bad_override"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// Where a setting's value came from, the later layers overriding the earlier ones.
public enum ConfigurationSource: Sendable, Equatable, CustomStringConvertible {
    case builtInDefault
    /// The configuration file, as its path was given, and the line of the key.
    case file(path: String, line: Int)
    /// `GLFD_<SECTION>_<KEY>`.
    case environment(variable: String)
    /// The argument of `--set`, as given ("training.batch=128").
    case commandLine(argument: String)

    /// "default", "/etc/glfd/glfd.toml:12", "environment GLFD_TRAINING_BATCH", "--set training.batch=128".
    public var description: String {
        switch self {
        case .builtInDefault: "default"
        case .file(let path, let line): "\(path):\(line)"
        case .environment(let variable): "environment \(variable)"
        case .commandLine(let argument): "--set \(argument)"
        }
    }
}

/// One effective setting: its value (already of the key's type) and the layer it came from.
public struct ConfigurationSetting: Sendable, Equatable {
    public var value: TOMLValue
    public var source: ConfigurationSource

    public init(value: TOMLValue, source: ConfigurationSource) {
        self.value = value
        self.source = source
    }
}
