// Clustered synthetic embeddings, for the tests and `glf-bench knn`: a stand-in for a catalog of
// image embeddings (many items near a few modes) that is the same on every machine for a seed.
//
// Centres are drawn N(0, I_D); an item is a uniformly chosen centre plus N(0, spread² I_D) noise,
// normalised. At the default spread 0.5 a cluster's items have cosine similarity ≈ 0.8 to each
// other and ≈ 0 to other clusters' items, so the nearest neighbours of an item are (almost all) in
// its cluster and telling them apart takes the full D-dimensional noise: harder for a graph index
// than real embeddings, whose noise has far fewer effective dimensions.
import Neural

public struct SyntheticEmbeddings: Sendable {
    public let dimension: Int
    public let spread: Float
    /// [clusters, dimension] row-major.
    public let centres: [Float]

    public var clusters: Int { centres.count / dimension }

    public init(dimension: Int, clusters: Int, spread: Float = 0.5, seed: UInt64) {
        precondition(dimension >= 1 && clusters >= 1 && spread >= 0)
        self.dimension = dimension
        self.spread = spread
        var rng = SeededGenerator(seed: seed)
        centres = (0..<clusters * dimension).map { _ in rng.nextNormal() }
    }

    /// `count` unit vectors, [count, dimension] row-major; a different seed gives other items
    /// around the same centres (e.g. queries).
    public func sample(count: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        var out = [Float](repeating: 0, count: count * dimension)
        var row = [Float](repeating: 0, count: dimension)
        out.withUnsafeMutableBufferPointer { o in
            for i in 0..<count {
                let c = Int(rng.next() % UInt64(clusters))
                for j in 0..<dimension { row[j] = centres[c * dimension + j] + spread * rng.nextNormal() }
                row.withUnsafeBufferPointer { writeUnit($0.baseAddress!, count: dimension, to: o.baseAddress! + i * dimension) }
            }
        }
        return out
    }
}
