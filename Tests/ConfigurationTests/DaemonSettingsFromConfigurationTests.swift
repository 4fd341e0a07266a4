// From glfd's configuration to the daemon's parts, and back: the key table's defaults are read
// from the parts, so a configuration of nothing but defaults builds exactly the parts as they are
// built with no configuration (one recipe for glfd, the tests, the benchmarks and `glf train`).
// Every choice a setting accepts reaches the part as written, and every other value of every
// choice key is an error naming the key: nothing falls back to a default.
import Configuration
import Daemon
import Foundation
import GLF
import Store
import Testing

@Suite struct DaemonSettingsFromConfigurationTests {
    func settings(_ overrides: String...) throws -> DaemonSettings {
        try DaemonSettings(try GLFDConfiguration.load(file: nil, environment: [:], overrides: overrides, workingDirectory: "/srv"))
    }

    @Test func theDefaultsBuildTheShippedParts() throws {
        let configured = try settings()
        let shipped = DaemonSettings(stateDirectory: URL(fileURLWithPath: "/srv/state"))
        #expect(configured.stateDirectory.path == shipped.stateDirectory.path)
        #expect(configured.modelsDirectory.path == shipped.modelsDirectory.path)
        #expect(configured.store == shipped.store)
        #expect(configured.server == shipped.server)
        #expect(configured.training == shipped.training)
        #expect(configured.trainingEnabled == shipped.trainingEnabled)
        #expect(configured.trainer == shipped.trainer)
        #expect(configured.keepVersions == shipped.keepVersions)
        #expect(configured.catalog == shipped.catalog)
        #expect(configured.jetStream == shipped.jetStream && !configured.jetStream.isEnabled)
        #expect(configured.replica == shipped.replica && !configured.replica.isEnabled)
    }

    @Test func jetStreamAndReplicaSettingsReachTheDaemonAndAReplicaMayNotTrain() throws {
        let replica = try settings("ingest.jetstream_servers=nats://10.0.0.1:4222,nats://10.0.0.2:4222", "ingest.jetstream_consumer=replica-1",
                                   "ingest.jetstream_replicas=3", "ingest.jetstream_batch=64", "ingest.jetstream_ack_wait=5",
                                   "replica.follow=tcp://10.0.0.9:5555", "replica.poll_seconds=0.5", "training.enabled=false")
        #expect(replica.jetStream.servers == ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"])
        #expect(replica.jetStream.consumer == "replica-1" && replica.jetStream.replicas == 3 && replica.jetStream.batch == 64)
        #expect(replica.jetStream.ackWaitSeconds == 5 && replica.replica.follow == "tcp://10.0.0.9:5555" && replica.replica.pollSeconds == 0.5)
        let training = #expect(throws: ConfigurationError.self) { try settings("replica.follow=tcp://10.0.0.9:5555") }
        #expect(training?.code == .invalidValue && training?.message.contains("training.enabled = false") == true)
        #expect(throws: ConfigurationError.self) { try settings("ingest.jetstream_servers=10.0.0.1:4222") }
        #expect(throws: ConfigurationError.self) { try settings("ingest.jetstream_servers=nats://10.0.0.1") }
    }

    @Test func aReplicasCurveKeysReachItsFollower() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("glfd-replica-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let trainerKey = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", replicaKey = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
        try "# the trainer's public key\n\(trainerKey)\n".write(to: directory.appendingPathComponent("trainer.pub"), atomically: true, encoding: .utf8)
        try "\(replicaKey)\n".write(to: directory.appendingPathComponent("replica.key"), atomically: true, encoding: .utf8)
        func replica(_ keys: String...) throws -> DaemonSettings {
            try DaemonSettings(try GLFDConfiguration.load(file: nil, environment: [:],
                                                          overrides: ["replica.follow=tcp://10.0.0.9:5555", "training.enabled=false"] + keys,
                                                          workingDirectory: directory.path))
        }
        #expect(try replica().replica.curve == nil)
        let keyed = try replica("replica.trainer_public_key_file=trainer.pub", "replica.secret_key_file=replica.key")
        #expect(keyed.replica.curve?.serverPublicKey == trainerKey && keyed.replica.curve?.secretKey == replicaKey)
        let alone = #expect(throws: ConfigurationError.self) { try replica("replica.trainer_public_key_file=trainer.pub") }
        #expect(alone?.message.contains("go together") == true, "\(String(describing: alone))")
    }

    @Test func everyChoiceOfEverySettingReachesTheDaemonAsWritten() throws {
        for method in MethodName.allCases {
            #expect(try settings("training.method=\(method.rawValue)").training.method == method)
        }
        for optimiser in OptimiserConfig.Kind.allCases {
            #expect(try settings("training.optimiser=\(optimiser.rawValue)").training.optimiser.kind == optimiser)
        }
        for policy in ReplayPolicyKind.allCases {
            #expect(try settings("store.replay_policy=\(policy.rawValue)").store.replay.policy == policy)
        }
        for bandwidth in ADCBandwidth.allCases {
            #expect(try settings("training.adc_bandwidth=\(bandwidth.rawValue)").training.adc?.bandwidth == bandwidth)
        }
        for weights in ADCEntropyWeighting.allCases {
            #expect(try settings("training.adc_entropy_weights=\(weights.rawValue)").training.adc?.entropyWeights == weights)
        }
        for direction in LPMDirection.allCases {
            #expect(try settings("training.adc_lpm_direction=\(direction.rawValue)").training.adc?.lpmDirection == direction)
        }
        #expect(try settings("training.adc_t_scale=unit").training.adc?.tiedScale == false)
        #expect(try settings("training.lpm_prior=previous").trainer.priorFromPreviousVersion)
        #expect(try settings("store.durability=fast").store.durability == .syncOnDemand)
    }

    @Test func everyChoiceKeyRefusesAValueItDoesNotList() throws {
        let choiceKeys = GLFDConfiguration.keys.filter { if case .choice = $0.type { true } else { false } }
        #expect(choiceKeys.count >= 10)
        for key in choiceKeys {
            do {
                _ = try settings("\(key.name)=no-such-choice")
                Issue.record("\(key.name) accepted no-such-choice")
            } catch let error as ConfigurationError {
                #expect(error.description.contains(key.name) && error.description.contains("no-such-choice"), "\(error)")
            }
        }
    }
}
