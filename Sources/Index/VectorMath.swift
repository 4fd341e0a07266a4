// The small vector kernels both indexes share: unit normalisation and the dot product of two
// single vectors.
//
// Single-vector dot products (HNSW's similarities, one-query and filtered exact scans) are
// cblas_sdot, not a Swift SIMD loop: our build targets baseline x86-64, so a SIMD8<Float> loop
// runs as 4-wide SSE while OpenBLAS picks its AVX-512 kernel at run time. Measured for D = 128 on
// this machine (best of 9, two training runs on the cores): a cache-resident row 13 ns (sdot) vs
// 18 ns (SIMD loop); a random row of a 100,000-row matrix, as a graph walk reads them, 134 vs
// 212 ns; a scan of all 100,000 rows 5.6 vs 6.7 ms. sgemm with one query is no substitute: it
// packs the item block first, 8–13 ms for the same scan. Products of many queries are sgemm.
import Neural

/// Writes `vector / ‖vector‖` to `out` (`count` floats); a zero vector stays zero. The norm is
/// taken in Double and each quotient rounded once, so a vector that is already unit (e.g. entries
/// ±½ in four places) is copied exactly.
@inline(__always)
func writeUnit(_ vector: UnsafePointer<Float>, count: Int, to out: UnsafeMutablePointer<Float>) {
    var squares: Double = 0
    for i in 0..<count { squares += Double(vector[i]) * Double(vector[i]) }
    let norm = squares.squareRoot()
    if norm > 0 {
        for i in 0..<count { out[i] = Float(Double(vector[i]) / norm) }
    } else {
        for i in 0..<count { out[i] = 0 }
    }
}

/// `vector` scaled to unit length (zero stays zero).
func unitVector(_ vector: [Float]) -> [Float] {
    var out = [Float](repeating: 0, count: vector.count)
    vector.withUnsafeBufferPointer { v in
        out.withUnsafeMutableBufferPointer { o in
            guard let source = v.baseAddress, let destination = o.baseAddress else { return }
            writeUnit(source, count: v.count, to: destination)
        }
    }
    return out
}

/// Σ a[i]·b[i] over `count` floats.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    BLAS.dot(count: count, a, b)
}

/// Offers `query · vectors[row]` for each of `rows` to `best`: an exact scan over a subset.
/// vectors is [N, dimension] row-major.
@inline(__always)
func scanRows(_ rows: UnsafeBufferPointer<Int32>, query: UnsafePointer<Float>, vectors: UnsafePointer<Float>,
              dimension: Int, ids: UnsafePointer<UInt64>, into best: inout TopK, where keep: (Int) -> Bool = { _ in true }) {
    for row in rows {
        let r = Int(row)
        guard keep(r) else { continue }
        best.offer(score: dot(query, vectors + r * dimension, count: dimension), id: ids[r])
    }
}
