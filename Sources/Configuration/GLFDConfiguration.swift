// The daemon's configuration, typed: one struct per [section] of the file, one field per key.
//
// A configuration is only made by `GLFDConfiguration.load` (or `defaults`), which fills these
// fields from the key table in GLFDConfiguration+Keys.swift — that table holds every default,
// range and doc line; the initial values written below are placeholders it always overwrites.
// A choice is typed with the enum of the part that runs it (GLF's MethodName, Store's
// ReplayPolicyKind, …), so the values a setting accepts are exactly the ones the daemon knows.
// The fields are read-only outside this module so that `describe()` always tells the truth about
// what the daemon runs with; change a setting with an override (`--set section.key=value`).
//
// Paths are absolute: relative ones are resolved when loading, `paths.store` and `paths.models`
// against `paths.state_directory`, everything else against the working directory.
import GLF
import Store

public struct GLFDConfiguration: Sendable, Equatable {
    public struct Paths: Sendable, Equatable {
        public internal(set) var stateDirectory = ""
        public internal(set) var store = ""
        public internal(set) var models = ""
    }

    public struct Server: Sendable, Equatable {
        public internal(set) var requestEndpoint = ""
        public internal(set) var announceEndpoint = ""
        public internal(set) var sendHighWaterMark = 0
        public internal(set) var receiveHighWaterMark = 0
        public internal(set) var maxInflightIngestsPerClient = 0
        public internal(set) var maxMessageBytes = 0
    }

    public struct Store: Sendable, Equatable {
        public enum Durability: String, Sendable, CaseIterable {
            /// Acknowledged once flushed to disk.
            case sync
            /// Acknowledged once committed; flushed every second (a machine crash can lose that second).
            case fast
        }

        public internal(set) var durability = Durability.sync
        /// 0 = unlimited.
        public internal(set) var maxItems = 0
        /// 0 = unlimited.
        public internal(set) var maxBytes = 0
        public internal(set) var initialMapMiB = 0
        public internal(set) var maxMapMiB = 0
        public internal(set) var replayPolicy = ReplayPolicyKind.fifo
        public internal(set) var replayCapacity = 0
        public internal(set) var canonicalSide = 0
        public internal(set) var channels = 0
    }

    public struct Training: Sendable, Equatable {
        public enum LPMPrior: String, Sendable, CaseIterable {
            /// Down-sampled, standardised pixels of the same images.
            case pixels
            /// Embeddings of the same images by a frozen earlier model.
            case previous
        }

        /// The Student-t's scale: tied to σ_i (s_i² = σ_i²(ρ−2)/ρ), or 1.
        public enum ADCScale: String, Sendable, CaseIterable {
            case tied, unit
        }

        public internal(set) var enabled = false
        public internal(set) var method = MethodName.simclr
        public internal(set) var adc = false
        public internal(set) var adcDCMWeight = 0.0
        public internal(set) var adcLPMWeight = 0.0
        public internal(set) var adcSigma = 0.0
        public internal(set) var adcBandwidth = ADCBandwidth.perplexity
        public internal(set) var adcPerplexity = 0.0
        public internal(set) var adcDistanceScale = 0.0
        public internal(set) var adcRho = 0.0
        public internal(set) var adcScale = ADCScale.tied
        public internal(set) var adcEntropyWeights = ADCEntropyWeighting.dcm
        public internal(set) var lpmDirection = LPMDirection.priorFirst
        public internal(set) var adcInputTemperature = 0.0
        public internal(set) var lpmPrior = LPMPrior.pixels
        public internal(set) var width = 0
        public internal(set) var batch = 0
        public internal(set) var optimiser = OptimiserConfig.Kind.sgd
        public internal(set) var learningRate = 0.0
        public internal(set) var weightDecay = 0.0
        public internal(set) var warmupSteps = 0
        public internal(set) var averageDecay = 0.0
        public internal(set) var updatesPerImage = 0.0
        public internal(set) var minItems = 0
        public internal(set) var threads = 0
        public internal(set) var seed = 0
        public internal(set) var nice = 0
    }

    public struct Models: Sendable, Equatable {
        public internal(set) var publishEverySteps = 0
        public internal(set) var publishEverySeconds = 0
        public internal(set) var publishWhenIdleSeconds = 0
        public internal(set) var keep = 0
    }

    public struct Index: Sendable, Equatable {
        public internal(set) var approximate = false
        public internal(set) var approximateMinItems = 0
        public internal(set) var hnswM = 0
        public internal(set) var hnswEFConstruction = 0
        public internal(set) var hnswEFSearch = 0
        public internal(set) var buildThreads = 0
        public internal(set) var rebuildShare = 0.0
        public internal(set) var driftWindow = 0
        public internal(set) var driftNeighbour = 0
        public internal(set) var driftAlertScore = 0.0
    }

    public struct Ingest: Sendable, Equatable {
        /// Comma-separated nats:// URLs; "" when JetStream ingest is off.
        public internal(set) var jetStreamServers = ""
        public internal(set) var jetStreamStream = ""
        public internal(set) var jetStreamSubjectPrefix = ""
        public internal(set) var jetStreamConsumer = ""
        public internal(set) var jetStreamReplicas = 0
        public internal(set) var jetStreamBatch = 0
        public internal(set) var jetStreamAckWaitSeconds = 0.0
    }

    public struct Replica: Sendable, Equatable {
        /// The trainer's request endpoint; "" when this daemon is not a replica.
        public internal(set) var follow = ""
        public internal(set) var pollSeconds = 0.0
        /// "" when not set.
        public internal(set) var trainerPublicKeyFile = ""
        /// "" when not set.
        public internal(set) var secretKeyFile = ""
    }

    public struct Logging: Sendable, Equatable {
        /// The levels of swift-log's `Logger.Level`, by the same names.
        public enum Level: String, Sendable, CaseIterable {
            case trace, debug, info, notice, warning, error, critical
        }

        public internal(set) var level = Level.info
    }

    public struct Metrics: Sendable, Equatable {
        /// host:port of the Prometheus endpoint; "" when disabled.
        public internal(set) var endpoint = ""
        /// File for node_exporter's textfile collector; "" when disabled.
        public internal(set) var textfile = ""
    }

    public struct Security: Sendable, Equatable {
        public internal(set) var curve = false
        /// "" when not set.
        public internal(set) var serverSecretKeyFile = ""
        /// "" when not set.
        public internal(set) var allowedClientsFile = ""
    }

    public internal(set) var paths = Paths()
    public internal(set) var server = Server()
    public internal(set) var store = Store()
    public internal(set) var training = Training()
    public internal(set) var models = Models()
    public internal(set) var index = Index()
    public internal(set) var ingest = Ingest()
    public internal(set) var replica = Replica()
    public internal(set) var logging = Logging()
    public internal(set) var metrics = Metrics()
    public internal(set) var security = Security()

    /// Every key's effective value as configured (paths as written, not resolved) and where it
    /// came from; `describe()` prints these.
    public internal(set) var settings: [String: ConfigurationSetting] = [:]
    /// The directory relative paths were resolved against.
    public internal(set) var workingDirectory = "/"

    init() {}

    /// Equal when the daemon would run the same: the typed sections (with resolved paths) match,
    /// wherever their values came from.
    public static func == (lhs: GLFDConfiguration, rhs: GLFDConfiguration) -> Bool {
        lhs.paths == rhs.paths && lhs.server == rhs.server && lhs.store == rhs.store
            && lhs.training == rhs.training && lhs.models == rhs.models && lhs.index == rhs.index && lhs.ingest == rhs.ingest && lhs.replica == rhs.replica
            && lhs.logging == rhs.logging && lhs.metrics == rhs.metrics && lhs.security == rhs.security
    }
}
