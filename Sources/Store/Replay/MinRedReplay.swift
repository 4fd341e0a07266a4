// MinRed (Purushwalkam, Morgado, Gupta: "The Challenges of Continuous Self-Supervised Learning",
// ECCV 2022): keep the replay set diverse by evicting, when it is over capacity, the member most
// redundant with another one — the member with the highest cosine similarity to its nearest
// neighbour in the set.
//
// Embeddings come from the encoder of the moment, handed in by whoever runs it (`setEmbeddings`);
// they live in memory only. Members without one yet (new arrivals, or all of them before an encoder
// is attached or after a restart) are never chosen as most redundant; when fewer than two members
// have embeddings the oldest member leaves, so the policy behaves as fifo until it can see.
//
// Cost: adding or replacing an embedding is one matrix-vector product over the embedded members
// (O(N·D), BLAS); evicting recomputes the nearest neighbour only of members that pointed at the
// evicted one.
import Neural

final class MinRedReplay: ReplayPolicy {
    let capacity: Int
    private(set) var members = ReplaySet()
    private var order = AdmissionOrder()

    /// Embedded members: slot → id, id → slot; unit vectors row by row.
    private var slotIDs: [UInt64] = []
    private var slots: [UInt64: Int] = [:]
    private var vectors: [Float] = []
    private(set) var dimension = 0
    /// Per slot: cosine similarity to its nearest embedded neighbour, and that neighbour's slot id.
    private var nearestSimilarity: [Float] = []
    private var nearestID: [UInt64] = []

    init(capacity: Int, members: [UInt64]) {
        self.capacity = capacity
        for id in members { self.members.insert(id) }
        for id in members.sorted() { order.append(id) }
        _ = self.members.takeSlotChanges()
    }

    var persistentState: [UInt8] { [] }
    func takeSlotChanges() -> [(id: UInt64, slot: Int)] { members.takeSlotChanges() }
    var embeddedCount: Int { slotIDs.count }

    func admit(_ id: UInt64) -> Admission {
        members.insert(id)
        order.append(id)
        var evicted: [UInt64] = []
        while members.count > capacity {
            guard let victim = mostRedundant() ?? order.popOldest(in: members) else { break }
            remove(victim)
            evicted.append(victim)
        }
        return Admission(joined: members.contains(id), evicted: evicted)
    }

    func remove(_ id: UInt64) {
        members.remove(id)
        removeEmbedding(id)
    }

    /// Sets (or replaces) members' embeddings; `vectors` is ids.count × dimension, any scale.
    /// A new dimension (another model) drops every embedding held so far.
    func setEmbeddings(_ ids: [UInt64], _ vectors: [Float], dimension: Int) {
        precondition(vectors.count == ids.count * dimension)
        if dimension != self.dimension {
            slotIDs = []; slots = [:]; self.vectors = []; nearestSimilarity = []; nearestID = []
            self.dimension = dimension
        }
        for (row, id) in ids.enumerated() where members.contains(id) {
            removeEmbedding(id)
            addEmbedding(id, Array(vectors[row * dimension..<(row + 1) * dimension]))
        }
    }

    /// The embedded member with the most similar neighbour, or nil below two embedded members.
    private func mostRedundant() -> UInt64? {
        guard slotIDs.count >= 2 else { return nil }
        var best = 0
        for slot in 1..<slotIDs.count where nearestSimilarity[slot] > nearestSimilarity[best] { best = slot }
        return slotIDs[best]
    }

    /// Similarities of `vector` to every embedded member (one gemv through gemm).
    private func similarities(to vector: [Float]) -> [Float] {
        var result = [Float](repeating: 0, count: slotIDs.count)
        guard !slotIDs.isEmpty else { return result }
        vectors.withUnsafeBufferPointer { matrix in
            vector.withUnsafeBufferPointer { v in
                result.withUnsafeMutableBufferPointer { out in
                    BLAS.gemm(m: slotIDs.count, n: 1, k: dimension, a: matrix.baseAddress!, lda: dimension,
                              b: v.baseAddress!, ldb: 1, c: out.baseAddress!, ldc: 1)
                }
            }
        }
        return result
    }

    private func addEmbedding(_ id: UInt64, _ raw: [Float]) {
        let norm = raw.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let unit = norm > 0 ? raw.map { $0 / norm } : raw
        let sims = similarities(to: unit)
        var best: Float = -.infinity, bestID: UInt64 = id
        for (slot, sim) in sims.enumerated() {
            if sim > best { best = sim; bestID = slotIDs[slot] }
            if sim > nearestSimilarity[slot] {
                nearestSimilarity[slot] = sim
                nearestID[slot] = id
            }
        }
        slots[id] = slotIDs.count
        slotIDs.append(id)
        vectors += unit
        nearestSimilarity.append(best)
        nearestID.append(bestID)
    }

    private func removeEmbedding(_ id: UInt64) {
        guard let slot = slots.removeValue(forKey: id) else { return }
        let last = slotIDs.count - 1
        if slot != last {
            slotIDs[slot] = slotIDs[last]
            slots[slotIDs[slot]] = slot
            nearestSimilarity[slot] = nearestSimilarity[last]
            nearestID[slot] = nearestID[last]
            for j in 0..<dimension { vectors[slot * dimension + j] = vectors[last * dimension + j] }
        }
        slotIDs.removeLast()
        nearestSimilarity.removeLast()
        nearestID.removeLast()
        vectors.removeLast(dimension)
        // Members whose nearest neighbour was the removed one look again.
        for s in 0..<slotIDs.count where nearestID[s] == id {
            let row = Array(vectors[s * dimension..<(s + 1) * dimension])
            var sims = similarities(to: row)
            sims[s] = -.infinity
            let best = sims.indices.max { sims[$0] < sims[$1] }!
            nearestSimilarity[s] = slotIDs.count > 1 ? sims[best] : -.infinity
            nearestID[s] = slotIDs.count > 1 ? slotIDs[best] : slotIDs[s]
        }
    }
}
