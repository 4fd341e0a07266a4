// Plumbing for HNSWIndex: raw growable buffers (stable pointers between growths, no copy-on-write
// or bounds checks in the graph walk), a binary heap of (score, node), per-search scratch and a
// reader–writer lock.
import Foundation

/// A growable array of trivial values owned by its user (who calls `deallocate`).
struct RawBuffer<Element> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 64) {
        self.capacity = max(1, capacity)
        base = .allocate(capacity: self.capacity)
    }

    var allocatedBytes: Int { capacity * MemoryLayout<Element>.stride }

    /// Makes room for `extra` more elements; `base` may move.
    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    @inline(never)
    private mutating func grow(to needed: Int) {
        var newCapacity = capacity
        while newCapacity < needed { newCapacity *= 2 }
        let moved = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        moved.moveInitialize(from: base, count: count)
        base.deallocate()
        base = moved
        capacity = newCapacity
    }

    /// Appends `n` copies of `value`; returns the index of the first.
    @inline(__always) @discardableResult
    mutating func append(repeating value: Element, count n: Int) -> Int {
        reserve(n)
        (base + count).initialize(repeating: value, count: n)
        count += n
        return count - n
    }

    /// Appends `n` values from `source`; returns the index of the first.
    @discardableResult
    mutating func append(from source: UnsafePointer<Element>, count n: Int) -> Int {
        reserve(n)
        (base + count).initialize(from: source, count: n)
        count += n
        return count - n
    }

    @inline(__always)
    mutating func removeLast() { count -= 1 }

    mutating func removeAll() { count = 0 }

    func deallocate() { base.deallocate() }
}

/// A binary min-heap of (key, node) on raw storage. HNSW keeps its results in one keyed by
/// similarity (the root is the farthest kept) and its candidates in one keyed by −similarity (the
/// root is the nearest). The owner calls `deallocate`.
struct NodeHeap {
    private(set) var keys: RawBuffer<Float>
    private(set) var nodes: RawBuffer<Int32>

    init(capacity: Int = 256) {
        keys = RawBuffer(capacity: capacity)
        nodes = RawBuffer(capacity: capacity)
    }

    func deallocate() {
        keys.deallocate()
        nodes.deallocate()
    }

    var count: Int { keys.count }
    var isEmpty: Bool { keys.count == 0 }
    var topKey: Float { keys.base[0] }
    var topNode: Int32 { nodes.base[0] }

    mutating func removeAll() {
        keys.removeAll()
        nodes.removeAll()
    }

    @inline(__always)
    mutating func push(_ key: Float, _ node: Int32) {
        keys.append(repeating: key, count: 1)
        nodes.append(repeating: node, count: 1)
        let k = keys.base, n = nodes.base
        // Sift the hole up, then drop the new entry in.
        var child = keys.count - 1
        while child > 0 {
            let parent = (child - 1) >> 1
            guard key < k[parent] else { break }
            k[child] = k[parent]
            n[child] = n[parent]
            child = parent
        }
        k[child] = key
        n[child] = node
    }

    @inline(__always)
    mutating func pop() {
        let last = keys.count - 1
        let k = keys.base, n = nodes.base
        let key = k[last], node = n[last]
        keys.removeLast()
        nodes.removeLast()
        guard last > 0 else { return }
        // Sift the hole at the root down, then drop the old last entry in.
        var parent = 0
        while true {
            var child = 2 * parent + 1
            guard child < last else { break }
            if child + 1 < last && k[child + 1] < k[child] { child += 1 }
            guard k[child] < key else { break }
            k[parent] = k[child]
            n[parent] = n[child]
            parent = child
        }
        k[parent] = key
        n[parent] = node
    }
}

/// What one graph search needs besides the graph: a visited mark per node (an epoch number, so
/// clearing is one increment), the two heaps, the normalised query and room for link lists.
final class SearchScratch {
    private(set) var visited = RawBuffer<UInt32>(capacity: 1024)
    private(set) var epoch: UInt32 = 0
    var candidates = NodeHeap()
    var results = NodeHeap()
    let query: UnsafeMutablePointer<Float>
    let dimension: Int
    /// Room for one link list's rows and their similarities (at most `maxLinks`).
    let fresh: UnsafeMutablePointer<Int32>
    let freshSimilarities: UnsafeMutablePointer<Float>

    init(dimension: Int, maxLinks: Int) {
        self.dimension = dimension
        query = .allocate(capacity: dimension)
        query.initialize(repeating: 0, count: dimension)
        fresh = .allocate(capacity: maxLinks)
        fresh.initialize(repeating: 0, count: maxLinks)
        freshSimilarities = .allocate(capacity: maxLinks)
        freshSimilarities.initialize(repeating: 0, count: maxLinks)
    }

    deinit {
        visited.deallocate()
        candidates.deallocate()
        results.deallocate()
        query.deallocate()
        fresh.deallocate()
        freshSimilarities.deallocate()
    }

    /// Starts a new search over `nodeCount` nodes: nothing is visited. Returns the mark.
    func beginVisit(nodeCount: Int) -> UInt32 {
        if visited.count < nodeCount { visited.append(repeating: 0, count: nodeCount - visited.count) }
        if epoch == UInt32.max {
            visited.base.update(repeating: 0, count: visited.count)
            epoch = 0
        }
        epoch += 1
        return epoch
    }
}

/// Scratch objects for concurrent searches: take one, use it, give it back.
final class ScratchPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [SearchScratch] = []
    let dimension: Int, maxLinks: Int

    init(dimension: Int, maxLinks: Int) {
        self.dimension = dimension
        self.maxLinks = maxLinks
    }

    func withScratch<T>(_ body: (SearchScratch) -> T) -> T {
        let scratch = lock.withLock { free.popLast() } ?? SearchScratch(dimension: dimension, maxLinks: maxLinks)
        defer { lock.withLock { free.append(scratch) } }
        return body(scratch)
    }
}

/// Many readers or one writer (pthread rwlock).
final class ReadWriteLock: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    init() {
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func reading<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    func writing<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
