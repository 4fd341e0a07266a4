// Model versions on disk: a publication is complete or absent, numbers only grow, the last K are
// kept, and what an interrupted publication left behind is never taken for a version.
import Daemon
import Foundation
import GLFDTesting
import Testing

@Suite struct ModelVersionsTests {
    @Test func publicationsAreNumberedKeptAndFoundAgain() throws {
        let directory = temporaryDaemonDirectory()
        let versions = try ModelVersions(directory: directory, keep: 3)
        #expect(versions.latest == nil && versions.nextVersion == 1)
        for step in [10, 20, 30, 40, 50] {
            try versions.publish(step: step, metrics: ["loss": Double(step)]) { staging in
                try Data("weights of step \(step)".utf8).write(to: staging.appendingPathComponent("model.safetensors"))
            }
        }
        #expect(versions.all.map(\.version) == [3, 4, 5])
        #expect(versions.latest?.step == 50 && versions.latest?.metrics == ["loss": 50])
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names == ["000003", "000004", "000005"])
        let weights = try String(contentsOfFile: versions.latest!.path + "/model.safetensors", encoding: .utf8)
        #expect(weights == "weights of step 50")

        let reopened = try ModelVersions(directory: directory, keep: 3)
        #expect(reopened.all == versions.all)
        #expect(reopened.nextVersion == 6)
    }

    @Test func whatAnInterruptedPublicationLeftIsNeverAVersion() throws {
        let directory = temporaryDaemonDirectory()
        let versions = try ModelVersions(directory: directory, keep: 5)
        try versions.publish(step: 1, metrics: [:]) { _ in }
        // A staging directory (killed mid-write) and a final name without stats.json (not ours).
        let files = FileManager.default
        try files.createDirectory(at: directory.appendingPathComponent(".staging-000002-999"), withIntermediateDirectories: true)
        try files.createDirectory(at: directory.appendingPathComponent("000009"), withIntermediateDirectories: true)
        let reopened = try ModelVersions(directory: directory, keep: 5)
        #expect(reopened.all.map(\.version) == [1])
        #expect(!files.fileExists(atPath: directory.appendingPathComponent(".staging-000002-999").path))
    }

    @Test func aFailedWriteLeavesNoVersionBehind() throws {
        struct DiskTrouble: Error {}
        let directory = temporaryDaemonDirectory()
        let versions = try ModelVersions(directory: directory, keep: 2)
        #expect(throws: ModelVersionError.self) {
            try versions.publish(step: 5, metrics: [:]) { _ in throw DiskTrouble() }
        }
        #expect(versions.latest == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }
}
