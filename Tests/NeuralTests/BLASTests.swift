// The BLAS door: every transpose combination against a Double product, at the shapes the
// encoder uses and at awkward ones. This is also the check that the OpenBLAS kernels chosen for
// this CPU (OPENBLAS_CORETYPE) compute correct results.
import GLFDTesting
import Neural
import Testing

struct GemmCase: CustomTestStringConvertible, Sendable {
    var m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool
    var testDescription: String { "\(m)×\(n)×\(k)\(transposeA ? " Aᵀ" : "")\(transposeB ? " Bᵀ" : "")" }
}

let gemmCases: [GemmCase] = [(256, 32, 288), (32, 288, 256), (131, 67, 301), (7, 3, 1)].flatMap { m, n, k in
    [false, true].flatMap { ta in [false, true].map { GemmCase(m: m, n: n, k: k, transposeA: ta, transposeB: $0) } } }

@Suite struct BLASTests {
    @Test(arguments: gemmCases)
    func gemmMatchesADoubleProduct(_ c: GemmCase) {
        let a = randomTensor(c.transposeA ? [c.k, c.m] : [c.m, c.k], seed: 1)
        let b = randomTensor(c.transposeB ? [c.n, c.k] : [c.k, c.n], seed: 2)
        let out = randomTensor([c.m, c.n], seed: 3)
        let before = out.array
        BLAS.gemm(transposeA: c.transposeA, transposeB: c.transposeB, m: c.m, n: c.n, k: c.k, alpha: 0.5,
                  a: a.data, lda: a.shape[1], b: b.data, ldb: b.shape[1], beta: 1, c: out.data, ldc: c.n)
        var worst = 0.0
        for i in 0..<c.m { for j in 0..<c.n {
            var sum = 0.0
            for p in 0..<c.k {
                let x = c.transposeA ? a[p * c.m + i] : a[i * c.k + p]
                let y = c.transposeB ? b[j * c.k + p] : b[p * c.n + j]
                sum += Double(x) * Double(y)
            }
            let expected = 0.5 * sum + Double(before[i * c.n + j])
            worst = max(worst, abs(Double(out[i * c.n + j]) - expected) / (Double(c.k).squareRoot() + 1))
        }}
        #expect(worst < 1e-5, "worst scaled error \(worst) with \(BLAS.configuration)")
    }
}
