// Drift: how far what arrives now lies from what training replays, under the served model (issue
// 15). A camera that moves to a new scene, a crawler on a new topic, a pipeline on a new class: the
// new items are unlike the replay set, and an operator should see it before the model has learned
// them.
//
//   reference   up to `referenceSize` replay members, embedded under the served version (taken from
//               each catalog as it is swapped in, whose base holds every stored item), and the
//               reference's own spacing: the mean distance (1 − cosine) from a member to its
//               `neighbour`-th nearest other member
//   arrivals    at most once per `checkInterval`, up to `samplePerCheck` of the newest items stored
//               since the last check, embedded under the same version, and each one's distance to
//               its `neighbour`-th nearest reference member; the last `window` of these are kept
//
// Why the k-th nearest and not the nearest: a camera sends each scene many times, so the replay
// set holds copies, and distances to the nearest member measure the copies. Under a trained
// encoder on a camera-like stream (5 frames of each image), the nearest-member score sat at up to
// 10.6 inside a task (fifo; 2.1 under reservoir), the 10th-nearest at most 1.25, which no 5 copies
// can shorten (tools/bench/drift_probe.py, README "Drift").
//   score       mean arrival distance / reference spacing. Near 1, new items lie as close to the
//               replay set as its members lie to each other; well above 1, they are unlike
//               anything replayed. A new version brings a new reference and empties the window
//               (distances under two models are not comparable)
//   alert       when the score reaches `alertScore` (over at least `minimumArrivals` arrivals) a
//               `rising` DriftAlert goes out on the PUB socket, and `settled` when it falls back
//
// Both distances are exact searches of the reference (an ExactIndex: blocked sgemm and top-k).
// Cost: the reference's spacing is one R × R × D product per catalog swap (R 2,048, D 256: 2
// GFLOP), a check embeds at most `samplePerCheck` images and searches the reference with them: a
// few percent of one core under steady ingest, nothing when nothing arrives.
import Foundation
import Index
import Protocol
import Store

/// The initial values are glfd's defaults (its key table reads them).
public struct DriftSettings: Sendable, Equatable {
    /// Replay members sampled as the reference.
    public var referenceSize = 2048
    /// Newest arrivals embedded per check.
    public var samplePerCheck = 64
    /// Sampled arrivals the score averages over.
    public var window = 256
    /// Seconds between checks while items arrive.
    public var checkInterval: Double = 1
    /// Distances are to the `neighbour`-th nearest reference member (robust to that many copies
    /// less one); 10 was chosen with tools/bench/drift_probe.py.
    public var neighbour = 10
    /// The score at which a `rising` alert goes out (and below which `settled` follows), once
    /// `minimumArrivals` arrivals are measured under the version; 0: never. 1.35: above every
    /// score drift_probe.py measured inside a task under a fresh reference (at most 1.30), and
    /// below 10 of the 16 task boundaries' (1.11–1.69).
    public var alertScore = 1.35
    public var minimumArrivals = 128
    public init() {}
}

final class DriftMonitor: @unchecked Sendable {
    private let store: ImageStore
    private let settings: DriftSettings
    private let lock = NSLock()

    // Under `lock`.
    private var reference: Reference?
    private var distances: [Float] = []
    private var checkedThrough: UInt64 = 0
    private var lastCheck = Date.distantPast
    private var alerting = false
    private var retryScheduled = false
    /// Told when the score crosses `alertScore` (the daemon announces it on the PUB socket).
    var onAlert: (@Sendable (DriftAlert) -> Void)?

    private struct Reference {
        let published: PublishedVersion
        var version: Int { published.version }
        /// The sampled replay members' unit embeddings.
        let members: ExactIndex
        let spacing: Double
    }

    init(store: ImageStore, settings: DriftSettings = DriftSettings()) {
        self.store = store
        self.settings = settings
    }

    /// A catalog was swapped in: the replay members in its `base` become the reference (the slow
    /// part, the members' search of themselves, runs on the caller's thread, off every lock). Items
    /// stored up to `through` are in the reference's world; arrivals are counted from there.
    func setReference(_ published: PublishedVersion, base: ExactIndex, through: UInt64) {
        let replay = Set(store.replayMemberIDs)
        let rows = base.ids.indices.filter { replay.contains(base.ids[$0]) }
        guard rows.count >= 2 else { return }
        // An even stride over the members, so the reference spans the whole replay set.
        let count = min(rows.count, settings.referenceSize)
        var builder = ExactIndex.Builder(dimension: base.dimension, version: published.version, capacity: count)
        for r in 0..<count { builder.append(row: rows[r * rows.count / count], of: base) }
        let members = builder.build()
        // Each member's k-th nearest other member: its own search, itself left out (the farthest
        // found when the reference has fewer than k others).
        let d = members.dimension, k = settings.neighbour
        let found = members.search(queries: (0..<members.count).map { Array(members.vectors[$0 * d ..< ($0 + 1) * d]) }, k: k + 1)
        let spacing = zip(members.ids, found).reduce(0.0) { sum, pair in
            sum + Double(1 - (pair.1.filter { $0.id != pair.0 }.prefix(k).last?.score ?? 1))
        } / Double(members.count)
        lock.withLock {
            if reference?.version != published.version {
                distances.removeAll()
                checkedThrough = max(checkedThrough, through)
            }
            reference = Reference(published: published, members: members, spacing: spacing)
        }
    }

    enum Claim: Equatable {
        /// Run `check` with this version's encoder now.
        case now(PublishedVersion)
        /// Items wait, but the last check was less than the interval ago: ask again in so many
        /// seconds (told once per wait, so a flood of ingests schedules one retry).
        case after(Double)
        case nothing
    }

    /// Whether a check is due: items arrived since the last one, and `checkInterval` passed.
    func claimCheck(newestItem: UInt64) -> Claim {
        lock.withLock {
            guard let reference, newestItem > checkedThrough else { return .nothing }
            let wait = settings.checkInterval - Date().timeIntervalSince(lastCheck)
            if wait > 0 {
                guard !retryScheduled else { return .nothing }
                retryScheduled = true
                return .after(wait)
            }
            lastCheck = Date()
            retryScheduled = false
            return .now(reference.published)
        }
    }

    /// Embeds a sample of the items stored since the last check with `embed` (the reference's
    /// version's encoder) and adds their distances to the window. Off every lock but its own.
    func check(version: Int, embed: ([[UInt8]]) -> [[Float]]) throws(StoreError) {
        let (since, reference) = lock.withLock { (checkedThrough, self.reference) }
        guard let reference, reference.version == version else { return }
        let newest = store.nextID - 1
        guard newest > since else { return }
        // The newest arrivals: what the feed sends now.
        let after = max(since, newest > UInt64(settings.samplePerCheck) ? newest - UInt64(settings.samplePerCheck) : 0)
        let items = try store.items(after: after, limit: settings.samplePerCheck)
        // Everything through the newest counts as checked: the older arrivals of a burst are
        // skipped on purpose (the sample is the newest), and deleted ones have nothing to measure.
        let through = max(newest, items.last?.id ?? 0)
        let nearest = reference.members.search(queries: embed(items.map(\.image.pixels)), k: settings.neighbour).compactMap(\.last?.score)
        let alert: DriftAlert? = lock.withLock {
            guard self.reference?.version == version else { return nil }
            distances += nearest.map { 1 - $0 }
            if distances.count > settings.window { distances.removeFirst(distances.count - settings.window) }
            checkedThrough = max(checkedThrough, through)
            return crossing()
        }
        if let alert { onAlert?(alert) }
    }

    /// Under `lock`: the alert due now that the window changed, if the score crossed the level.
    private func crossing() -> DriftAlert? {
        guard settings.alertScore > 0, let status = unlockedStatus, let score = status.score,
              status.arrivals >= min(settings.minimumArrivals, settings.window) else { return nil }
        let rising = score >= settings.alertScore
        guard rising != alerting else { return nil }
        alerting = rising
        return DriftAlert(state: rising ? .rising : .settled, version: status.version, score: score, alertScore: settings.alertScore,
                          arrivals: status.arrivals, checkedThrough: status.checkedThrough, at: Date().timeIntervalSince1970)
    }

    var status: StatusResult.Drift? { lock.withLock { unlockedStatus } }

    private var unlockedStatus: StatusResult.Drift? {
        guard let reference else { return nil }
        let arrival = distances.isEmpty ? nil : distances.reduce(0.0) { $0 + Double($1) } / Double(distances.count)
        return StatusResult.Drift(version: reference.version, score: arrival.map { $0 / max(reference.spacing, 1e-6) },
                                  arrivals: distances.count, arrivalDistance: arrival, replaySpacing: reference.spacing,
                                  referenceMembers: reference.members.count, checkedThrough: checkedThrough)
    }
}
