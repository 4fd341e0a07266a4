// What the process holds, counted by its owners, so the daemon can say where its resident memory
// goes (issue 14: 2.4 GB grew to 3.4 GB with nothing to explain it).
//
// Networks hold Float buffers in three places: tensors that own their memory (activations,
// gradients, batch buffers), parameter arenas (values and gradients), and optimiser state. Each
// allocation and release adds to one process-wide counter, so every trainer replica, every loaded
// encoder and the activation buffers each keeps for its largest batch are in it, and an encoder
// that outlives its version shows as growth. Other structures (catalogs, graphs, replay views)
// report their own bytes from their capacities with the helpers below.
import Synchronization

public enum NeuralMemory {
    private static let held = Atomic<Int>(0)

    /// Bytes of Float buffers held by tensors, parameter arenas and optimiser state right now.
    public static var bytes: Int { held.load(ordering: .relaxed) }

    static func allocated(floats: Int) { held.add(floats * MemoryLayout<Float>.stride, ordering: .relaxed) }
    static func released(floats: Int) { held.subtract(floats * MemoryLayout<Float>.stride, ordering: .relaxed) }
}

extension Array {
    /// Bytes of the array's buffer (its capacity, not its count).
    public var allocatedBytes: Int { capacity * MemoryLayout<Element>.stride }
}

extension Dictionary {
    /// Bytes of the table's buffers, estimated: Swift's native dictionary keeps keys and values in
    /// arrays of a power-of-two bucket count (at most 3/4 full) and one bit per bucket.
    public var allocatedBytes: Int {
        let buckets = capacity == 0 ? 0 : (capacity * 4 / 3).nextPowerOfTwo
        return buckets * (MemoryLayout<Key>.stride + MemoryLayout<Value>.stride) + buckets / 8
    }
}

extension Int {
    fileprivate var nextPowerOfTwo: Int { self <= 1 ? 1 : 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount) }
}
