// Everything a daemon is built from: where its state lives and each part's settings. Its initial
// values are glfd's defaults (the configuration's key table reads them).
import Foundation
import GLF
import Store

public struct DaemonSettings: Sendable {
    public var stateDirectory: URL
    public var store: StoreConfiguration
    public var server = ServerSettings()
    public var training = TrainingConfig()
    public var trainingEnabled = true
    public var trainer = ContinuousTrainer.Settings()
    public var keepVersions = 5
    public var catalog = CatalogSettings()
    /// Ingest from a NATS JetStream stream besides the ZeroMQ socket; off by default.
    public var jetStream = JetStreamIngest.Settings()
    /// A serve-only replica follows a trainer's versions (`replica.follow`); off by default.
    public var replica = ReplicaFollower.Settings()

    /// glfd's defaults (its configuration's key table reads them) on `stateDirectory`.
    public init(stateDirectory: URL) {
        self.stateDirectory = stateDirectory
        store = StoreConfiguration(directory: stateDirectory.appendingPathComponent(Self.storeFolder).path)
        // Reservoir, from the stream comparison (README, "Learning from streams"): on a camera-like
        // and a class-incremental CIFAR-10 stream it kept every class and lost at most 0.4 points
        // to the best policy of each, where fifo lost 4 on both and minred 2.4 on the camera.
        store.replay.policy = .reservoir
        modelsDirectory = stateDirectory.appendingPathComponent(Self.modelsFolder)
    }

    /// Where the store and the published versions live by default, inside the state directory.
    public static let storeFolder = "store"
    public static let modelsFolder = "models"
    public static let catalogFolder = "catalog"

    public var modelsDirectory: URL
    var snapshotDirectory: URL { stateDirectory.appendingPathComponent("training") }
    /// Each kept version's catalog embeddings (`<version>.index`), so a restart need not re-embed.
    var catalogDirectory: URL { stateDirectory.appendingPathComponent(Self.catalogFolder) }
}
