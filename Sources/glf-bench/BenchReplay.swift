// glf-bench replay: what the MinRed replay policy costs, through a real store.
//
//   view          ImageStore.setReplayEmbeddings on N members: every member's 32 nearest members
//                 from all N² similarities (sgemm in blocks + a top-32 per row), the work the daemon
//                 does after each catalog build; beside it, tools/bench/replay_peer.py times FAISS
//                 (IndexFlatIP, the N vectors searched against themselves, k 33) on the same vectors
//   ingest        durable ingest of N/16 more items (what arrives between two views in the daemon)
//                 into the full set, each evicting a member:
//                 minred (chosen through the view) against fifo (the oldest), same records, same disk
//
// The embeddings are Index's synthetic clustered unit vectors (real embeddings need a trained
// model; the cost depends only on N and D). `--save-npy DIR` writes members.npy and glf_replay.json
// for the peer. Nothing here asserts a time.
import ArgumentParser
import Foundation
import Imaging
import Index
import Neural
import Store

struct BenchReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "MinRed's view of a full replay set (all-pairs nearest members) and ingest with its evictions, against fifo.")

    @Option(help: "Replay capacity: members in the set.")
    var members = 65_536

    @Option(help: "Dimension of the embeddings (the default encoder's is 256).")
    var dim = 256

    @Option(help: "Gaussian clusters the synthetic embeddings are drawn around.")
    var clusters = 100

    @Option(help: "Arrivals into the full set, each evicting a member (default: a sixteenth of --members, what arrives between two views in the daemon).")
    var arrivals: Int?

    @Option(help: "OpenBLAS threads for the view.")
    var threads = 1

    @Option(help: "Where the temporary stores go.")
    var dir = NSTemporaryDirectory()

    @Option(help: "Also write members.npy and glf_replay.json to this folder (for tools/bench/replay_peer.py).")
    var saveNpy: String?

    func validate() throws {
        guard members >= 16, dim >= 1, clusters >= 1, threads >= 1 else {
            throw ValidationError("--members must be at least 16; --dim, --clusters and --threads at least 1")
        }
    }

    func run() throws {
        BLAS.setThreads(threads)
        warnAboutOpenBLASCore()
        let vectors = SyntheticEmbeddings(dimension: dim, clusters: clusters, seed: 1).sample(count: members, seed: 2)
        let arrivals = self.arrivals ?? max(1, members / 16)
        note("glf-bench replay: \(members) members × \(dim), \(arrivals) arrivals, stores in \(dir)")

        let minred = try filledStore(.minred)
        let started = Date()
        let seen = minred.store.setReplayEmbeddings(minred.ids, vectors, dimension: dim)
        let viewSeconds = Date().timeIntervalSince(started)
        precondition(seen == members, "the view holds \(seen) of \(members) members")
        let flops = 2 * Double(members) * Double(members) * Double(dim)
        print(String(format: "  view of %d members        %8.2f s   (%.1f GFLOP/s of sgemm work, %d BLAS thread%@)",
                     members, viewSeconds, flops / viewSeconds / 1e9, threads, threads == 1 ? "" : "s"))

        let fifo = try filledStore(.fifo)
        let fifoRate = try ingestRate(fifo.store, from: members, count: arrivals)
        let minredRate = try ingestRate(minred.store, from: members, count: arrivals)
        print(String(format: "  ingest, fifo evicting      %8.0f items/s", fifoRate))
        print(String(format: "  ingest, minred evicting    %8.0f items/s   %.2f of fifo", minredRate, minredRate / fifoRate))
        let left = minred.store.statistics.replayEmbedded
        print("  members still seen         \(left) of \(members) (each arrival evicts a seen member)")
        for filled in [minred, fifo] {
            filled.store.close()
            try? FileManager.default.removeItem(atPath: filled.directory)
        }

        if let saveNpy {
            let folder = URL(fileURLWithPath: saveNpy)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try NumpyFile.write(NumpyArray(shape: [members, dim], values: vectors), to: folder.appendingPathComponent("members.npy"))
            let summary: [String: Double] = ["members": Double(members), "dim": Double(dim), "threads": Double(threads),
                                             "view_seconds": viewSeconds]
            try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
                .write(to: folder.appendingPathComponent("glf_replay.json"))
            note("wrote members.npy [\(members), \(dim)] and glf_replay.json to \(saveNpy)")
        }
    }

    /// A store of `members` items under `policy`, its replay set full.
    private func filledStore(_ policy: ReplayPolicyKind) throws -> (store: ImageStore, ids: [UInt64], directory: String) {
        let directory = (dir as NSString).appendingPathComponent(".bench-replay-\(policy)-\(UUID().uuidString)")
        let store = try ImageStore(StoreConfiguration(directory: directory,
                                                      replay: ReplayConfiguration(policy: policy, capacity: members)))
        var ids: [UInt64] = []
        for start in stride(from: 0, to: members, by: 1024) {
            ids += try store.ingestAndWait((start..<min(start + 1024, members)).map(item))
        }
        return (store, ids, directory)
    }

    /// Durable items/s of `count` arrivals in requests of 256.
    private func ingestRate(_ store: ImageStore, from first: Int, count: Int) throws -> Double {
        let started = Date()
        for start in stride(from: first, to: first + count, by: 256) {
            _ = try store.ingestAndWait((start..<min(start + 256, first + count)).map(item))
        }
        return Double(count) / Date().timeIntervalSince(started)
    }

    /// A 32×32 RGB item whose pixels derive from `n`.
    private func item(_ n: Int) -> NewItem {
        let shape = CanonicalShape()
        let pixels = (0..<shape.pixelBytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n &* 17) }
        return NewItem(image: DecodedImage(width: shape.side, height: shape.side, channels: shape.channels, pixels: pixels),
                       originalWidth: shape.side, originalHeight: shape.side, originalFormat: .raw, source: "bench")
    }
}
