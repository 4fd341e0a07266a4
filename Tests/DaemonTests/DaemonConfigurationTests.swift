// From glfd's configuration to the daemon's parts: every choice a setting accepts is one the daemon
// can run (the configuration's enums mirror the parts' own), so none falls back silently to
// something else; ADC's settings arrive as written.
import Configuration
import Daemon
import Foundation
import GLF
import Testing
@testable import glfd

@Suite struct DaemonConfigurationTests {
    func settings(_ overrides: String...) throws -> DaemonSettings {
        try DaemonSettings(try GLFDConfiguration.load(file: nil, environment: [:], overrides: overrides))
    }

    @Test func everyChoiceOfEverySettingReachesTheDaemonAsWritten() throws {
        for method in GLFDConfiguration.Training.Method.allCases {
            #expect(try settings("training.method=\(method.rawValue)").training.method.rawValue == method.rawValue)
        }
        for optimiser in GLFDConfiguration.Training.Optimiser.allCases {
            #expect(try settings("training.optimiser=\(optimiser.rawValue)").training.optimiser.kind.rawValue == optimiser.rawValue)
        }
        for policy in GLFDConfiguration.Store.ReplayPolicy.allCases {
            #expect(try settings("store.replay_policy=\(policy.rawValue)").store.replay.policy.rawValue == policy.rawValue)
        }
        for bandwidth in GLFDConfiguration.Training.ADCBandwidth.allCases {
            #expect(try settings("training.adc_bandwidth=\(bandwidth.rawValue)").training.adc?.bandwidth.rawValue == bandwidth.rawValue)
        }
        for weights in GLFDConfiguration.Training.ADCEntropyWeights.allCases {
            #expect(try settings("training.adc_entropy_weights=\(weights.rawValue)").training.adc?.entropyWeights.rawValue == weights.rawValue)
        }
        for direction in GLFDConfiguration.Training.LPMDirection.allCases {
            #expect(try settings("training.adc_lpm_direction=\(direction.rawValue)").training.adc?.lpmDirection.rawValue == direction.rawValue)
        }
    }

    @Test func aChoiceTheDaemonDoesNotKnowIsAnErrorNamingTheKey() {
        enum Configured: String { case known, unknown }
        enum Part: String { case known }
        #expect((try? choice(Configured.known, "training.method") as Part) == .known)
        #expect(throws: ConfigurationError.self) { _ = try choice(Configured.unknown, "training.method") as Part }
        do {
            _ = try choice(Configured.unknown, "training.method") as Part
        } catch {
            #expect(error.description.contains("training.method") && error.description.contains("unknown"))
        }
    }
}
