// The store against a real LMDB environment: what is acknowledged reads back whole, survives a
// reopen, the map grows from tiny, the maximum refuses ingest but not reads, retention evicts the
// oldest, and the on-disk schema and shape are checked on open.
import Foundation
import Imaging
import LMDB
import Store
import Testing

@Suite struct ImageStoreTests {
    @Test func acknowledgedItemsReadBackWholeAndSurviveAReopen() async throws {
        let directory = temporaryStoreDirectory()
        var ids: [UInt64] = []
        do {
            let store = try ImageStore(smallConfiguration(directory))
            let before = Date()
            ids += try await store.ingest((0..<5).map { patternItem($0) })
            ids += try await store.ingest([patternItem(5)])
            let after = Date()
            #expect(ids == Array(1...6))
            let item = try #require(try store.item(3))
            #expect(wholePatternTag(item) == 2)
            #expect(item.originalWidth == 32 && item.originalHeight == 24 && item.originalFormat == .png)
            #expect(item.source == "test")
            // Stamped at commit, to the microsecond.
            #expect(item.ingestedAt.timeIntervalSince(before) > -1e-5 && item.ingestedAt.timeIntervalSince(after) < 1e-5)
            store.close()
        }
        let store = try ImageStore(smallConfiguration(directory))
        let items = try store.items(ids + [99])
        #expect(items.compactMap { $0.flatMap(wholePatternTag) } == Array(0...5))
        #expect(items.last! == nil)
        #expect(try await store.ingest([patternItem(6)]) == [7])
        #expect(try store.verify() == 7)
        let walked = try store.items(after: 2, limit: 3).map(\.id)
        #expect(walked == [3, 4, 5])
        #expect(try await store.delete([4]) == [4])
        #expect(try store.contains([1, 4, 7, 8, 0]) == [true, false, true, false, false])
    }

    @Test func keyedIngestStoresEachKeyOnceAcrossCallsAndReopens() async throws {
        let directory = temporaryStoreDirectory()
        do {
            let store = try ImageStore(smallConfiguration(directory))
            #expect(try await store.ingest((0..<3).map { patternItem($0) }, keys: [10, 11, 12]) == [1, 2, 3])
            // A redelivery of 11 and 12 with a new 13: only 13 is stored; 11 and 12 name their first ids.
            #expect(try await store.ingest((1..<4).map { patternItem($0) }, keys: [11, 12, 13]) == [2, 3, 4])
            // The same key twice in one call is stored once.
            #expect(try await store.ingest([patternItem(5), patternItem(5)], keys: [20, 20]) == [5, 5])
            // Unkeyed items are stored as always, beside keyed ones.
            #expect(try await store.ingest([patternItem(6)]) == [6])
            #expect(store.statistics.ingested == 6)
            await #expect(throws: StoreError.self) { _ = try await store.ingest([patternItem(7)], keys: [1, 2]) }
            store.close()
        }
        let store = try ImageStore(smallConfiguration(directory))
        #expect(try store.ids(forKeys: [10, 13, 20, 99]) == [1, 4, 5, nil])
        #expect(try await store.ingest([patternItem(0), patternItem(8)], keys: [10, 30]) == [1, 7])
        #expect(try store.verify() == 7)
        #expect(try store.items([1, 7]).compactMap { $0.flatMap(wholePatternTag) } == [0, 8])
    }

    @Test func itemsThatBreakALimitAreRefusedBeforeAnythingIsWritten() async throws {
        let store = try ImageStore(smallConfiguration(temporaryStoreDirectory()))
        var wrongSize = patternItem(0, side: 16)
        await #expect(throws: StoreError.self) { _ = try await store.ingest([patternItem(1), wrongSize]) }
        wrongSize = patternItem(0)
        wrongSize.source = String(repeating: "s", count: 257)
        await #expect(throws: StoreError.self) { _ = try await store.ingest([wrongSize]) }
        wrongSize = patternItem(0)
        wrongSize.metadata = [UInt8](repeating: 1, count: (64 << 10) + 1)
        await #expect(throws: StoreError.self) { _ = try await store.ingest([wrongSize]) }
        #expect(store.statistics.items == 0)
        #expect(try await store.ingest([patternItem(1)]) == [1])
    }

    @Test func theMapGrowsFromTinyUpToItsMaximumThenIngestIsRefusedAndReadsGoOn() async throws {
        var configuration = smallConfiguration(temporaryStoreDirectory(), side: 32)
        configuration.initialMapSize = 128 << 10
        configuration.maxMapSize = 4 << 20
        let store = try ImageStore(configuration)
        var acknowledged: [UInt64] = []
        var refusal: StoreError?
        for batch in 0..<200 {
            do {
                acknowledged += try store.ingestAndWait((0..<16).map { patternItem(batch * 16 + $0, side: 32) })
            } catch {
                refusal = error
                break
            }
        }
        guard case .storeFull(let mapSize) = refusal else {
            Issue.record("expected storeFull, got \(String(describing: refusal))")
            return
        }
        #expect(mapSize == 4 << 20)
        #expect(store.statistics.mapSize == 4 << 20)
        // 3 KiB images: a 4 MiB map holds about a thousand, far more than the 128 KiB start.
        #expect(acknowledged.count > 600, "\(acknowledged.count)")
        let items = try store.items(acknowledged)
        #expect(items.allSatisfy { $0.flatMap(wholePatternTag) != nil })
        #expect(try store.verify() == acknowledged.count)
        // Deleting makes room again (LMDB reuses the freed pages).
        let deleted = try await store.delete(Array(acknowledged.prefix(300)))
        #expect(deleted.count == 300)
        #expect(try store.ingestAndWait([patternItem(0, side: 32)]).count == 1)
    }

    @Test func retentionEvictsTheOldestByCountAndByBytes() throws {
        var configuration = smallConfiguration(temporaryStoreDirectory())
        configuration.maxItems = 10
        let store = try ImageStore(configuration)
        for tag in 0..<25 { _ = try store.ingestAndWait([patternItem(tag)]) }
        let statistics = store.statistics
        #expect(statistics.items == 10)
        #expect(statistics.retired == 15)
        #expect(try store.item(15) == nil)
        #expect(try store.items(after: 0, limit: 100).map(\.id) == Array(16...25))

        var byBytes = smallConfiguration(temporaryStoreDirectory())
        let recordBytes = 32 + 8 * 8 * 3 + 4 + "tag=0".utf8.count + 4
        byBytes.maxBytes = recordBytes * 7 + recordBytes / 2
        let bounded = try ImageStore(byBytes)
        _ = try bounded.ingestAndWait((0..<9).map { patternItem($0) })
        #expect(bounded.statistics.items == 7)
        #expect(bounded.statistics.recordBytes <= UInt64(byBytes.maxBytes!))
        #expect(try bounded.items(after: 0, limit: 100).map(\.id) == Array(3...9))
        #expect(try bounded.verify() == 7)
    }

    @Test func openingChecksTheSchemaAndTheCanonicalShape() throws {
        let directory = temporaryStoreDirectory()
        try ImageStore(smallConfiguration(directory)).close()
        #expect(throws: StoreError.configurationMismatch("the store holds 8×8×3-images, configured for 16×16×3")) {
            _ = try ImageStore(smallConfiguration(directory, side: 16))
        }
        // A store written by a future schema is refused, not misread.
        let environment = try LMDBEnvironment(directory: directory)
        let meta = try environment.database("meta")
        try environment.write { txn in try txn.put(meta, "schema", withUnsafeBytes(of: UInt32(2).littleEndian) { Array($0) }) }
        #expect(throws: StoreError.schemaTooNew(found: 2, supported: 1)) { _ = try ImageStore(smallConfiguration(directory)) }
    }

    @Test func aDamagedRecordIsAnErrorNotAWrongImage() throws {
        let directory = temporaryStoreDirectory()
        let store = try ImageStore(smallConfiguration(directory))
        _ = try store.ingestAndWait([patternItem(1), patternItem(2)])
        store.close()
        // Flip one pixel byte of item 2 behind the store's back.
        let environment = try LMDBEnvironment(directory: directory)
        let items = try environment.database("items")
        try environment.write { txn in
            var record = Array(try txn.get(items, UInt64(2))!)
            record[40] ^= 0x10
            try txn.put(items, UInt64(2), record)
        }
        let reopened = try ImageStore(smallConfiguration(directory))
        #expect(try reopened.item(1).flatMap(wholePatternTag) == 1)
        #expect(throws: StoreError.corruptRecord(id: 2, "checksum mismatch")) { _ = try reopened.item(2) }
        #expect(throws: StoreError.self) { _ = try reopened.verify() }
    }

    @Test func fastModeAcknowledgesOnCommitAndKeepsEverythingAcrossAReopen() async throws {
        var configuration = smallConfiguration(temporaryStoreDirectory())
        configuration.durability = .syncOnDemand
        configuration.syncInterval = .milliseconds(50)
        let store = try ImageStore(configuration)
        var ids: [UInt64] = []
        for tag in 0..<50 { ids += try await store.ingest([patternItem(tag)]) }
        try await Task.sleep(for: .milliseconds(120))
        store.close()
        let reopened = try ImageStore(configuration)
        #expect(try reopened.items(ids).compactMap { $0.flatMap(wholePatternTag) } == Array(0..<50))
    }

    @Test func concurrentIngestsShareCommitsAndEveryCallerGetsItsOwnIds() async throws {
        let store = try ImageStore(smallConfiguration(temporaryStoreDirectory()))
        let results = try await withThrowingTaskGroup(of: (Int, [UInt64]).self) { group in
            for caller in 0..<32 {
                group.addTask { (caller, try await store.ingest((0..<10).map { patternItem(caller * 10 + $0) })) }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(Set(results.values.flatMap { $0 }).count == 320)
        for (caller, ids) in results {
            let tags = try store.items(ids).map { $0.flatMap(wholePatternTag) }
            #expect(tags == (0..<10).map { caller * 10 + $0 })
        }
    }

    @Test func readersRunningDuringWritesNeverSeeATornItem() throws {
        let store = try ImageStore(smallConfiguration(temporaryStoreDirectory(), side: 32))
        let stop = LockedFlag()
        let torn = LockedCounter(), read = LockedCounter()
        let readers = (0..<2).map { _ in
            Thread {
                var rng = SystemRandomNumberGenerator()
                while !stop.value {
                    let next = store.statistics.nextID
                    guard next > 1 else { continue }
                    let ids = (0..<16).map { _ in UInt64.random(in: 1..<next, using: &rng) }
                    guard let items = try? store.items(ids) else { torn.add(1); continue }
                    for item in items {
                        guard let item else { torn.add(1); continue }
                        if wholePatternTag(item) == nil { torn.add(1) }
                        read.add(1)
                    }
                }
            }
        }
        readers.forEach { $0.start() }
        for batch in 0..<300 { _ = try store.ingestAndWait((0..<8).map { patternItem(batch * 8 + $0, side: 32) }) }
        stop.set()
        while readers.contains(where: { !$0.isFinished }) { usleep(1000) }
        #expect(torn.value == 0)
        #expect(read.value > 1000, "readers only read \(read.value) items")
    }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func add(_ n: Int) { lock.withLock { count += n } }
}

/// Ingest times grow with ids (each commit stamps max(now, the last stamp)), so a range of times
/// is a range of ids; the mapping survives a reopen and holes left by deletes.
@Suite struct IngestTimeTests {
    @Test func timeRangesAreIDRanges() async throws {
        let configuration = smallConfiguration(temporaryStoreDirectory())
        var store = try ImageStore(configuration)
        var batches: [[UInt64]] = []
        var times: [Double] = []
        for batch in 0..<3 {
            batches.append(try store.ingestAndWait((0..<5).map { patternItem(batch * 5 + $0) }))
            times.append(try #require(try store.item(batches[batch][0])).ingestedAt.timeIntervalSince1970)
            try await Task.sleep(for: .milliseconds(20))
        }
        let all = try store.items(after: 0, limit: 100).map { $0.ingestedAt.timeIntervalSince1970 }
        #expect(all == all.sorted() && times[0] < times[1] && times[1] < times[2])
        let (first, last) = (batches[0][0], batches[2][4])
        #expect(try store.ids(ingestedAfter: nil, before: nil) == first...last)
        #expect(try store.ids(ingestedAfter: times[0], before: nil) == batches[1][0]...last)
        #expect(try store.ids(ingestedAfter: nil, before: times[2]) == first...batches[1][4])
        #expect(try store.ids(ingestedAfter: times[0], before: times[2]) == batches[1][0]...batches[1][4])
        #expect(try store.ids(ingestedAfter: times[2], before: nil) == nil)
        #expect(try store.ids(ingestedAfter: times[1], before: times[1]) == nil)
        // A deleted batch leaves a hole: the range around it still bounds what is stored.
        _ = try await store.delete(batches[1])
        #expect(try store.ids(ingestedAfter: times[0], before: times[2]) == nil)
        store.close()
        store = try ImageStore(configuration)
        #expect(try store.ids(ingestedAfter: times[0], before: nil) == batches[2][0]...last)
        // After a reopen new items still stamp no earlier than the last one stored.
        let later = try store.ingestAndWait([patternItem(99)])
        #expect(try #require(try store.item(later[0])).ingestedAt.timeIntervalSince1970 >= times[2])
    }
}
