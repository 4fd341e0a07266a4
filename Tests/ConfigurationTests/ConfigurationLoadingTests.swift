// How glfd's configuration is put together, as an executable spec: the defaults; the layers
// (default < file < environment < --set) and the provenance of each value; what an operator sees
// for a misspelt key, a wrong type or an invalid value, always naming where the value came from.
import Configuration
import Foundation
import Testing

/// A configuration file in a fresh temporary directory, which is also the working directory.
struct TemporaryConfiguration {
    let directory: String
    let file: String

    init(_ text: String) throws {
        directory = FileManager.default.temporaryDirectory.path + "/glfd-configuration-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        file = directory + "/glfd.toml"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
    }

    func load(environment: [String: String] = [:], overrides: [String] = []) throws -> GLFDConfiguration {
        try GLFDConfiguration.load(file: file, environment: environment, overrides: overrides, workingDirectory: directory)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// The error `load` throws, or nil when it does not throw.
func loadError(file: String? = nil, environment: [String: String] = [:], overrides: [String] = [],
               text: String? = nil) -> ConfigurationError? {
    do {
        if let text {
            let temporary = try TemporaryConfiguration(text)
            defer { temporary.remove() }
            _ = try GLFDConfiguration.load(file: "glfd.toml", environment: environment, overrides: overrides,
                                           workingDirectory: temporary.directory)
        } else {
            _ = try GLFDConfiguration.load(file: file, environment: environment, overrides: overrides, workingDirectory: "/srv")
        }
        return nil
    } catch let error as ConfigurationError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

@Suite struct ConfigurationLoadingTests {
    @Test func defaultsWorkOutOfTheBox() {
        let configuration = GLFDConfiguration.defaults(workingDirectory: "/srv/glfd")
        #expect(configuration.paths.stateDirectory == "/srv/glfd/state")
        #expect(configuration.paths.store == "/srv/glfd/state/store")
        #expect(configuration.paths.models == "/srv/glfd/state/models")
        #expect(configuration.server.requestEndpoint == "tcp://127.0.0.1:5555")
        #expect(configuration.server.announceEndpoint == "tcp://127.0.0.1:5556")
        #expect(configuration.server.sendHighWaterMark == 1000 && configuration.server.receiveHighWaterMark == 1000)
        #expect(configuration.server.maxInflightIngestsPerClient == 8)
        #expect(configuration.server.maxMessageBytes == 67_108_864)
        #expect(configuration.index.buildThreads == 2)
        #expect(configuration.store.durability == .sync)
        #expect(configuration.store.maxItems == 0 && configuration.store.maxBytes == 0)
        #expect(configuration.store.initialMapMiB == 64 && configuration.store.maxMapMiB == 65536)
        #expect(configuration.store.replayPolicy == .reservoir && configuration.store.replayCapacity == 65536)
        #expect(configuration.store.canonicalSide == 32 && configuration.store.channels == 3)
        #expect(configuration.training.enabled && configuration.training.method == .simclr && configuration.training.adc)
        #expect(configuration.training.adcDCMWeight == 0 && configuration.training.adcLPMWeight == 1)
        #expect(configuration.training.adcSigma == 1 && configuration.training.lpmPrior == .pixels)
        #expect(configuration.training.width == 32 && configuration.training.batch == 256)
        #expect(configuration.training.optimiser == .sgd)
        #expect(configuration.training.learningRate == 0.5 && configuration.training.weightDecay == 5e-4)
        #expect(configuration.training.warmupSteps == 100 && configuration.training.updatesPerImage == 32)
        #expect(configuration.training.averageDecay == 0.998)
        #expect(configuration.training.minItems == 512 && configuration.training.threads == 2)
        #expect(configuration.training.seed == 0)
        #expect(configuration.models.publishEverySteps == 500 && configuration.models.publishEverySeconds == 600)
        #expect(configuration.models.keep == 5)
        #expect(configuration.index.approximate && configuration.index.approximateMinItems == 20000)
        #expect(configuration.index.hnswM == 16 && configuration.index.hnswEFConstruction == 200)
        #expect(configuration.index.hnswEFSearch == 64)
        #expect(configuration.logging.level == .info)
        #expect(configuration.metrics.endpoint == "127.0.0.1:9464" && configuration.metrics.textfile == "")
        #expect(!configuration.security.curve)
        #expect(configuration.security.serverSecretKeyFile == "" && configuration.security.allowedClientsFile == "")
        #expect(configuration.settings.count == GLFDConfiguration.keys.count)
        #expect(configuration.settings.values.allSatisfy { $0.source == .builtInDefault })
    }

    @Test func everyKeyIsDescribedOnce() {
        let names = GLFDConfiguration.keys.map(\.name)
        #expect(Set(names).count == names.count)
        for key in GLFDConfiguration.keys {
            #expect(GLFDConfiguration.sections.contains(key.section), "\(key.name)")
            #expect(!key.doc.isEmpty && !key.doc.contains("\n"), "\(key.name)")
            #expect(key.converted(key.defaultValue) == key.defaultValue, "\(key.name)")
        }
        #expect(GLFDConfiguration.keys.first { $0.name == "server.request_endpoint" }?.environmentVariable
                == "GLFD_SERVER_REQUEST_ENDPOINT")
    }

    @Test func laterLayersWinAndEachValueKeepsItsSource() throws {
        let temporary = try TemporaryConfiguration("""
            [training]
            batch = 128
            width = 64
            learning_rate = 0.1

            [logging]
            level = "debug"
            """)
        defer { temporary.remove() }
        let configuration = try temporary.load(
            environment: ["GLFD_TRAINING_WIDTH": "16", "GLFD_TRAINING_LEARNING_RATE": "0.2", "GLFD_LOGGING_LEVEL": "warning",
                          "HOME": "/root", "PATH": "/usr/bin"],
            overrides: ["training.learning_rate=0.3", "logging.level=error", "logging.level=trace"])

        #expect(configuration.training.batch == 128)          // file
        #expect(configuration.training.width == 16)           // environment over file
        #expect(configuration.training.learningRate == 0.3)   // --set over environment over file
        #expect(configuration.logging.level == .trace)        // the last --set wins
        #expect(configuration.training.minItems == 512)       // default

        #expect(configuration.settings["training.batch"]?.source == .file(path: temporary.file, line: 2))
        #expect(configuration.settings["training.width"]?.source == .environment(variable: "GLFD_TRAINING_WIDTH"))
        #expect(configuration.settings["training.learning_rate"]?.source == .commandLine(argument: "training.learning_rate=0.3"))
        #expect(configuration.settings["logging.level"]?.source == .commandLine(argument: "logging.level=trace"))
        #expect(configuration.settings["training.min_items"]?.source == .builtInDefault)
    }

    @Test func environmentAndOverrideTextIsATOMLValueOrABareString() throws {
        let configuration = try GLFDConfiguration.load(
            file: nil,
            environment: ["GLFD_SERVER_REQUEST_ENDPOINT": "tcp://0.0.0.0:7000",     // bare string
                          "GLFD_METRICS_ENDPOINT": "",                               // "" disables
                          "GLFD_TRAINING_ENABLED": "false",
                          "GLFD_TRAINING_ADC_SIGMA": "2",                            // an integer is a float here
                          "GLFD_CONFIG": "/etc/glfd/glfd.toml"],                     // not a setting: ignored
            overrides: ["paths.state_directory=\"/var/lib/glfd\"",                  // a quoted TOML string
                        "store.durability=fast", " training.method = barlow-twins",
                        "security.allowed_clients_file=1234"],                      // a string key takes any text
            workingDirectory: "/srv")
        #expect(configuration.server.requestEndpoint == "tcp://0.0.0.0:7000")
        #expect(configuration.metrics.endpoint == "")
        #expect(!configuration.training.enabled)
        #expect(configuration.training.adcSigma == 2)
        #expect(configuration.settings["training.adc_sigma"]?.value == .float(2))
        #expect(configuration.paths.stateDirectory == "/var/lib/glfd")
        #expect(configuration.paths.store == "/var/lib/glfd/store")
        #expect(configuration.store.durability == .fast)
        #expect(configuration.training.method == .barlowTwins)
        #expect(configuration.security.allowedClientsFile == "/srv/1234")
    }

    @Test func relativePathsAreResolved() throws {
        let configuration = try GLFDConfiguration.load(
            file: nil, environment: [:],
            overrides: ["paths.state_directory=../var//glfd/.", "paths.store=/mnt/big/store", "paths.models=old/../models",
                        "metrics.textfile=metrics/glfd.prom", "security.curve=true", "security.server_secret_key_file=keys/server"],
            workingDirectory: "/srv/app")
        #expect(configuration.paths.stateDirectory == "/srv/var/glfd")
        #expect(configuration.paths.store == "/mnt/big/store")
        #expect(configuration.paths.models == "/srv/var/glfd/models")
        #expect(configuration.metrics.textfile == "/srv/app/metrics/glfd.prom")
        #expect(configuration.security.serverSecretKeyFile == "/srv/app/keys/server")
        #expect(configuration.workingDirectory == "/srv/app")
        // describe() shows the paths as configured, not resolved.
        #expect(configuration.describe().contains("state_directory = \"../var//glfd/.\""))
    }

    @Test func aMissingFileIsAnError() {
        let error = loadError(file: "/nonexistent/glfd.toml")
        #expect(error?.code == .unreadableFile)
        #expect(error?.message == "the configuration file /nonexistent/glfd.toml does not exist")
    }

    @Test func syntaxErrorsNameTheFileLineAndColumn() {
        let error = loadError(text: "[server]\nrequest_endpoint = { host = \"x\" }\n")
        #expect(error?.code == .syntax)
        #expect(error?.message.hasPrefix("glfd.toml:2:20: inline tables ({...}) are not supported") == true, "\(String(describing: error))")
    }

    // MARK: Unknown keys

    @Test func unknownKeysSuggestTheNearestKnownOne() {
        let inFile = loadError(text: "[server]\nrequest_endpont = \"tcp://127.0.0.1:1\"\n")
        #expect(inFile?.code == .unknownKey)
        #expect(inFile?.message == "glfd.toml:2: unknown key 'server.request_endpont' (did you mean 'server.request_endpoint'?)")

        let wrongSection = loadError(text: "[server]\ndurability = \"fast\"\n")
        #expect(wrongSection?.message == "glfd.toml:2: unknown key 'server.durability' (did you mean 'store.durability'?)")

        let outsideAnySection = loadError(text: "state_directory = \"/x\"\n")
        #expect(outsideAnySection?.message == "glfd.toml:1: unknown key 'state_directory' (did you mean 'paths.state_directory'?)")

        let table = loadError(text: "[trainig]\nbatch = 4\n")
        #expect(table?.code == .unknownKey)
        #expect(table?.message == "glfd.toml:1: unknown table [trainig] (did you mean [training]?)")

        let environment = loadError(environment: ["GLFD_TRAINING_BACH": "4"])
        #expect(environment?.code == .unknownKey)
        #expect(environment?.message == "environment variable GLFD_TRAINING_BACH names no setting (did you mean GLFD_TRAINING_BATCH?)")

        let override = loadError(overrides: ["index.hnsw_ef_serch=10"])
        #expect(override?.code == .unknownKey)
        #expect(override?.message == "--set index.hnsw_ef_serch=10: unknown key 'index.hnsw_ef_serch' (did you mean 'index.hnsw_ef_search'?)")

        let nothingClose = loadError(overrides: ["colour.scheme=dark"])
        #expect(nothingClose?.message == "--set colour.scheme=dark: unknown key 'colour.scheme'")
    }

    @Test func anOverrideMustBeKeyEqualsValue() {
        let error = loadError(overrides: ["training.batch"])
        #expect(error?.code == .badOverride)
        #expect(error?.message == "--set training.batch: expected section.key=value")
    }

    // MARK: Types

    @Test func wrongTypesNameTheKeyTheLayerAndTheExpectedType() {
        let inFile = loadError(text: "[training]\n\nbatch = \"256\"\n")
        #expect(inFile?.code == .wrongType)
        #expect(inFile?.message == "glfd.toml:3: training.batch: expected an integer >= 2, got a string (\"256\")")

        let floatForInteger = loadError(text: "[models]\nkeep = 2.5\n")
        #expect(floatForInteger?.message == "glfd.toml:2: models.keep: expected an integer >= 1, got a float (2.5)")

        let stringForPath = loadError(text: "[paths]\nstate_directory = 5\n")
        #expect(stringForPath?.message == "glfd.toml:2: paths.state_directory: expected a non-empty path, got an integer (5)")

        let environment = loadError(environment: ["GLFD_TRAINING_ADC": "yes"])
        #expect(environment?.code == .wrongType)
        #expect(environment?.message == "environment variable GLFD_TRAINING_ADC: training.adc: expected true or false, got a string (\"yes\")")

        let override = loadError(overrides: ["training.learning_rate=fast"])
        #expect(override?.message == "--set training.learning_rate=fast: training.learning_rate: expected a number > 0, got a string (\"fast\")")

        let array = loadError(overrides: ["store.channels=[1, 3]"])
        #expect(array?.message == "--set store.channels=[1, 3]: store.channels: expected 1 or 3, got an array ([1, 3])")
    }

    // MARK: Validation

    struct InvalidSetting: Sendable, CustomTestStringConvertible {
        var overrides: [String]
        var message: String
        var testDescription: String { overrides.joined(separator: " ") }
    }

    static let invalidSettings: [InvalidSetting] = [
        InvalidSetting(overrides: ["training.batch=1"], message: "--set training.batch=1: training.batch: must be an integer >= 2, got 1"),
        InvalidSetting(overrides: ["models.keep=0"], message: "--set models.keep=0: models.keep: must be an integer >= 1, got 0"),
        InvalidSetting(overrides: ["store.channels=2"], message: "--set store.channels=2: store.channels: must be 1 or 3, got 2"),
        InvalidSetting(overrides: ["store.max_items=-1"], message: "--set store.max_items=-1: store.max_items: must be an integer >= 0, got -1"),
        InvalidSetting(overrides: ["store.durability=slow"],
                       message: "--set store.durability=slow: store.durability: must be sync or fast, got \"slow\""),
        InvalidSetting(overrides: ["training.method=moco"],
                       message: "--set training.method=moco: training.method: must be byol, barlow-twins, swav or simclr, got \"moco\""),
        InvalidSetting(overrides: ["logging.level=verbose"],
                       message: "--set logging.level=verbose: logging.level: must be trace, debug, info, notice, warning, error or critical, got \"verbose\""),
        InvalidSetting(overrides: ["training.updates_per_image=-1"],
                       message: "--set training.updates_per_image=-1: training.updates_per_image: must be a number >= 0, got -1.0"),
        InvalidSetting(overrides: ["training.average_decay=1"],
                       message: "--set training.average_decay=1: training.average_decay: must be a number >= 0 and < 1, got 1.0"),
        InvalidSetting(overrides: ["training.weight_decay=-1e-4"],
                       message: "--set training.weight_decay=-1e-4: training.weight_decay: must be a number >= 0, got -0.0001"),
        InvalidSetting(overrides: ["server.request_endpoint="],
                       message: "--set server.request_endpoint=: server.request_endpoint: must not be empty; expected a ZeroMQ endpoint: tcp://host:port, ipc://path, ..."),
        InvalidSetting(overrides: ["server.request_endpoint=127.0.0.1:5555"],
                       message: "--set server.request_endpoint=127.0.0.1:5555: server.request_endpoint: has no transport; expected a ZeroMQ endpoint: tcp://host:port, ipc://path, ..."),
        InvalidSetting(overrides: ["server.announce_endpoint=http://x:1"],
                       message: "--set server.announce_endpoint=http://x:1: server.announce_endpoint: unknown transport 'http' (known: tcp, ipc, inproc, pgm, epgm, vmci, ws, wss, udp)"),
        InvalidSetting(overrides: ["server.request_endpoint=tcp://127.0.0.1:99999"],
                       message: "--set server.request_endpoint=tcp://127.0.0.1:99999: server.request_endpoint: '99999' is not a port; expected a number from 1 to 65535"),
        InvalidSetting(overrides: ["metrics.endpoint=localhost"],
                       message: "--set metrics.endpoint=localhost: metrics.endpoint: 'localhost' has no port; expected host:port"),
        InvalidSetting(overrides: ["paths.state_directory="],
                       message: "--set paths.state_directory=: paths.state_directory: must not be empty; expected a non-empty path"),
        InvalidSetting(overrides: ["store.initial_map_mib=128", "store.max_map_mib=64"],
                       message: "store.initial_map_mib must not exceed store.max_map_mib (store.initial_map_mib from --set store.initial_map_mib=128, store.max_map_mib from --set store.max_map_mib=64)"),
        InvalidSetting(overrides: ["server.announce_endpoint=tcp://127.0.0.1:5555"],
                       message: "server.request_endpoint and server.announce_endpoint must differ (server.request_endpoint from default, server.announce_endpoint from --set server.announce_endpoint=tcp://127.0.0.1:5555)"),
        InvalidSetting(overrides: ["security.curve=true"],
                       message: "security.curve = true needs security.server_secret_key_file (security.curve from --set security.curve=true, security.server_secret_key_file from default)"),
    ]

    @Test(arguments: invalidSettings)
    func invalidValuesAreRefusedWithTheirSource(_ invalid: InvalidSetting) {
        let error = loadError(overrides: invalid.overrides)
        #expect(error?.code == .invalidValue)
        #expect(error?.message == invalid.message)
    }

    @Test func validationAppliesToTheEffectiveValueAndNamesItsLayer() throws {
        // A bad value in the file is fine when a later layer replaces it...
        let temporary = try TemporaryConfiguration("[training]\nbatch = 1\n")
        defer { temporary.remove() }
        #expect(try temporary.load(environment: ["GLFD_TRAINING_BATCH": "8"]).training.batch == 8)
        // ...and otherwise reported at its line.
        #expect(loadError(text: "[training]\nbatch = 1\n")?.message == "glfd.toml:2: training.batch: must be an integer >= 2, got 1")
        #expect(loadError(environment: ["GLFD_MODELS_KEEP": "0"])?.message
                == "environment variable GLFD_MODELS_KEEP: models.keep: must be an integer >= 1, got 0")
    }

    // MARK: describe()

    @Test func describeNamesTheSourceOfEveryNonDefaultValue() throws {
        let temporary = try TemporaryConfiguration("[training]\nbatch = 128\nwidth = 32\n")
        defer { temporary.remove() }
        let configuration = try temporary.load(environment: ["GLFD_LOGGING_LEVEL": "debug"],
                                               overrides: ["metrics.endpoint=\"\"", "training.adc_sigma=0.5"])
        let lines = configuration.describe().split(separator: "\n")
        #expect(lines.contains("batch = 128  # from \(temporary.file):2; default 256"))
        #expect(lines.contains("width = 32"))  // set by the file, but the default value: no comment
        #expect(lines.contains("level = \"debug\"  # from environment GLFD_LOGGING_LEVEL; default \"info\""))
        #expect(lines.contains("endpoint = \"\"  # from --set metrics.endpoint=\"\"; default \"127.0.0.1:9464\""))
        #expect(lines.contains("adc_sigma = 0.5  # from --set training.adc_sigma=0.5; default 1.0"))
    }

    @Test func describeReadsBackAsTheSameConfiguration() throws {
        let original = try GLFDConfiguration.load(
            file: nil, environment: ["GLFD_SERVER_REQUEST_ENDPOINT": "ipc:///run/glfd/requests"],
            overrides: ["training.method=swav", "training.learning_rate=1e-3", "store.max_items=1_000_000",
                        "metrics.textfile=/var/lib/node_exporter/glfd.prom", "paths.models=\"models with \\\"quotes\\\"\""],
            workingDirectory: "/srv")
        let temporary = try TemporaryConfiguration(original.describe())
        defer { temporary.remove() }
        let reread = try GLFDConfiguration.load(file: temporary.file, environment: [:], overrides: [], workingDirectory: "/srv")
        #expect(reread == original)
        #expect(reread.paths.models == "/srv/state/models with \"quotes\"")
        #expect(reread.settings.mapValues(\.value) == original.settings.mapValues(\.value))
    }
}
