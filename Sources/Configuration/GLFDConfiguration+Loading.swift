// Layering: built-in defaults < the TOML file < GLFD_<SECTION>_<KEY> environment variables <
// `--set section.key=value` overrides, into one flat map from key to value and the layer it came
// from; then the typed struct is filled from that map, paths are resolved, and everything is
// validated. A name that is no setting, in any layer, is an error suggesting the nearest one (typo
// protection: a misspelt key must not silently leave the default in place).
import Foundation

extension GLFDConfiguration {
    public static let environmentPrefix = "GLFD_"
    /// GLFD_ variables that are not settings and are left to whoever reads them: the path of the
    /// configuration file itself (for glfd's own command line).
    public static let environmentVariablesNotSettings: Set<String> = ["GLFD_CONFIG"]

    /// The effective configuration.
    /// - file: the TOML file, or nil for none; a file given but missing is an error.
    /// - environment: the process environment; only GLFD_ variables are read.
    /// - overrides: the arguments of each `--set`, in order ("training.batch=128"); the last wins.
    /// - workingDirectory: what relative paths (the file's too) are resolved against.
    public static func load(file: String?, environment: [String: String], overrides: [String],
                            workingDirectory: String = FileManager.default.currentDirectoryPath)
        throws(ConfigurationError) -> GLFDConfiguration {
        var settings: [String: ConfigurationSetting] = [:]
        for key in keys {
            settings[key.name] = ConfigurationSetting(value: key.defaultValue, source: .builtInDefault)
        }
        if let file {
            try readFile(file, workingDirectory: workingDirectory, into: &settings)
        }
        try readEnvironment(environment, into: &settings)
        try readOverrides(overrides, into: &settings)
        return try make(settings, workingDirectory: workingDirectory)
    }

    /// The built-in defaults, with paths resolved against `workingDirectory`.
    public static func defaults(workingDirectory: String = FileManager.default.currentDirectoryPath) -> GLFDConfiguration {
        do {
            return try load(file: nil, environment: [:], overrides: [], workingDirectory: workingDirectory)
        } catch {
            preconditionFailure("the built-in defaults are invalid: \(error)")
        }
    }

    // MARK: Layers

    static func readFile(_ file: String, workingDirectory: String,
                         into settings: inout [String: ConfigurationSetting]) throws(ConfigurationError) {
        let absolute = ConfigurationKey.absolutePath(file, relativeTo: workingDirectory)
        guard let data = FileManager.default.contents(atPath: absolute) else {
            let exists = FileManager.default.fileExists(atPath: absolute)
            throw ConfigurationError(.unreadableFile, exists ? "cannot read the configuration file \(file)"
                                                             : "the configuration file \(file) does not exist")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(.unreadableFile, "the configuration file \(file) is not UTF-8 text")
        }
        let document: TOMLDocument
        do {
            document = try TOMLDocument(parsing: text)
        } catch {
            throw ConfigurationError(.syntax, "\(file):\(error.line):\(error.column): \(error.message)")
        }
        for (table, line) in document.tables.sorted(by: { $0.value < $1.value }) where !sections.contains(table) {
            let nearest = nearestName(to: table, among: sections)
            throw ConfigurationError(.unknownKey, "\(file):\(line): unknown table [\(table)]"
                                     + (nearest.map { " (did you mean [\($0)]?)" } ?? ""))
        }
        for name in document.keys {
            let entry = document.entries[name]!
            let source = ConfigurationSource.file(path: file, line: entry.line)
            guard let key = keysByName[name] else {
                throw unknownKey("\(file):\(entry.line): unknown key '\(name)'", name)
            }
            settings[name] = ConfigurationSetting(value: try typed(entry.value, for: key, from: source), source: source)
        }
    }

    static func readEnvironment(_ environment: [String: String],
                                into settings: inout [String: ConfigurationSetting]) throws(ConfigurationError) {
        for (variable, text) in environment.sorted(by: { $0.key < $1.key })
        where variable.hasPrefix(environmentPrefix) && !environmentVariablesNotSettings.contains(variable) {
            let source = ConfigurationSource.environment(variable: variable)
            guard let key = keys.first(where: { $0.environmentVariable == variable.uppercased() }) else {
                let nearest = nearestName(to: variable.uppercased(), among: keys.map(\.environmentVariable))
                throw ConfigurationError(.unknownKey, "environment variable \(variable) names no setting"
                                         + (nearest.map { " (did you mean \($0)?)" } ?? ""))
            }
            settings[key.name] = ConfigurationSetting(value: try value(ofText: text, for: key, from: source), source: source)
        }
    }

    static func readOverrides(_ overrides: [String],
                              into settings: inout [String: ConfigurationSetting]) throws(ConfigurationError) {
        for argument in overrides {
            guard let equals = argument.firstIndex(of: "=") else {
                throw ConfigurationError(.badOverride, "--set \(argument): expected section.key=value")
            }
            let name = argument[..<equals].trimmingCharacters(in: .whitespaces)
            let text = String(argument[argument.index(after: equals)...])
            let source = ConfigurationSource.commandLine(argument: argument)
            guard let key = keysByName[name] else {
                throw unknownKey("--set \(argument): unknown key '\(name)'", name)
            }
            settings[key.name] = ConfigurationSetting(value: try value(ofText: text, for: key, from: source), source: source)
        }
    }

    /// Text from the environment or --set: a TOML value ("128", "true", "[1, 2]", "\"quoted\"")
    /// or else a bare string, without surrounding spaces (GLFD_LOGGING_LEVEL=debug,
    /// --set paths.state_directory=/var/lib/glfd). A key that takes a string takes any text that
    /// is not a TOML string as a bare string (--set security.allowed_clients_file=1234).
    static func value(ofText text: String, for key: ConfigurationKey, from source: ConfigurationSource)
        throws(ConfigurationError) -> TOMLValue {
        let parsed = try? TOMLDocument.parseValue(text)
        let bare = TOMLValue.string(text.trimmingCharacters(in: .whitespaces))
        if key.takesString {
            if case .string? = parsed { return parsed! }
            return bare
        }
        return try typed(parsed ?? bare, for: key, from: source)
    }

    static func typed(_ value: TOMLValue, for key: ConfigurationKey, from source: ConfigurationSource)
        throws(ConfigurationError) -> TOMLValue {
        guard let converted = key.converted(value) else {
            throw ConfigurationError(.wrongType, "\(source.location): \(key.name): expected \(key.expectation), "
                                     + "got \(value.kindDescription) (\(value.tomlText))")
        }
        return converted
    }

    static func unknownKey(_ message: String, _ name: String) -> ConfigurationError {
        let nearest = nearestName(to: name, among: keys.map(\.name))
        return ConfigurationError(.unknownKey, message + (nearest.map { " (did you mean '\($0)'?)" } ?? ""))
    }

    // MARK: The typed configuration

    static func make(_ settings: [String: ConfigurationSetting], workingDirectory: String)
        throws(ConfigurationError) -> GLFDConfiguration {
        var configuration = GLFDConfiguration()
        configuration.settings = settings
        configuration.workingDirectory = workingDirectory
        for key in keys {
            let setting = settings[key.name]!
            if let problem = key.problem(setting.value) {
                throw ConfigurationError(.invalidValue, "\(setting.source.location): \(key.name): \(problem)")
            }
            key.store(&configuration, setting.value)
        }
        for key in keys {
            key.resolve?(&configuration, workingDirectory)
        }
        for constraint in constraints {
            if let problem = constraint.problem(configuration) {
                let sources = constraint.keys.map { "\($0) from \(settings[$0]!.source)" }.joined(separator: ", ")
                throw ConfigurationError(.invalidValue, "\(problem) (\(sources))")
            }
        }
        return configuration
    }

    /// The known name closest to `name` by edit distance, ignoring case (a key under the wrong
    /// section counts as one edit away); nil when none is close enough to be a plausible typo
    /// (more than half the name would have to change).
    static func nearestName(to name: String, among names: [String]) -> String? {
        func leaf(_ name: String) -> String? {
            name.lastIndex(of: ".").map { name[name.index(after: $0)...].lowercased() }
        }
        let scored = names.map { candidate in
            let distance = editDistance(name.lowercased(), candidate.lowercased())
            let sameLeaf = leaf(name) != nil && leaf(name) == leaf(candidate)
            return (candidate, sameLeaf ? min(distance, 1) : distance)
        }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        return best.1 <= max(2, best.0.count / 2) ? best.0 : nil
    }

    /// Levenshtein distance over characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        var current = Array(repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

extension ConfigurationSource {
    /// The prefix of an error message about a value from this layer.
    var location: String {
        switch self {
        case .builtInDefault: "built-in default"
        case .file(let path, let line): "\(path):\(line)"
        case .environment(let variable): "environment variable \(variable)"
        case .commandLine(let argument): "--set \(argument)"
        }
    }
}
