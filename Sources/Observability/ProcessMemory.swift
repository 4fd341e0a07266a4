// The process's memory as the kernel and the allocator count it. The owners of large structures
// count their own bytes (NeuralMemory, the catalogs, the replay view); these numbers say how much
// of the resident set that explains, and what the rest is:
//   resident        pages of the process in RAM (/proc/self/statm)
//   residentFile    of them, pages mapped from files: LMDB's map as the store is read, the binary
//   heapInUse       bytes malloc handed out and not yet freed (mallinfo2: uordblks + hblkhd)
//   heapHeld        bytes malloc got from the kernel (arena + hblkhd): held − in use is free
//                   memory it keeps for reuse, spread over its per-thread arenas
import CMalloc
import Foundation

public struct ProcessMemory: Sendable, Equatable {
    public var residentBytes: Int
    public var residentFileBytes: Int
    public var heapInUseBytes: Int
    public var heapHeldBytes: Int

    /// Now. Zero where the system does not say (no /proc).
    public static func current() -> ProcessMemory {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        // statm: size resident shared text lib data dt, in pages; `shared` is the file-backed part.
        let fields = ((try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? "")
            .split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let heap = mallinfo2()
        return ProcessMemory(residentBytes: fields.count > 2 ? fields[1] * page : 0,
                             residentFileBytes: fields.count > 2 ? fields[2] * page : 0,
                             heapInUseBytes: Int(heap.uordblks + heap.hblkhd),
                             heapHeldBytes: Int(heap.arena + heap.hblkhd))
    }

    /// Returns free heap memory to the kernel (glibc keeps it otherwise, per arena); true if any was.
    @discardableResult
    public static func returnFreeHeap() -> Bool { malloc_trim(0) != 0 }
}
