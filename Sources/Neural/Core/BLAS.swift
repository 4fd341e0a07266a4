// The one door to OpenBLAS: every dense product in glfd goes through these calls.
import COpenBLAS
import Foundation

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

    // MARK: Kernel choice

    /// The name of the kernel set OpenBLAS chose for this CPU ("SkylakeX", "Haswell", "Prescott"...).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// The kernel set this CPU should run, when OpenBLAS fell back to generic ones.
    ///
    /// Debian 12's OpenBLAS (0.3.21) does not recognise recent Xeons (family 6, model 207 here)
    /// and falls back to its Prescott (SSE3) kernels: sgemm at 10–20 GFLOP/s on a core that does
    /// 130–145 with its AVX-512 kernels (measured here). Returns nil when OpenBLAS chose well.
    public static var betterCoreType: String? {
        guard ["Prescott", "Nehalem", "Core2", "Katmai", "Banias", "Atom"].contains(coreName) else { return nil }
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// OpenBLAS reads OPENBLAS_CORETYPE once, when it is loaded, before any Swift code runs. So
    /// when it chose generic kernels and the user did not choose any, the executable starts itself
    /// again with the better choice in its environment. Call first thing in `main`; it returns
    /// only when no restart is needed (or the restart failed, in which case the slow kernels stay).
    public static func restartWithBetterKernelsIfNeeded() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, let core = betterCoreType else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", arguments)
        // Still here: exec failed. Carry on with what we have.
        unsetenv("OPENBLAS_CORETYPE")
    }
}
