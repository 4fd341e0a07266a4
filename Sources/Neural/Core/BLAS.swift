// The one door to OpenBLAS: every dense product in glfd goes through these calls.
import COpenBLAS

public enum BLAS {
    /// Sets how many threads OpenBLAS uses for the calls that follow (process-wide).
    public static func setThreads(_ count: Int) { openblas_set_num_threads(Int32(max(1, count))) }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Describes the build: version, target core and threading.
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// C[M,N] = alpha · op(A) · op(B) + beta · C, row-major; op(A) is [M,K], op(B) is [K,N].
    /// Leading dimensions are those of the matrices as stored (before op).
    @inline(__always)
    public static func gemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// y = alpha · x + y over `count` floats.
    @inline(__always)
    public static func axpy(count: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(Int32(count), alpha, x, 1, y, 1)
    }

    /// x ← alpha · x.
    @inline(__always)
    public static func scale(count: Int, alpha: Float, x: UnsafeMutablePointer<Float>) {
        cblas_sscal(Int32(count), alpha, x, 1)
    }

    @inline(__always)
    public static func dot(count: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
        cblas_sdot(Int32(count), x, 1, y, 1)
    }

    /// Euclidean norm.
    @inline(__always)
    public static func norm(count: Int, _ x: UnsafePointer<Float>) -> Float {
        cblas_snrm2(Int32(count), x, 1)
    }
}
