// The catalog joined with itself (duplicates, glfctl dedup): every item's nearest others as brute
// force finds them, over a base and a tail taken as one catalog; and the groups of near-duplicates
// that pairs within a share of the spacing make.
@testable import Index
import Neural
import Testing

@Suite struct SelfJoinTests {
    /// 300 items in two parts (the tail re-embeds 10 of the base's ids, whose tail vectors count)
    /// and three sources: each item's 10 nearest others are brute force's, with and without a
    /// source filter, and no item lists itself.
    @Test func everyItemsNearestOthersAreBruteForces() {
        let d = 12
        let vectors = gaussianVectors(count: 310, dimension: d, seed: 4)
        func item(_ id: Int, _ row: Int) -> TestItem { TestItem(id: UInt64(id), vector: vectors[row], source: "s\(id % 3)") }
        let base: [TestItem] = (1...250).map { item($0, $0 - 1) }
        // The tail: 50 new items, and new vectors for ids 1–10.
        let tail: [TestItem] = (251...300).map { item($0, $0 - 1) } + (1...10).map { item($0, 299 + $0) }
        let catalog: [TestItem] = base.filter { $0.id > 10 } + tail   // what the join must see: one vector per id
        for source in [nil, "s1"] as [String?] {
            let lists = ExactIndex.selfJoin([exactIndex(base, dimension: d), exactIndex(tail, dimension: d)], k: 10, source: source)
            let expected: [UInt64] = catalog.filter { source == nil || $0.source == source }.map { $0.id }
            #expect(Set(lists.ids) == Set(expected) && lists.ids.count == expected.count, "\(source ?? "all")")
            for (id, neighbours) in zip(lists.ids, lists.neighbours) {
                let item = catalog.first { $0.id == id }!
                let reference = bruteForce(catalog.filter { $0.id != id }, query: item.vector, source: source)
                expectAgrees(neighbours, reference, k: 10, "\(source ?? "all") item \(id)")
            }
        }
        #expect(ExactIndex.selfJoin([exactIndex(base, dimension: d)], k: 10, source: "nobody").ids.isEmpty)
    }

    /// 200 distinct items, and 20 of them with 2 or 12 near-copies each: the groups are exactly the
    /// planted ones, even the groups larger than the 10 neighbours each item lists; the spacing
    /// (the median distance to the 10th nearest) is the distinct items', not the copies'.
    @Test func groupsAreThePlantedCopies() {
        let d = 16
        var rng = SeededGenerator(seed: 9)
        let distinct = gaussianVectors(count: 200, dimension: d, seed: 2)
        var items = distinct.enumerated().map { TestItem(id: UInt64($0 + 1), vector: $1, source: "") }
        var planted: [Set<UInt64>] = []
        for original in 0..<20 {
            var group: Set<UInt64> = [UInt64(original + 1)]
            for _ in 0..<(original < 5 ? 12 : 2) {
                let id = UInt64(items.count + 1)
                items.append(TestItem(id: id, vector: distinct[original].map { $0 + 0.02 * rng.nextNormal() }, source: ""))
                group.insert(id)
            }
            planted.append(group)
        }
        let lists = ExactIndex.selfJoin([exactIndex(items, dimension: d)], k: 10)
        let spacing = lists.spacing(rank: 10)
        let alone = ExactIndex.selfJoin([exactIndex(Array(items.prefix(200)), dimension: d)], k: 10).spacing(rank: 10)
        #expect(abs(spacing - alone) < 0.15 * alone, "spacing \(spacing) with the copies, \(alone) without")
        let groups = lists.duplicateGroups(maxDistance: 0.3 * spacing)
        #expect(Set(groups.map { Set($0.ids) }) == Set(planted), "\(groups.map(\.ids))")
        #expect(groups.prefix(5).allSatisfy { $0.ids.count == 13 } && groups.dropFirst(5).allSatisfy { $0.ids.count == 3 })
        #expect(groups.allSatisfy { Double(1 - $0.weakestLink) <= 0.3 * spacing })
        // Items left out (deleted) are in no group, and a group of one is no group: without its two
        // copies (ids 261, 262), item 6 stands alone.
        #expect(planted.contains([6, 261, 262]))
        let kept = lists.duplicateGroups(maxDistance: 0.3 * spacing) { $0 != 261 && $0 != 262 }
        #expect(kept.count == 19 && !kept.contains { $0.ids.contains(6) || $0.ids.contains(261) })
    }
}
