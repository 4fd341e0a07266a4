// swift-tools-version:6.0
// glfd: a self-learning image embedding service. See README.md for the map of modules.
import PackageDescription

// The engine is always optimised, even in debug builds (the test suite trains real models).
// Hot loops work on raw pointers, so there are no bounds checks to pay for; preconditions stay.
let fastMath: [SwiftSetting] = [.unsafeFlags(["-O"])]

let package = Package(
    name: "glfd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "glf", targets: ["glf"]),
        .executable(name: "glfd", targets: ["glfd"]),
        .executable(name: "glfctl", targets: ["glfctl"]),
        .executable(name: "glf-bench", targets: ["glf-bench"]),
        .library(name: "Neural", targets: ["Neural"]),
        .library(name: "GLF", targets: ["GLF"]),
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "Store", targets: ["Store"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [
        // C libraries, each behind its own target.
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .systemLibrary(name: "CImageCodecs", path: "Sources/CImageCodecs"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CLMDB", path: "Sources/CLMDB"),
        .systemLibrary(name: "CZeroMQ", path: "Sources/CZeroMQ"),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .systemLibrary(name: "CNATS", path: "Sources/CNATS"),

        // The neural engine: tensors, layers (forward + backward), optimisers, weight files.
        .target(name: "Neural", dependencies: ["COpenBLAS"], swiftSettings: fastMath),

        // Decoding and resizing images: JPEG, PNG, raw pixels; limits against abuse.
        .target(name: "Imaging", dependencies: ["CImageCodecs"], swiftSettings: fastMath),

        // A thin Swift wrapper over LMDB: environment, transactions, cursors, typed errors.
        .target(name: "LMDB", dependencies: ["CLMDB"]),

        // A thin Swift wrapper over libzmq: context, sockets, multipart messages, options, poll, CURVE keys.
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),

        // A thin Swift wrapper over the NATS C client: connections to a cluster, JetStream streams,
        // publishing with headers, durable pull consumers, acknowledgements, typed errors.
        .target(name: "NATS", dependencies: ["CNATS"]),

        // The replay store: crash-safe items in LMDB, group commit, retention, replay policies.
        .target(name: "Store", dependencies: ["LMDB", "Imaging", "Neural", "CZlib"], swiftSettings: fastMath),

        // Nearest neighbours of one model version's embeddings: exact (sgemm) and approximate (HNSW).
        .target(name: "Index", dependencies: ["Neural", "CZlib"], swiftSettings: fastMath),

        // The wire protocol (protocol/PROTOCOL.md): requests, replies, announcements, their limits.
        .target(name: "Protocol"),

        // The glfd/1 client in Swift: requests matched to replies by id, pipelining, CURVE, typed errors.
        .target(name: "GLFDClient", dependencies: ["Protocol", "ZeroMQ"]),

        // The command-line tools' progress line: drawn on a terminal, silent otherwise.
        .target(name: "TerminalProgress"),

        // glfctl's pictures (knn montages, catalog maps, training curves): a canvas with a bitmap
        // font of its own, written as PNG through Imaging.
        .target(name: "Pictures", dependencies: ["Imaging"]),

        // The daemon's configuration: a TOML subset, GLFD_ environment variables, --set overrides,
        // a key table whose defaults are the daemon's parts' own, and the way from it to them.
        .target(name: "Configuration", dependencies: ["Daemon", "GLF", "GLFDClient", "Neural", "Store", "Index", "Protocol"]),

        // Logs for journald (swift-log) and metrics for Prometheus (swift-metrics): the exposition
        // text, a loopback HTTP endpoint and node_exporter's textfile, over POSIX sockets; what the
        // process holds in memory, as the kernel and the allocator count it.
        .target(name: "Observability", dependencies: ["CMalloc", .product(name: "Logging", package: "swift-log"),
                                                      .product(name: "CoreMetrics", package: "swift-metrics")]),

        // glfd's parts: the trainer loop on the replay store, model versions, the request server.
        .target(name: "Daemon", dependencies: ["Store", "GLF", "Neural", "Protocol", "Imaging", "Index", "ZeroMQ", "NATS", "GLFDClient", "Observability",
                                              .product(name: "Logging", package: "swift-log")], swiftSettings: fastMath),

        // Labelled image collections for offline training and evaluation: image folders, IDX files;
        // a collection as a stream in the orders the stream benchmark compares (i.i.d., tasks, camera).
        .target(name: "Datasets", dependencies: ["Imaging", "Neural", "CZlib"], swiftSettings: fastMath),

        // The science: GLF's aligning and constraining parts, the methods, ADC, augmentations.
        .target(name: "GLF", dependencies: ["Neural"], swiftSettings: fastMath),

        // A labelled collection streamed into a running glfd through its protocol (i.i.d., tasks,
        // camera-like), scored by kNN at checkpoints from the embeddings the daemon serves.
        .target(name: "StreamBench", dependencies: ["Datasets", "GLF", "GLFDClient", "Neural", "Protocol", "ZeroMQ"],
                swiftSettings: fastMath),

        // The offline command-line tool.
        .executableTarget(
            name: "glf",
            dependencies: ["Neural", "GLF", "Imaging", "Datasets", "Store", "TerminalProgress",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fastMath),

        // The benchmarks: the engine against the sgemm peak, the store, the index, the daemon.
        .executableTarget(
            name: "glf-bench",
            dependencies: ["Neural", "GLF", "Imaging", "Datasets", "Store", "Index", "Daemon", "GLFDClient", "GLFDTesting", "Protocol",
                           "StreamBench", "NATS", "ZeroMQ", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fastMath),

        // The daemon.
        .executableTarget(
            name: "glfd",
            dependencies: ["Daemon", "Configuration", "GLF", "Neural", "Store", "Index", "Protocol", "Observability",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fastMath),

        // The command-line client of a running glfd.
        .executableTarget(
            name: "glfctl",
            dependencies: ["GLFDClient", "Protocol", "ZeroMQ", "TerminalProgress", "Pictures", "Imaging",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // What the tests share: the finite-difference check, and a daemon's fixtures (real CIFAR-10
        // JPEGs, a small model, settings on loopback).
        .target(name: "GLFDTesting", dependencies: ["Neural", "GLF", "Daemon", "Store", "Imaging", "Datasets", "Protocol", "GLFDClient"]),

        .testTarget(name: "NeuralTests", dependencies: ["Neural", "GLFDTesting"]),
        .testTarget(name: "GLFTests", dependencies: ["GLF", "Neural", "Datasets", "GLFDTesting"]),
        // A method written only for a test, registered and trained through glfd's configuration and glf train.
        .testTarget(name: "MethodRegistryTests", dependencies: ["GLF", "Neural", "Configuration", "Daemon", "GLFDClient",
                                                                "GLFDTesting", "Protocol", "glf"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets"]),
        .testTarget(name: "LMDBTests", dependencies: ["LMDB"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        .testTarget(name: "NATSTests", dependencies: ["NATS", "GLFDTesting"]),
        .testTarget(name: "ProtocolTests", dependencies: ["Protocol"]),
        .testTarget(name: "TerminalProgressTests", dependencies: ["TerminalProgress"]),
        .testTarget(name: "PicturesTests", dependencies: ["Pictures", "Imaging", "GLFDTesting"]),
        .testTarget(name: "ConfigurationTests", dependencies: ["Configuration", "Daemon", "GLF", "Store"]),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "GLFDClient", "GLFDTesting", "Store", "GLF", "Neural", "Imaging", "Datasets", "Pictures",
                                                        "Configuration", "NATS"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "LMDB", "Imaging", "Neural"]),
        .testTarget(name: "IndexTests", dependencies: ["Index", "Neural"]),
        .testTarget(name: "StreamBenchTests", dependencies: ["StreamBench", "Datasets", "Daemon", "GLFDTesting", "Store", "GLF"]),
        .testTarget(name: "ObservabilityTests", dependencies: ["Observability", .product(name: "Logging", package: "swift-log"),
                                                             .product(name: "CoreMetrics", package: "swift-metrics")]),
    ]
)
