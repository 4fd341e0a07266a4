// The table of every setting: name, field, default, what it accepts, and the doc line that
// systemd/glfd.toml and `glfd --print-config` show above it. Adding a setting is adding a field to
// GLFDConfiguration and one line here (then regenerating systemd/glfd.toml, see its test).
// Sections appear in the file in the order of `sections`, keys in the order of this table.
extension GLFDConfiguration {
    public static let sections = ["paths", "server", "store", "training", "models", "index", "logging", "metrics", "security"]

    public static let keys: [ConfigurationKey] = [
        // paths.state_directory comes first: the other paths are resolved against it.
        .path("paths.state_directory", \.paths.stateDirectory, "state", relativeTo: .workingDirectory,
              "Directory of the daemon's state, relative to the working directory"),
        .path("paths.store", \.paths.store, "store", relativeTo: .stateDirectory,
              "The replay store (an LMDB environment), relative to state_directory"),
        .path("paths.models", \.paths.models, "models", relativeTo: .stateDirectory,
              "Published model versions, relative to state_directory"),

        .string("server.request_endpoint", \.server.requestEndpoint, "tcp://127.0.0.1:5555", .zeroMQEndpoint,
                "Where the ROUTER socket for requests binds"),
        .string("server.announce_endpoint", \.server.announceEndpoint, "tcp://127.0.0.1:5556", .zeroMQEndpoint,
                "Where the PUB socket for model announcements binds"),
        .integer("server.send_high_water_mark", \.server.sendHighWaterMark, 1000, .atLeast(1),
                 "Outgoing messages queued per peer before ZeroMQ drops or blocks (ZMQ_SNDHWM)"),
        .integer("server.receive_high_water_mark", \.server.receiveHighWaterMark, 1000, .atLeast(1),
                 "Incoming messages queued per peer before ZeroMQ stops reading (ZMQ_RCVHWM)"),
        .integer("server.max_inflight_ingests_per_client", \.server.maxInflightIngestsPerClient, 8, .atLeast(1),
                 "Ingests of one client being stored at once; more are answered busy"),
        .integer("server.max_message_bytes", \.server.maxMessageBytes, 64 << 20, .atLeast(1),
                 "Largest request in bytes, all frames together; a larger one is answered too_large (one frame over 17 MiB disconnects the peer: ZMQ_MAXMSGSIZE)"),

        .choice("store.durability", \.store.durability, .sync,
                "When an ingest is acknowledged: sync = flushed to disk, fast = committed, flushed within a second"),
        .integer("store.max_items", \.store.maxItems, 0, .atLeast(0),
                 "Retention: beyond this many items the oldest are evicted; 0 = unlimited"),
        .integer("store.max_bytes", \.store.maxBytes, 0, .atLeast(0),
                 "Retention: beyond this many bytes of records the oldest are evicted; 0 = unlimited"),
        .integer("store.initial_map_mib", \.store.initialMapMiB, 64, .atLeast(1),
                 "Initial size of the LMDB map in MiB; it doubles when full"),
        .integer("store.max_map_mib", \.store.maxMapMiB, 65536, .atLeast(1),
                 "Largest size of the LMDB map in MiB; beyond it ingest is refused with store_full"),
        .choice("store.replay_policy", \.store.replayPolicy, .fifo,
                "What the trainer replays: the newest items, a uniform sample of the stream, or the least redundant"),
        .integer("store.replay_capacity", \.store.replayCapacity, 65536, .atLeast(1),
                 "Items in the replay set the trainer samples its batches from"),
        .integer("store.canonical_side", \.store.canonicalSide, 32, .atLeast(1),
                 "Side in pixels of the square every image is resized to; fixed when the store is created"),
        .integer("store.channels", \.store.channels, 3, .oneOf([1, 3]),
                 "Channels of stored images, 1 grey or 3 RGB; fixed when the store is created"),

        .boolean("training.enabled", \.training.enabled, true,
                 "Learn from the stream; false serves the latest model without training"),
        .choice("training.method", \.training.method, .simclr,
                "Self-supervised method"),
        .boolean("training.adc", \.training.adc, true,
                 "Add Adaptive Distribution Calibration (DCM and LPM terms) to the method's loss"),
        .float("training.adc_dcm_weight", \.training.adcDCMWeight, 0.0, .nonNegative,
               "Weight of ADC's distribution calibration term (DCM)"),
        .float("training.adc_lpm_weight", \.training.adcLPMWeight, 1.0, .nonNegative,
               "Weight of ADC's input-space neighbourhood term (LPM)"),
        .choice("training.adc_bandwidth", \.training.adcBandwidth, .perplexity,
                "How each anchor's width σ_i (DCM's Gaussian; a tied Student-t follows it) is set each step: by perplexity, from the anchor's mean distance, or fixed"),
        .float("training.adc_perplexity", \.training.adcPerplexity, 30.0, .positive,
               "Perplexity of each anchor's Gaussian target (adc_bandwidth = perplexity), above 1"),
        .float("training.adc_distance_scale", \.training.adcDistanceScale, 0.25, .positive,
               "σ_i² over the anchor's mean squared distance (adc_bandwidth = distance-scale)"),
        .float("training.adc_sigma", \.training.adcSigma, 1.0, .positive,
               "Width σ of DCM's Gaussian target over projection distances (adc_bandwidth = fixed)"),
        .float("training.adc_rho", \.training.adcRho, 3.0, .positive,
               "Degrees of freedom ρ of ADC's Student-t model; above 2 with a tied scale"),
        .choice("training.adc_t_scale", \.training.adcScale, .tied,
                "Scale of the Student-t: tied to σ_i (same spread as the Gaussian) or unit"),
        .choice("training.adc_entropy_weights", \.training.adcEntropyWeights, .dcm,
                "Which ADC terms the 1/H(π) anchor weights multiply (outlier anchors count less)"),
        .choice("training.adc_lpm_direction", \.training.lpmDirection, .priorFirst,
                "LPM's divergence: KL(prior ‖ model) or KL(model ‖ prior)"),
        .float("training.adc_tau_in", \.training.adcInputTemperature, 0.5, .positive,
               "Temperature τ_in of LPM's input-space neighbourhoods"),
        .choice("training.lpm_prior", \.training.lpmPrior, .pixels,
                "LPM's input space: down-sampled pixels, or a frozen earlier model's embeddings"),
        .integer("training.width", \.training.width, 32, .atLeast(1),
                 "Encoder width: channels of the ResNet's first stage"),
        .integer("training.batch", \.training.batch, 256, .atLeast(2),
                 "Images per training step (two augmented views of each)"),
        .choice("training.optimiser", \.training.optimiser, .sgd,
                "Optimiser"),
        .float("training.learning_rate", \.training.learningRate, 0.5, .positive,
               "Peak learning rate, reached after the warm-up"),
        .float("training.weight_decay", \.training.weightDecay, 5e-4, .nonNegative,
               "Weight decay"),
        .integer("training.warmup_steps", \.training.warmupSteps, 100, .atLeast(0),
                 "Steps of linear learning-rate warm-up"),
        .float("training.average_decay", \.training.averageDecay, 0.998, .fraction,
               "Published versions hold an exponential moving average of the weights with this decay per step (0 = the weights themselves)"),
        .float("training.updates_per_image", \.training.updatesPerImage, 32.0, .nonNegative,
               "Training budget: times each ingested image is drawn into a batch, on average; 0 = no training"),
        .integer("training.min_items", \.training.minItems, 512, .atLeast(1),
                 "Stored items needed before training starts"),
        .integer("training.threads", \.training.threads, 2, .atLeast(1),
                 "Threads the trainer uses; at its nice value, so queries still come first"),
        .integer("training.seed", \.training.seed, 0, .atLeast(0),
                 "Seed of initialisation, sampling and augmentations"),
        .integer("training.nice", \.training.nice, 10, .atLeast(0),
                 "Scheduling niceness of the trainer's thread: queries come first"),

        .integer("models.publish_every_steps", \.models.publishEverySteps, 500, .atLeast(1),
                 "Publish a model version after this many training steps"),
        .integer("models.publish_every_seconds", \.models.publishEverySeconds, 600, .atLeast(1),
                 "Publish a model version at least this often while training, in seconds"),
        .integer("models.publish_when_idle_seconds", \.models.publishWhenIdleSeconds, 30, .atLeast(0),
                 "Once training has idled this long (update budget spent, too few images), publish the steps since the last version"),
        .integer("models.keep", \.models.keep, 5, .atLeast(1),
                 "Model versions kept on disk; older ones are deleted"),

        .boolean("index.approximate", \.index.approximate, true,
                 "Answer knn from an HNSW index once the store is large; false = always exact"),
        .integer("index.approximate_min_items", \.index.approximateMinItems, 20000, .atLeast(0),
                 "Items from which the HNSW index is used; fewer are searched exactly"),
        .integer("index.hnsw_m", \.index.hnswM, 16, .atLeast(2),
                 "HNSW: links per node"),
        .integer("index.hnsw_ef_construction", \.index.hnswEFConstruction, 200, .atLeast(1),
                 "HNSW: candidates considered when inserting"),
        .integer("index.hnsw_ef_search", \.index.hnswEFSearch, 64, .atLeast(1),
                 "HNSW: candidates considered when searching; at least k are"),
        .integer("index.build_threads", \.index.buildThreads, 2, .atLeast(1),
                 "Threads that embed the stored items under a newly published version"),

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
