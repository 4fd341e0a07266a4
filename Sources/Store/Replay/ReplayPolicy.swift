// Replay policies decide which stored items the trainer replays. They see every committed item in
// id order (inside the writer's transaction, which persists their decisions in the same commit) and
// every removal (delete, retention). If that transaction fails, the store rebuilds the policy from
// what is on disk, so a policy never has to undo anything itself.
import Foundation
import Neural

public enum ReplayPolicyKind: String, Codable, Sendable, CaseIterable {
    /// The most recent `capacity` items.
    case fifo
    /// A uniform sample of everything ever ingested (Vitter's algorithm R).
    case reservoir
    /// Minimum redundancy (MinRed, Purushwalkam et al. 2022): when full, evict the member whose
    /// embedding is most similar to another member's. Without embeddings it evicts the oldest.
    case minred
    /// Reservoir's admission, MinRed's eviction: the n-th item joins a full set with probability
    /// capacity / n, as in reservoir, and the member it replaces is the most redundant one rather
    /// than a random one. On a correlated stream MinRed alone lets every arrival in and so flushes
    /// the earlier tasks (issue 15); the reservoir's coin keeps their share, MinRed's choice keeps
    /// near-duplicates out. Without embeddings it replaces a random member, as reservoir does.
    case reservoirMinred = "reservoir-minred"

    /// Whether the policy chooses through the model's embeddings of its members (the daemon then
    /// hands it the catalog's vectors after each build).
    public var seesEmbeddings: Bool { self == .minred || self == .reservoirMinred }
}

public struct ReplayConfiguration: Codable, Sendable, Equatable {
    public var policy: ReplayPolicyKind
    /// Members kept; the store may hold more items (retention is separate).
    public var capacity: Int
    /// Seed of reservoir's draws: decisions are a function of (seed, stream position).
    public var seed: UInt64

    public init(policy: ReplayPolicyKind = .fifo, capacity: Int = 65_536, seed: UInt64 = 0) {
        self.policy = policy
        self.capacity = capacity
        self.seed = seed
    }
}

/// The outcome of admitting one item.
public struct Admission: Equatable, Sendable {
    public var joined: Bool
    public var evicted: [UInt64]
}

public protocol ReplayPolicy: AnyObject {
    var members: ReplaySet { get }
    /// A new item was committed: whether it joins the set, and which members leave to make room.
    func admit(_ id: UInt64) -> Admission
    /// The item left the store (deleted or retired by retention).
    func remove(_ id: UInt64)
    /// Counters beyond membership that must survive a restart.
    var persistentState: [UInt8] { get }
    /// Members whose slot in `members` changed since the last call: what the store persists.
    func takeSlotChanges() -> [(id: UInt64, slot: Int)]
    /// Bytes of what it keeps in memory (bounded by its capacity).
    var allocatedBytes: Int { get }
}

extension ReplayPolicy {
    var allocatedBytes: Int { members.allocatedBytes }
}

extension ReplayConfiguration {
    /// A policy in the state recorded on disk: `members` in slot order, and its saved state.
    func makePolicy(members: [UInt64], state: [UInt8]) -> any ReplayPolicy {
        switch policy {
        case .fifo: FIFOReplay(capacity: capacity, members: members)
        case .reservoir: ReservoirReplay(capacity: capacity, seed: seed, members: members, state: state)
        case .minred: MinRedReplay(capacity: capacity, members: members)
        case .reservoirMinred:
            MinRedReplay(capacity: capacity, members: members, admission: ReservoirCoin(seed: seed, state: state, members: members.count))
        }
    }
}

final class FIFOReplay: ReplayPolicy {
    let capacity: Int
    private(set) var members = ReplaySet()
    private var order = AdmissionOrder()

    init(capacity: Int, members: [UInt64]) {
        self.capacity = capacity
        for id in members { self.members.insert(id) }
        for id in members.sorted() { order.append(id, members: self.members) }
        _ = self.members.takeSlotChanges()
    }

    func admit(_ id: UInt64) -> Admission {
        members.insert(id)
        order.append(id, members: members)
        var evicted: [UInt64] = []
        while members.count > capacity, let oldest = order.popOldest(in: members) {
            members.remove(oldest)
            evicted.append(oldest)
        }
        return Admission(joined: members.contains(id), evicted: evicted)
    }

    func remove(_ id: UInt64) { members.remove(id) }
    var persistentState: [UInt8] { [] }
    func takeSlotChanges() -> [(id: UInt64, slot: Int)] { members.takeSlotChanges() }
}

/// Algorithm R: the n-th item of the stream joins with probability capacity / n (`ReservoirCoin`),
/// replacing a uniformly chosen member; so at any time every item seen is a member with equal
/// probability.
final class ReservoirReplay: ReplayPolicy {
    let capacity: Int
    private(set) var members = ReplaySet()
    private var coin: ReservoirCoin

    init(capacity: Int, seed: UInt64, members: [UInt64], state: [UInt8]) {
        self.capacity = capacity
        for id in members { self.members.insert(id) }
        _ = self.members.takeSlotChanges()
        coin = ReservoirCoin(seed: seed, state: state, members: members.count)
    }

    func admit(_ id: UInt64) -> Admission {
        var rng = coin.offer()
        if members.count < capacity {
            members.insert(id)
            return Admission(joined: true, evicted: [])
        }
        guard coin.joins(capacity: capacity, using: &rng) else { return Admission(joined: false, evicted: []) }
        // Algorithm R's "replace slot j": the victim's slot goes to the newcomer.
        let victim = members.randomMember(using: &rng)
        members.replace(victim, with: id)
        return Admission(joined: true, evicted: [victim])
    }

    func remove(_ id: UInt64) { members.remove(id) }
    func takeSlotChanges() -> [(id: UInt64, slot: Int)] { members.takeSlotChanges() }
    var persistentState: [UInt8] { coin.persistentState }
}

/// Algorithm R's coin: the n-th item offered to a full set of `capacity` joins with probability
/// capacity / n. The draw for stream position n comes from a generator seeded by (seed, n), so
/// decisions do not depend on how commits were batched or on restarts; n is the state to persist.
struct ReservoirCoin {
    let seed: UInt64
    /// Items offered so far (n).
    private(set) var seen: UInt64 = 0

    /// `state` as `persistentState` wrote it (empty for a new set); n is at least the members held.
    init(seed: UInt64, state: [UInt8], members: Int) {
        self.seed = seed
        if state.count == 8 {
            seen = state.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        }
        seen = max(seen, UInt64(members))
    }

    /// Counts one more item offered; the generator of its stream position.
    mutating func offer() -> SeededGenerator {
        seen += 1
        return SeededGenerator(seed: seed ^ (seen &* 0x9E37_79B9_7F4A_7C15))
    }

    /// The draw for the item just offered, from the generator `offer` returned.
    func joins(capacity: Int, using rng: inout SeededGenerator) -> Bool {
        rng.next() % seen < UInt64(capacity)
    }

    var persistentState: [UInt8] { withUnsafeBytes(of: seen.littleEndian) { Array($0) } }
}
