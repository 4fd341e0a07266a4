// The catalog against itself: every item's k most similar other items, for near-duplicate groups
// (`duplicates`, glfctl dedup). Not N knn calls: the items are the queries, so it is one blocked
// sgemm of the catalog with itself (ExactIndex.blockedSearch, N²·D multiply-adds: 2.6·10¹² for
// 10⁵ items of dimension 256), each row of scores feeding its item's TopK.
//
// A catalog is a base index and a tail of items embedded since (Daemon's Catalog): `parts` are
// taken together as one set of items; an id in two parts counts once (the later part's vector).
import Neural

public struct NeighbourLists: Sendable {
    /// The items joined, in the order of `parts` (filtered by source).
    public let ids: [UInt64]
    /// For each item, its up to k most similar other items, nearest first.
    public let neighbours: [[Neighbour]]
}

extension ExactIndex {
    /// Every item's `k` most similar other items among `parts` (only items tagged `source` and
    /// with an id in `ids`, if given, on both sides). `workers` threads take a share of the items each (sgemm and top-k
    /// alike; the selection is as much work as the products): run it with OpenBLAS on one thread.
    public static func selfJoin(_ parts: [ExactIndex], k: Int, source: String? = nil, ids range: ClosedRange<UInt64>? = nil,
                                workers: Int = 1) -> NeighbourLists {
        precondition(Set(parts.map(\.dimension)).count <= 1, "parts of one catalog share a dimension")
        guard k > 0, let d = parts.first?.dimension else { return NeighbourLists(ids: [], neighbours: []) }
        // Each part's rows in the join: the matching ones, and not an id a later part holds again.
        let later = parts.indices.map { p in parts[(p + 1)...].reduce(into: Set<UInt64>()) { $0.formUnion($1.ids) } }
        let gathered: [(ids: [UInt64], vectors: [Float])] = parts.enumerated().map { p, part in
            var code: UInt32? = nil
            if let source {
                guard let known = part.sourceCode(of: source) else { return ([], []) }
                code = known
            }
            var ids: [UInt64] = [], vectors: [Float] = []
            for row in 0..<part.count where (code == nil || part.sourceCodes[row] == code) && (range?.contains(part.ids[row]) ?? true)
                && !later[p].contains(part.ids[row]) {
                ids.append(part.ids[row])
                vectors += part.vectors[row * d..<(row + 1) * d]
            }
            return (ids, vectors)
        }
        var allIDs: [UInt64] = [], all: [[Neighbour]] = []
        for queries in gathered where !queries.ids.isEmpty {
            let n = queries.ids.count, shares = max(1, min(workers, n))
            var lists = [[[Neighbour]]](repeating: [], count: shares)
            lists.withUnsafeMutableBufferPointer { out in
                // Each worker writes its own share (Parallel keeps the caller's priority).
                Parallel.perform(iterations: shares) { share in
                    let rows = (share * n / shares)..<((share + 1) * n / shares)
                    // k + 1: each item finds itself first (score 1), and leaves itself out below.
                    var heaps = rows.map { _ in TopK(k: k + 1) }
                    for items in gathered where !items.ids.isEmpty {
                        queries.vectors.withUnsafeBufferPointer { q in
                            items.vectors.withUnsafeBufferPointer { v in
                                items.ids.withUnsafeBufferPointer { itemIDs in
                                    blockedSearch(queries: q.baseAddress! + rows.lowerBound * d, queryCount: rows.count, items: v.baseAddress!,
                                                  itemIDs: itemIDs.baseAddress!, itemCount: items.ids.count, dimension: d, into: &heaps)
                                }
                            }
                        }
                    }
                    out[share] = zip(rows, heaps).map { row, heap in Array(heap.sorted().filter { $0.id != queries.ids[row] }.prefix(k)) }
                }
            }
            allIDs += queries.ids
            all += lists.joined()
        }
        return NeighbourLists(ids: allIDs, neighbours: all)
    }
}

// MARK: Near-duplicate groups

/// Items that are near-duplicates of each other, linked through pairs closer than a share of the
/// catalog's own spacing.
public struct DuplicateGroup: Sendable, Equatable {
    /// Ascending.
    public var ids: [UInt64]
    /// The lowest cosine similarity among the group's pairs found within the distance.
    public var weakestLink: Float
}

extension NeighbourLists {
    /// The catalog's spacing: the median distance (1 − cosine) from an item to its `rank`-th
    /// nearest other item (the farthest listed when fewer). The `rank`-th, not the nearest: in a
    /// catalog full of copies the nearest is a copy, and the spacing would shrink to theirs.
    public func spacing(rank: Int = 10) -> Double {
        let distances = neighbours.compactMap { list in list.prefix(rank).last.map { Double(1 - $0.score) } }.sorted()
        return distances.isEmpty ? 0 : distances[distances.count / 2]
    }

    /// Groups of two or more items joined by pairs at distance at most `maxDistance` (1 − cosine),
    /// through any chain of such pairs in the lists (union-find); items `keep` refuses are left
    /// out. Largest groups first, then by smallest id.
    public func duplicateGroups(maxDistance: Double, keep: (UInt64) -> Bool = { _ in true }) -> [DuplicateGroup] {
        let row = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0) })
        var parent = Array(ids.indices)
        func root(_ i: Int) -> Int {
            var i = i
            while parent[i] != i {
                parent[i] = parent[parent[i]]
                i = parent[i]
            }
            return i
        }
        let kept = ids.map(keep)
        var weakest = [Float](repeating: 1, count: ids.count)
        for (i, list) in neighbours.enumerated() where kept[i] {
            for neighbour in list {
                guard Double(1 - neighbour.score) <= maxDistance else { break }  // nearest first
                guard let j = row[neighbour.id], kept[j] else { continue }
                let (a, b) = (root(i), root(j))
                let link = min(weakest[a], weakest[b], neighbour.score)
                if a != b { parent[b] = a }
                weakest[a] = link
            }
        }
        var members: [Int: [UInt64]] = [:]
        for i in ids.indices where kept[i] { members[root(i), default: []].append(ids[i]) }
        return members.compactMap { rootRow, ids in
            ids.count >= 2 ? DuplicateGroup(ids: ids.sorted(), weakestLink: weakest[rootRow]) : nil
        }.sorted { ($0.ids.count, $1.ids[0]) > ($1.ids.count, $0.ids[0]) }
    }
}
