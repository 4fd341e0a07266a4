// The durability contract under SIGKILL: a real `glf store ingest` process stores real CIFAR-10
// JPEGs and prints each id once its commit is durable; the test kills it at random moments, reopens
// the store, and checks that every acknowledged id is there with exactly the image of its file, that
// every record passes its checksum, and that ids run without gaps (nothing half-written is visible).
import Foundation
import Imaging
import Neural
import Store
import Testing

@Suite struct CrashTests {
    /// `glf`, built beside this test bundle by `swift test`.
    static var glf: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("glf").path
    }

    @Test func everyAcknowledgedItemSurvivesSIGKILL() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.glf), "\(Self.glf) is not built")
        let files = try cifarJPEGs(perClass: 3)
        let directory = temporaryStoreDirectory()
        var acknowledged: [UInt64: String] = [:]
        var rng = SeededGenerator(seed: 2026)
        var killedMidStream = 0
        for trial in 0..<6 {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: Self.glf)
            child.arguments = ["store", "ingest", "--state", directory, "--side", "32", "--batch", "16",
                               "--repeat", "2000"] + files
            let output = Pipe()
            child.standardOutput = output
            child.standardError = FileHandle.nullDevice
            try child.run()
            // Kill after a random number of acknowledged lines (so the kill lands mid-stream, not
            // before the first commit), plus a random few milliseconds.
            let linesBeforeKill = 50 + Int(rng.next() % 1500)
            var buffer = Data(), lines = 0
            let handle = output.fileHandleForReading
            while lines < linesBeforeKill {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                lines = buffer.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
            }
            usleep(UInt32(rng.next() % 20_000))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            buffer.append(handle.readDataToEndOfFile())
            #expect(child.terminationReason == .uncaughtSignal, "trial \(trial): the child finished before the kill")
            if child.terminationReason == .uncaughtSignal { killedMidStream += 1 }
            for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n") {
                let fields = line.split(separator: "\t")
                // The last line may be cut by the kill: only whole lines count as acknowledged.
                guard fields.count == 2, let id = UInt64(fields[0]), files.contains(String(fields[1])) else { continue }
                acknowledged[id] = String(fields[1])
            }

            let store = try ImageStore(StoreConfiguration(directory: directory))
            let statistics = store.statistics
            #expect(try store.verify() == statistics.items, "trial \(trial)")
            #expect(UInt64(statistics.items) == statistics.nextID - 1, "trial \(trial): ids have gaps")
            let ids = acknowledged.keys.sorted()
            let items = try store.items(ids)
            let decoder = IngestDecoder(canonical: CanonicalShape())
            var expected: [String: DecodedImage] = [:]
            for (id, item) in zip(ids, items) {
                let path = acknowledged[id]!
                guard let item else {
                    Issue.record("trial \(trial): acknowledged id \(id) (\(path)) is missing")
                    continue
                }
                if expected[path] == nil {
                    expected[path] = try decoder.item(encoded: [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))).image
                }
                #expect(item.image == expected[path], "trial \(trial): id \(id) is not the image of \(path)")
                #expect(String(decoding: item.metadata, as: UTF8.self) == path)
            }
            store.close()
        }
        #expect(killedMidStream >= 5)
        #expect(acknowledged.count > 500, "only \(acknowledged.count) acknowledgements over all trials")
    }
}
