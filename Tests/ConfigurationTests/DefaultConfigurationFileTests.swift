// systemd/glfd.toml, the installed default configuration, is exactly what describe() prints for the
// built-in defaults, and reads back as them: the documentation cannot drift from the code. After
// adding or changing a setting, regenerate the file with
//     REGENERATE_GLFD_TOML=1 swift test --filter DefaultConfigurationFileTests
import Configuration
import Foundation
import Testing

@Suite struct DefaultConfigurationFileTests {
    /// <repository>/systemd/glfd.toml, found from this file's path.
    static let defaultFile = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("systemd/glfd.toml").path

    @Test func theInstalledFileIsWhatDescribePrintsForTheDefaults() throws {
        let expected = GLFDConfiguration.defaults(workingDirectory: "/").describe()
        if ProcessInfo.processInfo.environment["REGENERATE_GLFD_TOML"] == "1" {
            try expected.write(toFile: Self.defaultFile, atomically: true, encoding: .utf8)
        }
        let installed = try String(contentsOfFile: Self.defaultFile, encoding: .utf8)
        #expect(installed == expected, "systemd/glfd.toml is stale; regenerate it (see this test file's header)")
    }

    @Test func theInstalledFileReadsBackAsTheDefaults() throws {
        let loaded = try GLFDConfiguration.load(file: Self.defaultFile, environment: [:], overrides: [], workingDirectory: "/srv")
        #expect(loaded == GLFDConfiguration.defaults(workingDirectory: "/srv"))
        #expect(loaded.settings.mapValues(\.value) == GLFDConfiguration.defaults().settings.mapValues(\.value))
        // Every key is in the file, with its doc line above it.
        let document = try TOMLDocument(parsing: try String(contentsOfFile: Self.defaultFile, encoding: .utf8))
        #expect(document.keys == GLFDConfiguration.keys.map(\.name))
        let lines = try String(contentsOfFile: Self.defaultFile, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        for key in GLFDConfiguration.keys {
            let entry = try #require(document.entries[key.name])
            #expect(lines[entry.line - 2] == "# \(key.doc) [\(key.expectation)]", "\(key.name)")
        }
    }

    @Test func defaultsDescribeTheSameWhateverTheWorkingDirectory() {
        #expect(GLFDConfiguration.defaults(workingDirectory: "/a").describe()
                == GLFDConfiguration.defaults(workingDirectory: "/b/c").describe())
        #expect(GLFDConfiguration.defaults(workingDirectory: "/a") != GLFDConfiguration.defaults(workingDirectory: "/b"))
    }
}
