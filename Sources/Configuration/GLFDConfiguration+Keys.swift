// The table of every setting: name, field, default, what it accepts, and the doc line that
// systemd/glfd.toml and `glfd --print-config` show above it. Adding a setting is adding a field to
// GLFDConfiguration and one line here (then regenerating systemd/glfd.toml, see its test).
// Sections appear in the file in the order of `sections`, keys in the order of this table.
//
// A default is defined once, beside the code that uses it: the table reads the daemon's parts as
// they are built with no configuration (`shipped`), so glfd on an empty file, `DaemonSettings` in
// a test or a benchmark, and `glf train`'s starting point are one recipe. Only what no part holds
// (the state directory, logging, metrics, security) is written here.
import Daemon
import Foundation
import GLF
import Store

extension GLFDConfiguration {
    /// glfd's parts with no configuration: where the table's defaults come from.
    private static let shipped = DaemonSettings(stateDirectory: URL(fileURLWithPath: "state"))
    private static let shippedADC = shipped.training.adc ?? AdaptiveDistributionCalibration()

    /// A Float setting as the decimal it was written as (0.998, not 0.99800002574920654).
    private static func decimal(_ value: Float) -> Double { Double(String(value))! }

    public static let sections = ["paths", "server", "store", "training", "models", "index", "ingest", "replica", "logging", "metrics", "security"]

    public static let keys: [ConfigurationKey] = [
        // paths.state_directory comes first: the other paths are resolved against it.
        .path("paths.state_directory", \.paths.stateDirectory, "state", relativeTo: .workingDirectory,
              "Directory of the daemon's state, relative to the working directory"),
        .path("paths.store", \.paths.store, DaemonSettings.storeFolder, relativeTo: .stateDirectory,
              "The replay store (an LMDB environment), relative to state_directory"),
        .path("paths.models", \.paths.models, DaemonSettings.modelsFolder, relativeTo: .stateDirectory,
              "Published model versions, relative to state_directory"),

        .string("server.request_endpoint", \.server.requestEndpoint, shipped.server.requestEndpoint, .zeroMQEndpoint,
                "Where the ROUTER socket for requests binds"),
        .string("server.announce_endpoint", \.server.announceEndpoint, shipped.server.announceEndpoint, .zeroMQEndpoint,
                "Where the PUB socket for model announcements binds"),
        .integer("server.send_high_water_mark", \.server.sendHighWaterMark, Int(shipped.server.sendHighWaterMark), .atLeast(1),
                 "Outgoing messages queued per peer before ZeroMQ drops or blocks (ZMQ_SNDHWM)"),
        .integer("server.receive_high_water_mark", \.server.receiveHighWaterMark, Int(shipped.server.receiveHighWaterMark), .atLeast(1),
                 "Incoming messages queued per peer before ZeroMQ stops reading (ZMQ_RCVHWM)"),
        .integer("server.max_inflight_ingests_per_client", \.server.maxInflightIngestsPerClient, shipped.server.maxInflightIngestsPerClient, .atLeast(1),
                 "Ingests of one client being stored at once; more are answered busy"),
        .integer("server.max_message_bytes", \.server.maxMessageBytes, shipped.server.limits.maxRequestBytes, .atLeast(1),
                 "Largest request in bytes, all frames together; a larger one is answered too_large (one frame over 17 MiB disconnects the peer: ZMQ_MAXMSGSIZE)"),

        .choice("store.durability", \.store.durability, shipped.store.durability == .syncOnCommit ? .sync : .fast,
                "When an ingest is acknowledged: sync = flushed to disk, fast = committed, flushed within a second"),
        .integer("store.max_items", \.store.maxItems, shipped.store.maxItems ?? 0, .atLeast(0),
                 "Retention: beyond this many items the oldest are evicted; 0 = unlimited"),
        .integer("store.max_bytes", \.store.maxBytes, shipped.store.maxBytes ?? 0, .atLeast(0),
                 "Retention: beyond this many bytes of records the oldest are evicted; 0 = unlimited"),
        .integer("store.initial_map_mib", \.store.initialMapMiB, shipped.store.initialMapSize >> 20, .atLeast(1),
                 "Initial size of the LMDB map in MiB; it doubles when full"),
        .integer("store.max_map_mib", \.store.maxMapMiB, shipped.store.maxMapSize >> 20, .atLeast(1),
                 "Largest size of the LMDB map in MiB; beyond it ingest is refused with store_full"),
        .choice("store.replay_policy", \.store.replayPolicy, shipped.store.replay.policy,
                "What the trainer replays: the newest items, a uniform sample of the stream, the least redundant, or a uniform sample thinned of the most redundant"),
        .integer("store.replay_capacity", \.store.replayCapacity, shipped.store.replay.capacity, .atLeast(1),
                 "Items in the replay set the trainer samples its batches from"),
        .integer("store.canonical_side", \.store.canonicalSide, shipped.store.canonical.side, .atLeast(1),
                 "Side in pixels of the square every image is resized to; fixed when the store is created"),
        .integer("store.channels", \.store.channels, shipped.store.canonical.channels, .oneOf([1, 3]),
                 "Channels of stored images, 1 grey or 3 RGB; fixed when the store is created"),

        .boolean("training.enabled", \.training.enabled, shipped.trainingEnabled,
                 "Learn from the stream; false serves the latest model without training"),
        .choice("training.method", \.training.method, shipped.training.method,
                listed: MethodRegistry.shipped.map { $0.name },
                "Self-supervised method"),
        .boolean("training.adc", \.training.adc, shipped.training.adc != nil,
                 "Add Adaptive Distribution Calibration (DCM and LPM terms) to the method's loss"),
        .float("training.adc_dcm_weight", \.training.adcDCMWeight, decimal(shippedADC.dcmWeight), .nonNegative,
               "Weight of ADC's distribution calibration term (DCM)"),
        .float("training.adc_lpm_weight", \.training.adcLPMWeight, decimal(shippedADC.lpmWeight), .nonNegative,
               "Weight of ADC's input-space neighbourhood term (LPM)"),
        .choice("training.adc_bandwidth", \.training.adcBandwidth, shippedADC.bandwidth,
                "How each anchor's width σ_i (DCM's Gaussian; a tied Student-t follows it) is set each step: by perplexity, from the anchor's mean distance, or fixed"),
        .float("training.adc_perplexity", \.training.adcPerplexity, decimal(shippedADC.perplexity), .positive,
               "Perplexity of each anchor's Gaussian target (adc_bandwidth = perplexity), above 1"),
        .float("training.adc_distance_scale", \.training.adcDistanceScale, decimal(shippedADC.distanceScale), .positive,
               "σ_i² over the anchor's mean squared distance (adc_bandwidth = distance-scale)"),
        .float("training.adc_sigma", \.training.adcSigma, decimal(shippedADC.sigma), .positive,
               "Width σ of DCM's Gaussian target over projection distances (adc_bandwidth = fixed)"),
        .float("training.adc_rho", \.training.adcRho, decimal(shippedADC.rho), .positive,
               "Degrees of freedom ρ of ADC's Student-t model; above 2 with a tied scale"),
        .choice("training.adc_t_scale", \.training.adcScale, shippedADC.tiedScale ? .tied : .unit,
                "Scale of the Student-t: tied to σ_i (same spread as the Gaussian) or unit"),
        .choice("training.adc_entropy_weights", \.training.adcEntropyWeights, shippedADC.entropyWeights,
                "Which ADC terms the 1/H(π) anchor weights multiply (outlier anchors count less)"),
        .choice("training.adc_lpm_direction", \.training.lpmDirection, shippedADC.lpmDirection,
                "LPM's divergence: KL(prior ‖ model) or KL(model ‖ prior)"),
        .float("training.adc_tau_in", \.training.adcInputTemperature, decimal(shippedADC.inputTemperature), .positive,
               "Temperature τ_in of LPM's input-space neighbourhoods"),
        .choice("training.lpm_prior", \.training.lpmPrior, shipped.trainer.priorFromPreviousVersion ? .previous : .pixels,
                "LPM's input space: down-sampled pixels, or a frozen earlier model's embeddings"),
        .integer("training.width", \.training.width, shipped.training.encoder.width, .atLeast(1),
                 "Encoder width: channels of the ResNet's first stage"),
        .integer("training.batch", \.training.batch, shipped.training.batch, .atLeast(2),
                 "Images per training step (two augmented views of each)"),
        .choice("training.optimiser", \.training.optimiser, shipped.training.optimiser.kind,
                "Optimiser"),
        .float("training.learning_rate", \.training.learningRate, decimal(shipped.training.optimiser.learningRate), .positive,
               "Peak learning rate, reached after the warm-up"),
        .float("training.weight_decay", \.training.weightDecay, decimal(shipped.training.optimiser.weightDecay), .nonNegative,
               "Weight decay"),
        .integer("training.warmup_steps", \.training.warmupSteps, shipped.training.optimiser.warmupSteps, .atLeast(0),
                 "Steps of linear learning-rate warm-up"),
        .float("training.average_decay", \.training.averageDecay, decimal(shipped.training.averageDecay ?? 0), .fraction,
               "Published versions hold an exponential moving average of the weights with this decay per step (0 = the weights themselves)"),
        .float("training.updates_per_image", \.training.updatesPerImage, shipped.trainer.updatesPerImage, .nonNegative,
               "Training budget: times each ingested image is drawn into a batch, on average; 0 = no training"),
        .integer("training.min_items", \.training.minItems, shipped.trainer.minItems, .atLeast(1),
                 "Stored items needed before training starts"),
        .integer("training.threads", \.training.threads, shipped.training.workers, .atLeast(1),
                 "Threads the trainer uses; at its nice value, so queries still come first"),
        .integer("training.seed", \.training.seed, Int(shipped.training.seed), .atLeast(0),
                 "Seed of initialisation, sampling and augmentations"),
        .integer("training.nice", \.training.nice, Int(shipped.trainer.nice), .atLeast(0),
                 "Scheduling niceness of the trainer's thread: queries come first"),

        .integer("models.publish_every_steps", \.models.publishEverySteps, shipped.trainer.publishEverySteps, .atLeast(1),
                 "Publish a model version after this many training steps"),
        .integer("models.publish_every_seconds", \.models.publishEverySeconds, Int(shipped.trainer.publishEverySeconds), .atLeast(1),
                 "Publish a model version at least this often while training, in seconds"),
        .integer("models.publish_when_idle_seconds", \.models.publishWhenIdleSeconds, Int(shipped.trainer.publishWhenIdleSeconds), .atLeast(0),
                 "Once training has idled this long (update budget spent, too few images), publish the steps since the last version"),
        .integer("models.keep", \.models.keep, shipped.keepVersions, .atLeast(1),
                 "Model versions kept on disk; older ones are deleted"),

        .boolean("index.approximate", \.index.approximate, shipped.catalog.approximate,
                 "Answer knn from an HNSW index once the store is large; false = always exact"),
        .integer("index.approximate_min_items", \.index.approximateMinItems, shipped.catalog.approximateMinItems, .atLeast(0),
                 "Items from which the HNSW index is used; fewer are searched exactly"),
        .integer("index.hnsw_m", \.index.hnswM, shipped.catalog.hnsw.m, .atLeast(2),
                 "HNSW: links per node"),
        .integer("index.hnsw_ef_construction", \.index.hnswEFConstruction, shipped.catalog.hnsw.efConstruction, .atLeast(1),
                 "HNSW: candidates considered when inserting"),
        .integer("index.hnsw_ef_search", \.index.hnswEFSearch, shipped.catalog.hnsw.efSearch, .atLeast(1),
                 "HNSW: candidates considered when searching; at least k are"),
        .integer("index.build_threads", \.index.buildThreads, shipped.catalog.buildThreads, .atLeast(1),
                 "Threads that embed the stored items under a newly published version"),
        .float("index.rebuild_share", \.index.rebuildShare, shipped.catalog.rebuildShare, .share,
               "Share of the time catalog rebuilds for new versions may take: after a rebuild of t seconds the next waits t × (1/share − 1), and versions published meanwhile are skipped for the newest; 1 = back to back"),
        .integer("index.drift_window", \.index.driftWindow, shipped.catalog.drift.window, .atLeast(1),
                 "Drift (status's drift): sampled new items whose mean distance to the replay set the score averages"),
        .integer("index.drift_neighbour", \.index.driftNeighbour, shipped.catalog.drift.neighbour, .atLeast(1),
                 "Drift: distances are to the k-th nearest replay member, so up to k - 1 copies of a scene (a camera) do not count as near"),
        .float("index.drift_alert_score", \.index.driftAlertScore, shipped.catalog.drift.alertScore, .nonNegative,
               "Drift score at which an alert goes out on the PUB socket (topic drift), and settled when it falls back; 0 = never"),

        .string("ingest.jetstream_servers", \.ingest.jetStreamServers, shipped.jetStream.servers.joined(separator: ","), .natsServersOrEmpty,
                "NATS servers of a JetStream cluster to ingest from besides the ZeroMQ socket (nats://host:port, comma-separated); \"\" = off"),
        .string("ingest.jetstream_stream", \.ingest.jetStreamStream, shipped.jetStream.stream, .nonEmpty,
                "JetStream stream glfd reads images from (created with jetstream_replicas replicas if missing)"),
        .string("ingest.jetstream_subject_prefix", \.ingest.jetStreamSubjectPrefix, shipped.jetStream.subjectPrefix, .nonEmpty,
                "Subjects of the images: this prefix, then the source tag (glfd.ingest.<source>)"),
        .string("ingest.jetstream_consumer", \.ingest.jetStreamConsumer, shipped.jetStream.consumer, .nonEmpty,
                "Durable consumer name; every glfd reading the stream (trainer, each replica) needs its own"),
        .integer("ingest.jetstream_replicas", \.ingest.jetStreamReplicas, shipped.jetStream.replicas, .atLeast(1),
                 "Replicas of the stream when glfd creates it (3 on a three-node cluster)"),
        .integer("ingest.jetstream_batch", \.ingest.jetStreamBatch, shipped.jetStream.batch, .atLeast(1),
                 "Messages fetched, stored in one commit and acknowledged at a time"),
        .float("ingest.jetstream_ack_wait", \.ingest.jetStreamAckWaitSeconds, shipped.jetStream.ackWaitSeconds, .positive,
               "Seconds after which a message fetched and not acknowledged is delivered again"),

        .string("replica.follow", \.replica.follow, shipped.replica.follow, .zeroMQEndpointOrEmpty,
                "A serve-only replica: the request endpoint of the trainer whose versions it serves, each once its own catalog of it is built (needs training.enabled = false); \"\" = not a replica"),
        .float("replica.poll_seconds", \.replica.pollSeconds, shipped.replica.pollSeconds, .positive,
               "How often a replica asks its trainer for its latest version"),
        .path("replica.trainer_public_key_file", \.replica.trainerPublicKeyFile, "", relativeTo: .workingDirectory, optional: true,
              "CURVE to a trainer with security.curve = true: the trainer's public key (Z85, glfctl keygen's NAME.pub); needs replica.secret_key_file"),
        .path("replica.secret_key_file", \.replica.secretKeyFile, "", relativeTo: .workingDirectory, optional: true,
              "CURVE: this replica's secret key (Z85, glfctl keygen's NAME.key); its public key goes on the trainer's security.allowed_clients_file"),

        .choice("logging.level", \.logging.level, .info,
                "Least severe level logged"),

        .string("metrics.endpoint", \.metrics.endpoint, "127.0.0.1:9464", .hostPortOrEmpty,
                "Address of the Prometheus metrics endpoint (HTTP)"),
        .path("metrics.textfile", \.metrics.textfile, "", relativeTo: .workingDirectory, optional: true,
              "Metrics file for node_exporter's textfile collector, rewritten periodically"),

        .boolean("security.curve", \.security.curve, false,
                 "Encrypt and authenticate with ZeroMQ CURVE; needs server_secret_key_file"),
        .path("security.server_secret_key_file", \.security.serverSecretKeyFile, "", relativeTo: .workingDirectory,
              optional: true, "The server's CURVE secret key (Z85, one line); needed when curve = true"),
        .path("security.allowed_clients_file", \.security.allowedClientsFile, "", relativeTo: .workingDirectory,
              optional: true, "CURVE public keys (Z85) allowed to connect, one per line; none = any client with a key"),
    ]

    /// Rules that involve more than one key, checked on the effective values.
    static let constraints: [ConfigurationConstraint] = [
        ConfigurationConstraint(["store.initial_map_mib", "store.max_map_mib"]) { configuration in
            configuration.store.initialMapMiB <= configuration.store.maxMapMiB
                ? nil : "store.initial_map_mib must not exceed store.max_map_mib"
        },
        ConfigurationConstraint(["server.request_endpoint", "server.announce_endpoint"]) { configuration in
            // A wildcard port (tcp://127.0.0.1:*) binds a free port for each: equal text is fine then.
            let request = configuration.server.requestEndpoint
            return request != configuration.server.announceEndpoint || request.hasSuffix(":*")
                ? nil : "server.request_endpoint and server.announce_endpoint must differ"
        },
        ConfigurationConstraint(["security.curve", "security.server_secret_key_file"]) { configuration in
            !configuration.security.curve || !configuration.security.serverSecretKeyFile.isEmpty
                ? nil : "security.curve = true needs security.server_secret_key_file"
        },
        ConfigurationConstraint(["replica.trainer_public_key_file", "replica.secret_key_file"]) { configuration in
            configuration.replica.trainerPublicKeyFile.isEmpty == configuration.replica.secretKeyFile.isEmpty
                ? nil : "replica.trainer_public_key_file and replica.secret_key_file go together (CURVE to the trainer)"
        },
    ]

    static let keysByName: [String: ConfigurationKey] = Dictionary(uniqueKeysWithValues: keys.map { ($0.name, $0) })
}

struct ConfigurationConstraint: Sendable {
    let keys: [String]
    let problem: @Sendable (GLFDConfiguration) -> String?

    init(_ keys: [String], _ problem: @escaping @Sendable (GLFDConfiguration) -> String?) {
        self.keys = keys
        self.problem = problem
    }
}
