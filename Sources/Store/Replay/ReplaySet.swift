// The replay set: the stored ids the trainer samples from.
//
// Ids live in an array plus an index from id to slot, so insertion, removal (swap with the last)
// and uniform sampling are all O(1): drawing a batch never scans the store. The store persists each
// member's slot, so after a restart the array is laid out as before and seeded draws (sampling,
// reservoir's victims) come out the same.
import Neural

public struct ReplaySet: Sendable {
    private(set) var ids: [UInt64] = []
    private var slots: [UInt64: Int] = [:]
    /// Ids given a new slot since the last `takeSlotChanges` (inserted, or moved by a removal).
    private var moved: [UInt64] = []

    public init() {}

    public var count: Int { ids.count }
    public func contains(_ id: UInt64) -> Bool { slots[id] != nil }
    var allocatedBytes: Int { ids.allocatedBytes + slots.allocatedBytes + moved.allocatedBytes }

    mutating func insert(_ id: UInt64) {
        guard slots[id] == nil else { return }
        slots[id] = ids.count
        ids.append(id)
        moved.append(id)
    }

    mutating func remove(_ id: UInt64) {
        guard let slot = slots.removeValue(forKey: id) else { return }
        let last = ids.removeLast()
        if slot < ids.count {
            ids[slot] = last
            slots[last] = slot
            moved.append(last)
        }
    }

    /// Puts `newcomer` in the slot of `member`, which leaves.
    mutating func replace(_ member: UInt64, with newcomer: UInt64) {
        guard let slot = slots.removeValue(forKey: member), slots[newcomer] == nil else { return }
        ids[slot] = newcomer
        slots[newcomer] = slot
        moved.append(newcomer)
    }

    /// Members whose slot changed since the last call, with their slot now (for persisting).
    mutating func takeSlotChanges() -> [(id: UInt64, slot: Int)] {
        defer { moved.removeAll(keepingCapacity: true) }
        return moved.compactMap { id in slots[id].map { (id, $0) } }
    }

    /// A uniformly drawn member (the set must not be empty).
    func randomMember(using rng: inout SeededGenerator) -> UInt64 {
        ids[Int(rng.next() % UInt64(ids.count))]
    }

    /// `count` ids drawn uniformly with replacement (the usual replay sampling); empty if the set is.
    public func sample(_ count: Int, using rng: inout SeededGenerator) -> [UInt64] {
        guard !ids.isEmpty else { return [] }
        return (0..<count).map { _ in randomMember(using: &rng) }
    }
}

/// Ids in the order they were admitted (ids only grow, so also ascending), for "evict the oldest".
/// Removed ids are skipped lazily, so removal anywhere costs nothing here; the ids left behind are
/// dropped once they outnumber the members, so the queue stays within about twice the set even
/// when members leave by other means than age (MinRed's redundancy), where it grew by one id per
/// admission for ever.
struct AdmissionOrder {
    private var queue: [UInt64] = []
    private var head = 0

    /// Ids held, those already left included.
    var count: Int { queue.count - head }
    var allocatedBytes: Int { queue.allocatedBytes }

    mutating func append(_ id: UInt64, members: ReplaySet) {
        queue.append(id)
        if count > 2 * members.count + 4096 {
            queue = queue[head...].filter(members.contains)
            head = 0
        }
    }

    /// The oldest id still in `set`, removed from the queue; nil if none.
    mutating func popOldest(in set: ReplaySet) -> UInt64? {
        while head < queue.count {
            let id = queue[head]
            head += 1
            if set.contains(id) {
                compactIfWasteful()
                return id
            }
        }
        return nil
    }

    private mutating func compactIfWasteful() {
        if head > 4096 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
    }
}
