// The configuration as a TOML document: every key with its doc line, in the order of the key
// table; a value that differs from its default carries a trailing comment saying where it came
// from. `glfd --print-config` prints it, and systemd/glfd.toml is exactly what it prints for the
// defaults (a test holds the file to that), so the documented defaults cannot drift from the code.
extension GLFDConfiguration {
    static let describeHeader = """
        # glfd configuration. Every setting is listed with its default value, under a line saying
        # what it does and [what it accepts].
        # Layers, later ones win: built-in defaults < this file < environment variables
        # GLFD_<SECTION>_<KEY> (GLFD_SERVER_REQUEST_ENDPOINT) < glfd --set section.key=value.
        # Relative paths: paths.store and paths.models are under paths.state_directory, the others
        # under glfd's working directory. `glfd --print-config` prints the effective configuration in
        # this form, naming where each value that is not the default came from.
        # The syntax is a subset of TOML: [section] headers, key = value, "strings", 'literal strings',
        # integers, floats, true/false, [arrays] and # comments.
        """

    /// The effective configuration as TOML; parsing it back gives the same configuration.
    public func describe() -> String {
        var lines = [Self.describeHeader]
        for section in Self.sections {
            lines.append("")
            lines.append("[\(section)]")
            for key in Self.keys where key.section == section {
                let setting = settings[key.name] ?? ConfigurationSetting(value: key.defaultValue, source: .builtInDefault)
                lines.append(key.docComment)
                var line = "\(key.leaf) = \(setting.value.tomlText)"
                if setting.value != key.defaultValue {
                    line += "  # from \(setting.source); default \(key.defaultValue.tomlText)"
                }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
