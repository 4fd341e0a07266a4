// A full disk, for real: the store lives on a 2 MiB tmpfs. Ingest goes until the file system
// refuses a commit; that batch fails with `.diskFull` and is not acknowledged, everything
// acknowledged before reads back whole, and deleting items lets ingest go on. Mounting needs root,
// as CI runs it; elsewhere the test is skipped (and says so).
import Foundation
import Store
import Testing

private let canMount = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/mount")

@Suite struct DiskFullTests {
    @Test(.enabled(if: canMount, "mounting a tmpfs needs root"))
    func aFullFileSystemRefusesIngestAndLosesNothing() async throws {
        let mountPoint = temporaryStoreDirectory()
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        try #require(shell("/usr/bin/mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint) == 0)
        defer { _ = shell("/usr/bin/umount", "-l", mountPoint) }

        var configuration = smallConfiguration(mountPoint + "/store", side: 32)
        configuration.initialMapSize = 64 << 20  // the map is not the limit: the disk is
        let store = try ImageStore(configuration)
        var acknowledged: [UInt64] = []
        var refusal: StoreError?
        for batch in 0..<400 {
            do {
                acknowledged += try await store.ingest((0..<8).map { patternItem(batch * 8 + $0, side: 32) })
            } catch {
                refusal = error
                break
            }
        }
        guard case .diskFull(let message) = refusal else {
            Issue.record("expected diskFull, got \(String(describing: refusal))")
            return
        }
        #expect(message.contains("No space left on device") || message.contains("bytes free"), "\(message)")
        #expect(acknowledged.count > 300, "\(acknowledged.count)")
        let items = try store.items(acknowledged)
        #expect(items.allSatisfy { $0.flatMap(wholePatternTag) != nil })
        #expect(try store.verify() == acknowledged.count)
        // Room again: LMDB reuses the pages of deleted items without growing the file, once no
        // snapshot can need them: pages freed by commit N are reused from commit N + 2. So free
        // space by deleting in a few commits (each may meet the full disk too), then ingest.
        var deleted = false, stored: [UInt64] = []
        for attempt in 0..<6 {
            let batch = Array(acknowledged.dropFirst(attempt * 50).prefix(50))
            if (try? await store.delete(batch)) != nil { deleted = true }
            if attempt >= 2, let ids = try? await store.ingest([patternItem(100_000 + attempt, side: 32)]) {
                stored = ids
                break
            }
        }
        #expect(deleted)
        #expect(stored.count == 1)
        if let id = stored.first { #expect(try store.item(id).flatMap(wholePatternTag) != nil) }
        store.close()
    }
}

private func shell(_ arguments: String...) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return -1 }
    process.waitUntilExit()
    return process.terminationStatus
}
