// MinRed (Purushwalkam, Morgado, Gupta: "The Challenges of Continuous Self-Supervised Learning",
// ECCV 2022): keep the replay set diverse by evicting, when it is over capacity, the member most
// redundant with another one — the member with the highest cosine similarity to its nearest
// neighbour in the set.
//
// It sees through the model of the moment: whoever runs the encoder hands the store the members'
// embeddings (`ImageStore.setReplayEmbeddings`, which the daemon calls after each catalog build),
// and they become a `RedundancyView`, built off the store's lock and then installed whole; a new
// view replaces the old one, since two models' embeddings are not comparable. Members without an
// embedding (arrivals since the view, or every member before the first view and after a restart)
// are never chosen as most redundant; when fewer than two embedded members are left, the oldest
// member leaves, so the policy behaves as fifo until it can see.
//
// With a reservoir coin (`reservoir-minred`) an arrival to a full set joins only with reservoir's
// probability capacity / n; MinRed chooses whom it replaces, and a random member goes while the
// view cannot choose. MinRed alone admits every arrival, so on a stream of one task at a time each
// new task's arrivals push out the earlier tasks' members whatever their redundancy.
import Neural

final class MinRedReplay: ReplayPolicy {
    let capacity: Int
    private(set) var members = ReplaySet()
    private var order = AdmissionOrder()
    private var view: RedundancyView?
    private var coin: ReservoirCoin?

    init(capacity: Int, members: [UInt64], admission coin: ReservoirCoin? = nil) {
        self.capacity = capacity
        self.coin = coin
        for id in members { self.members.insert(id) }
        for id in members.sorted() { order.append(id, members: self.members) }
        _ = self.members.takeSlotChanges()
    }

    var persistentState: [UInt8] { coin?.persistentState ?? [] }
    func takeSlotChanges() -> [(id: UInt64, slot: Int)] { members.takeSlotChanges() }
    /// Members the current view has an embedding of.
    var embeddedCount: Int { view?.count ?? 0 }
    var allocatedBytes: Int { members.allocatedBytes + order.allocatedBytes + (view?.allocatedBytes ?? 0) }
    /// Ids the admission order holds (test: it stays bounded).
    var admissionOrderCount: Int { order.count }

    func admit(_ id: UInt64) -> Admission {
        var rng = coin?.offer()  // reservoir-minred: the draws of this stream position
        if members.count >= capacity, rng != nil, !coin!.joins(capacity: capacity, using: &rng!) {
            return Admission(joined: false, evicted: [])
        }
        members.insert(id)
        order.append(id, members: members)
        var evicted: [UInt64] = []
        while members.count > capacity {
            guard let victim = view?.mostRedundant() ?? fallbackVictim(sparing: id, using: &rng) else { break }
            remove(victim)
            evicted.append(victim)
        }
        return Admission(joined: members.contains(id), evicted: evicted)
    }

    /// Who leaves while the view cannot choose: the oldest member, or with a reservoir coin a
    /// random one other than the newcomer (reservoir's own rule).
    private func fallbackVictim(sparing newcomer: UInt64, using rng: inout SeededGenerator?) -> UInt64? {
        guard rng != nil else { return order.popOldest(in: members) }
        while true {
            let victim = members.randomMember(using: &rng!)
            if victim != newcomer { return victim }
        }
    }

    func remove(_ id: UInt64) {
        members.remove(id)
        view?.remove(id)
    }

    /// Makes `view` the policy's sight, forgetting the members that left while it was built.
    func install(_ view: RedundancyView, builtFrom ids: [UInt64]) {
        var view = view
        for id in ids where !members.contains(id) { view.remove(id) }
        self.view = view
    }

}
