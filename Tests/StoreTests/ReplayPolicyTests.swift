// Replay policies, on their own and through the store: fifo keeps the newest, reservoir is uniform
// over the stream (checked statistically with fixed seeds) and independent of how commits were
// batched, MinRed evicts near-duplicates once it has embeddings and is fifo before.
import Foundation
import Neural
@testable import Store
import Testing

@Suite struct ReplayPolicyTests {
    @Test func fifoKeepsTheMostRecentItems() {
        let fifo = FIFOReplay(capacity: 100, members: [])
        var evicted: [UInt64] = []
        for id in UInt64(1)...250 { evicted += fifo.admit(id).evicted }
        #expect(Set(fifo.members.ids) == Set(151...250))
        #expect(evicted == Array(1...150))
        fifo.remove(200)
        #expect(fifo.admit(251).evicted.isEmpty)
        #expect(fifo.admit(252).evicted == [151])
    }

    /// After a stream of 10,000 items into a reservoir of 1,000, each item is a member with
    /// probability 1/10. Over 40 seeds, membership counts per stream decile must fit a uniform
    /// distribution (chi-square, 9 degrees of freedom, below the 0.999 quantile 27.88), and so must
    /// the positions of the members within one run.
    @Test func reservoirIsUniformOverTheStream() {
        let streamLength = 10_000, capacity = 1_000, runs = 40
        var perDecile = [Double](repeating: 0, count: 10)
        for seed in 0..<runs {
            let reservoir = ReservoirReplay(capacity: capacity, seed: UInt64(seed), members: [], state: [])
            for id in 1...streamLength { _ = reservoir.admit(UInt64(id)) }
            #expect(reservoir.members.count == capacity)
            for id in reservoir.members.ids { perDecile[Int(id - 1) * 10 / streamLength] += 1 }
        }
        let expected = Double(runs * capacity) / 10
        let chiSquare = perDecile.reduce(0) { $0 + ($1 - expected) * ($1 - expected) / expected }
        #expect(chiSquare < 27.88, "per-decile members \(perDecile), χ² = \(chiSquare)")
        // A fifo would put everything in the last decile: the test can tell.
        #expect(perDecile.min()! > expected * 0.9)
    }

    @Test(arguments: [ReplayPolicyKind.reservoir, .reservoirMinred])
    func reservoirDecisionsDoNotDependOnBatchingOrRestarts(policy: ReplayPolicyKind) async throws {
        var configuration = smallConfiguration(temporaryStoreDirectory())
        configuration.replay = ReplayConfiguration(policy: policy, capacity: 50, seed: 7)
        var secondConfiguration = configuration
        secondConfiguration.directory = temporaryStoreDirectory("second")

        let oneByOne = try ImageStore(configuration)
        for tag in 0..<300 { _ = try await oneByOne.ingest([patternItem(tag)]) }
        oneByOne.close()

        var batched = try ImageStore(secondConfiguration)
        _ = try await batched.ingest((0..<120).map { patternItem($0) })
        batched.close()
        batched = try ImageStore(secondConfiguration)  // the reservoir resumes from disk
        _ = try await batched.ingest((120..<300).map { patternItem($0) })

        let reopened = try ImageStore(configuration)
        var rng = SeededGenerator(seed: 1)
        let a = Set(reopened.sampleReplay(5000, using: &rng)), b = Set(batched.sampleReplay(5000, using: &rng))
        #expect(a.count == 50)
        #expect(a == b)
    }

    @Test func samplingDrawsEveryMemberAboutEquallyOften() throws {
        var configuration = smallConfiguration(temporaryStoreDirectory())
        configuration.replay = ReplayConfiguration(policy: .fifo, capacity: 20)
        let store = try ImageStore(configuration)
        _ = try store.ingestAndWait((0..<30).map { patternItem($0) })
        var rng = SeededGenerator(seed: 3)
        let counts = Dictionary(grouping: store.sampleReplay(20_000, using: &rng), by: { $0 }).mapValues(\.count)
        #expect(Set(counts.keys) == Set(11...30))
        // 1000 expected per member; 5 standard deviations is about ±150.
        #expect(counts.values.allSatisfy { abs($0 - 1000) < 150 }, "\(counts)")
    }

    @Test func minredBehavesAsFifoUntilItHasEmbeddings() {
        let minred = MinRedReplay(capacity: 10, members: [])
        var evicted: [UInt64] = []
        for id in UInt64(1)...15 { evicted += minred.admit(id).evicted }
        #expect(evicted == Array(1...5))
        #expect(Set(minred.members.ids) == Set(6...15))
    }

    /// Members 1–8 are spread on a circle; 9 and 10 are near-copies of 1. Over capacity, MinRed
    /// must evict from the duplicates, not the oldest (1) nor a spread-out member.
    @Test func minredEvictsTheMostRedundantMember() throws {
        let minred = MinRedReplay(capacity: 10, members: [])
        for id in UInt64(1)...10 { #expect(minred.admit(id).evicted.isEmpty) }
        func circle(_ k: Int) -> [Float] { [cos(Float(k) * .pi / 4), sin(Float(k) * .pi / 4), 0] }
        var vectors: [Float] = []
        for k in 0..<8 { vectors += circle(k) }
        vectors += [1, 0.01, 0.0] + [1, -0.01, 0.005]
        minred.install(try #require(RedundancyView(ids: Array(1...10), vectors: vectors, dimension: 3)), builtFrom: Array(1...10))
        #expect(minred.embeddedCount == 10)
        let first = minred.admit(11).evicted
        let second = minred.admit(12).evicted
        #expect(first.count == 1 && second.count == 1)
        // Two of {1, 9, 10} go: the three are mutual near-duplicates.
        #expect(Set(first + second).isSubset(of: [1, 9, 10]), "evicted \(first + second)")
        // What is left of the cluster keeps its nearest neighbour up to date.
        #expect(minred.members.count == 10)
        // A third arrival: now every embedded member is 45° from its neighbours, and 11, 12 have no
        // embedding, so the evicted one is an embedded member, never a new arrival.
        let third = minred.admit(13).evicted
        #expect(third.count == 1 && ![11, 12, 13].contains(third[0]))
    }

    /// reservoir-minred lets in exactly the arrivals reservoir would (the same coin, position by
    /// position), so each task of a stream keeps its share; whom an arrival replaces is MinRed's
    /// choice: a near-duplicate, never a spread-out member.
    @Test func reservoirMinredAdmitsAsReservoirAndEvictsTheMostRedundant() throws {
        let reservoir = ReservoirReplay(capacity: 100, seed: 5, members: [], state: [])
        let hybrid = MinRedReplay(capacity: 100, members: [], admission: ReservoirCoin(seed: 5, state: [], members: 0))
        var joined = 0
        for id in UInt64(1)...2_000 {
            let expected = reservoir.admit(id).joined
            #expect(hybrid.admit(id).joined == expected, "item \(id)")
            if expected { joined += 1 }
        }
        // capacity · (1 + ln(n / capacity)) ≈ 400 join in all; fifo or MinRed would take all 2,000.
        #expect((330...470).contains(joined), "\(joined) joined")
        #expect(hybrid.members.count == 100)
        #expect(hybrid.persistentState == reservoir.persistentState)

        // 97 members evenly on a circle, and the other 3 copies of the first.
        let members = hybrid.members.ids.sorted()
        let copies = Set(members.suffix(3))
        func circle(_ k: Int) -> [Float] { [cos(Float(k) * 2 * .pi / 97), sin(Float(k) * 2 * .pi / 97), 0] }
        let vectors = members.indices.flatMap { i in copies.contains(members[i]) ? circle(0) : circle(i) }
        hybrid.install(try #require(RedundancyView(ids: members, vectors: vectors, dimension: 3)), builtFrom: members)
        var evicted: [UInt64] = []
        var next: UInt64 = 2_001
        while evicted.count < 3 {
            evicted += hybrid.admit(next).evicted
            next += 1
        }
        // Four members sit at circle(0) (member 0 and the three copies): three of them go.
        #expect(Set(evicted).isSubset(of: copies.union([members[0]])), "evicted \(evicted)")
    }

    /// As the daemon runs it: a new view after every sixteenth of the capacity arrived, so the view
    /// chooses nearly every victim and the oldest member is rarely asked for. The admission order
    /// must still forget the ids that left (it grew by one id per admission for ever).
    @Test func minredsMemoryStaysBoundedUnderAStreamWithFreshViews() throws {
        let capacity = 64
        let minred = MinRedReplay(capacity: capacity, members: [])
        var rng = SeededGenerator(seed: 7)
        var next: UInt64 = 1
        for _ in 0..<600 {
            for _ in 0..<capacity / 4 {
                _ = minred.admit(next)
                next += 1
            }
            let members = minred.members.ids
            let vectors = (0..<members.count * 8).map { _ in Float.random(in: -1...1, using: &rng) }
            minred.install(try #require(RedundancyView(ids: members, vectors: vectors, dimension: 8)), builtFrom: members)
        }
        #expect(minred.members.count == capacity)
        #expect(minred.admissionOrderCount <= 2 * capacity + 4096, "the admission order holds \(minred.admissionOrderCount) ids for \(capacity) members after \(next - 1) arrivals")
    }

    /// Through the store, as the daemon does it: 40 items, of which 10 are copies of item 0 (the
    /// same embedding); once the store is handed the embeddings, ingesting 10 more evicts exactly
    /// the redundant copies: all but one of the 11.
    @Test func minredThroughTheStoreEvictsCopiesFirst() async throws {
        var configuration = smallConfiguration(temporaryStoreDirectory())
        configuration.replay = ReplayConfiguration(policy: .minred, capacity: 40)
        let store = try ImageStore(configuration)
        let ids = try await store.ingest((0..<40).map { patternItem($0) })
        let d = 8
        func spread(_ k: Int) -> [Float] { (0..<d).map { sin(Float(k * d + $0) * 1.7) } }
        let copies = Set(ids[30..<40])
        let vectors = ids.indices.flatMap { i in copies.contains(ids[i]) ? spread(0) : spread(i) }
        // Items that are not members are ignored: hand in one that was never stored.
        #expect(store.setReplayEmbeddings(ids + [999], vectors + spread(999), dimension: d) == 40)
        #expect(store.statistics.replayEmbedded == 40)
        let later = try await store.ingest((40..<50).map { patternItem($0) })
        var rng = SeededGenerator(seed: 3)
        let members = Set(store.sampleReplay(20_000, using: &rng))
        let original = copies.union([ids[0]])
        #expect(members.intersection(original).count == 1, "copies left: \(members.intersection(original).sorted())")
        #expect(members.isSuperset(of: later))
        #expect(members.isSuperset(of: ids[1..<30]))
        #expect(store.statistics.replayEmbedded == 30)
        // Other policies take no embeddings.
        var fifo = smallConfiguration(temporaryStoreDirectory("fifo"))
        fifo.replay = ReplayConfiguration(policy: .fifo, capacity: 40)
        let fifoStore = try ImageStore(fifo)
        let fifoIDs = try await fifoStore.ingest((0..<5).map { patternItem($0) })
        #expect(fifoStore.setReplayEmbeddings(fifoIDs, Array(vectors.prefix(5 * d)), dimension: d) == 0)
    }

    @Test func policiesSurviveAReopenWithTheirMembers() throws {
        for policy in ReplayPolicyKind.allCases {
            var configuration = smallConfiguration(temporaryStoreDirectory("\(policy)"))
            configuration.replay = ReplayConfiguration(policy: policy, capacity: 8, seed: 1)
            let store = try ImageStore(configuration)
            _ = try store.ingestAndWait((0..<20).map { patternItem($0) })
            var rng = SeededGenerator(seed: 0)
            let before = Set(store.sampleReplay(2000, using: &rng))
            store.close()
            let reopened = try ImageStore(configuration)
            let after = Set(reopened.sampleReplay(2000, using: &rng))
            #expect(before == after, "\(policy)")
            #expect(reopened.statistics.replayMembers == 8, "\(policy)")
            // A smaller capacity on the next start trims the set at once.
            reopened.close()
            configuration.replay.capacity = 3
            #expect(try ImageStore(configuration).statistics.replayMembers == 3, "\(policy)")
        }
    }

    @Test func deletedAndRetiredItemsLeaveTheReplaySet() async throws {
        var configuration = smallConfiguration(temporaryStoreDirectory())
        configuration.maxItems = 12
        configuration.replay = ReplayConfiguration(policy: .reservoir, capacity: 100)
        let store = try ImageStore(configuration)
        let ids = try await store.ingest((0..<20).map { patternItem($0) })
        _ = try await store.delete([ids[15], ids[16]])
        var rng = SeededGenerator(seed: 0)
        let sampled = Set(store.sampleReplay(5000, using: &rng))
        #expect(sampled == Set(ids[8..<20]).subtracting([ids[15], ids[16]]))
    }
}
