// glf-bench daemon: glfd end to end, in this process, over real loopback ZeroMQ sockets, with a
// real durable store of real JPEGs: what a client of the daemon gets, with training off and on.
//
//   ingest      DEALER clients, each with several ingest requests in flight; images/s counted
//               when acknowledged (durable), and each request's time to its acknowledgement
//   catalog     a restarted daemon with no saved catalog embeds every stored item under the
//               current model version before it answers knn: items/s from start until the first
//               answer; restarted again, it loads the catalog it saved: seconds until knn answers
//   embed       single-image requests one after another (latency p50/p99), then several in
//               flight and many images per request (throughput)
//   knn         by vector, k nearest of every stored item: exact (`exact: true`, a scan of all
//               vectors) and approximate (HNSW), one after another (latency) and several in flight
//               (throughput); recall@k of approximate against exact on the same queries (by score:
//               the store repeats its files, and copies tie). Query
//               vectors are the embed replies of held-out images (never ingested).
//   training on the same state restarted with training running (updates per image 4, small
//               batches, so steps run for the whole measurement): the same numbers, the step rate
//               with no requests and while queried, and ingest again: what training and queries
//               cost each other
//   publication the same state restarted with training on and a version published at its first
//               step (and every as many steps after): the rebuild of the whole store under it
//               (embedding, then HNSW), training's images/s during each against training alone,
//               the time from the publication until knn answers from the new version, and the
//               memory by part at the end (status's `memory`; the resident set is this
//               process's, the bench's own buffers included)
//   in process  the exported catalog in our ExactIndex and HNSWIndex (the daemon's parameters)
//               on one thread, no ZeroMQ, the fastest of three passes over the queries: the
//               like-for-like figures for tools/bench/daemon_peer.py, which runs FAISS
//               IndexFlatIP and IndexHNSWFlat on exactly these vectors and queries
//
// Why three daemon runs on one state: glfd cannot switch training on and off while it runs, and
// a catalog absorbs items ingested after it was built only as an exact-search tail (see
// Catalog.swift), so the query phases start a daemon on the finished store, as a restarted glfd
// would, and the catalog they search is the base + HNSW index a long-running daemon has. No
// version is published during the query phases (publishing rebuilds the catalog; that cost is the
// catalog line), so both phases search the same vectors: those of the initial version.
//
// Latencies over ZeroMQ include the round trip and our client's decoding of the reply. glfd
// answers embed and knn on one serial queue, so requests in flight hide round trips but add no
// parallelism. Nothing here asserts a time: the machine is shared, the ratios are what to read.
import ArgumentParser
import Daemon
import Datasets
import Foundation
import GLF
import GLFDClient
import Index
import Neural
import Protocol
import Store

struct BenchDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "glfd end to end over ZeroMQ: ingest images/s, embed and knn latency and throughput, training off and on.",
        discussion: """
            Writes embeddings.npy, queries.npy, glfd_exact.npy and glf.json to --out; then \
            `python3 tools/bench/daemon_peer.py --dir OUT` runs FAISS on the same vectors.
            """)

    @Option(help: "Folder of JPEG/PNG files (e.g. CIFAR-10 unpacked); they are repeated up to --count.")
    var data: String

    @Option(help: "Images to ingest (and so vectors to search).")
    var count = 100_000

    /// What glfd runs with no configuration: every daemon setting not given below is this one's.
    private static let shipped = DaemonSettings(stateDirectory: URL(fileURLWithPath: "."))

    @Option(help: "Encoder width of the daemon's model (the embedding has 8 × width dimensions).")
    var width = shipped.training.encoder.width

    @Option(help: "Held-out query images (spread evenly over --data, never ingested).")
    var queries = 200

    @Option(help: "Neighbours per knn query.")
    var k = 10

    @Option(help: "Folder for embeddings.npy, queries.npy, glfd_exact.npy and glf.json (for tools/bench/daemon_peer.py).")
    var out: String

    @Option(help: "Where the temporary daemon state goes (removed at the end).")
    var dir = "."

    @Option(help: "Ingest clients, one DEALER socket and thread each.")
    var clients = 2

    @Option(help: "Images per ingest request.")
    var batch = 64

    @Option(help: "Requests each client keeps in flight (ingest, and the in-flight query measurements).")
    var inflight = 8

    @Option(help: "Images per request for the batched embed throughput.")
    var embedBatch = 64

    @Option(help: "Images ingested again while training runs.")
    var trainingIngest = 10_000

    @Option(help: "Training batch while training is on (glfd's training.batch).")
    var trainingBatch = shipped.training.batch

    @Option(help: "Trainer threads (glfd's training.threads).")
    var trainingThreads = shipped.training.workers

    @Option(help: "Seconds the step rate is measured with no requests, before the queries with training on.")
    var trainingAloneSeconds = 30.0

    func validate() throws {
        guard count >= 1, width >= 1, queries >= 1, k >= 1, clients >= 1, batch >= 1, inflight >= 1, embedBatch >= 1,
              trainingIngest >= 0, trainingBatch >= 2, trainingThreads >= 1, trainingAloneSeconds >= 0 else {
            throw ValidationError("--count, --width, --queries, --k, --clients, --batch, --inflight, --embed-batch and --training-threads must be at least 1, --training-batch at least 2, --training-alone-seconds at least 0")
        }
        guard batch <= ProtocolLimits.default.maxImagesPerRequest, embedBatch <= ProtocolLimits.default.maxImagesPerRequest else {
            throw ValidationError("--batch and --embed-batch: at most \(ProtocolLimits.default.maxImagesPerRequest) images per request")
        }
        guard k <= ProtocolLimits.default.maxK else { throw ValidationError("--k: at most \(ProtocolLimits.default.maxK)") }
    }

    func run() throws {
        warnAboutOpenBLASCore()
        let files = try imageFiles([data])
        guard files.count > queries else { throw ValidationError("\(data) has \(files.count) images; need more than --queries \(queries)") }
        // Every (files / queries)-th file is held out: queries from every class folder, none stored.
        let heldOut = Set((0..<queries).map { $0 * files.count / queries })
        let queryImages = try heldOut.sorted().map { try [UInt8](Data(contentsOf: URL(fileURLWithPath: files[$0]))) }
        let stored = try files.indices.filter { !heldOut.contains($0) }.prefix(count)
            .map { try [UInt8](Data(contentsOf: URL(fileURLWithPath: files[$0]))) }
        let work = (0..<count).map { stored[$0 % stored.count] }
        let outFolder = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: outFolder, withIntermediateDirectories: true)
        let state = URL(fileURLWithPath: dir).appendingPathComponent(".bench-daemon-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: state) }

        print("glf-bench daemon: \(count) images (\(stored.count) distinct files from \(data)), \(queries) held-out query images, k \(k)")
        print("  glfd in process on tcp://127.0.0.1, durable store in \(dir), encoder width \(width) (dim \(8 * width)), \(BLAS.configuration)")
        print("  ingest: \(clients) DEALER client\(clients == 1 ? "" : "s") × \(inflight) requests in flight × \(batch) images; queries: one after another, then \(inflight) in flight")
        let used = try startSettings(state: state, training: true)
        let hnsw = used.catalog.hnsw
        print("  HNSW as the daemon builds it: M \(hnsw.m), efConstruction \(hnsw.efConstruction), efSearch \(hnsw.efSearch) (knn fetches k + 16 and keeps k)")
        print("  training: \(used.training.method.rawValue)\(used.training.adc.map { " + ADC (\($0.summary))" } ?? ""), width \(width), "
              + "batch \(used.training.batch), \(used.training.optimiser.kind.rawValue) lr \(used.training.optimiser.learningRate), "
              + "\(used.trainer.updatesPerImage) updates per image, \(used.training.workers) thread\(used.training.workers == 1 ? "" : "s") at nice \(used.trainer.nice), "
              + "replay \(used.store.replay.policy.rawValue), min_items \(used.trainer.minItems); glfd's defaults but for the options given and no version published while measuring")

        // 1. Ingest into a new store, training off (the trainer only publishes the initial version).
        //    The initial version's catalog is built first: a build running while items arrive
        //    walks the store until it has embedded them all, and would outlive this daemon.
        print(" ingest, training off")
        let ingestOff = try withDaemon(state: state, training: false) { daemon in
            let endpoint = daemon.server.boundEndpoints.requests
            _ = try waitForCatalog(benchClient(endpoint), lastID: 1, orNotFound: true)
            return try ingest(work, firstID: 1, endpoint: endpoint)
        }
        report("ingest over ZeroMQ, durable", ingestOff.text)

        // 2. Queries, training off.
        print(" queries, training off (the initial model, no steps)")
        let lastID = UInt64(count)
        let (off, catalog) = try withDaemon(state: state, training: false) { daemon in
            let off = try measureQueries(daemon: daemon, lastID: lastID, queryImages: queryImages, queryVectors: nil,
                                         catalogLabel: "catalog embed at start, none saved")
            return (off, try exportCatalog(endpoint: daemon.server.boundEndpoints.requests, version: off.version))
        }

        // 3. Queries and ingest, training on.
        print(" queries, training on (no version published)")
        let (on, stepReached) = try withDaemon(state: state, training: true) { daemon in
            let endpoint = daemon.server.boundEndpoints.requests
            let on = try measureQueries(daemon: daemon, lastID: lastID, queryImages: queryImages, queryVectors: off.queryVectors,
                                        catalogLabel: "restart with the saved catalog")
            if trainingIngest > 0 {
                let ingestOn = try ingest(Array(work.prefix(trainingIngest)), firstID: lastID + 1, endpoint: endpoint)
                report("ingest over ZeroMQ, durable", ingestOn.text + String(format: "   %.2f of training off", ingestOn.rate / ingestOff.rate))
                try measureTailFold(endpoint: endpoint, lastID: lastID + UInt64(trainingIngest))
            }
            let status = try benchClient(endpoint).call(.status).result(as: StatusResult.self)
            report("training, status at the end", String(format: "%9.1f images/s   (status: step %d, loss %.3f, collapse %.3f)",
                                                         status.training.imagesPerSecond, status.training.step,
                                                         status.training.loss["total"] ?? .nan, status.training.collapse))
            return (on, status.training.step)
        }

        // 5 (before the in-process figures, which need no daemon). One publication while training.
        print(" a version published while training (the whole store re-embedded under it)")
        let publication = try withDaemon(state: state, training: true, publishAtStep: stepReached + 1) { daemon in
            try measurePublication(daemon: daemon, trainingAlone: on.figures["training_alone_images_per_second"])
        }

        // 4. The exported vectors in process, one thread, for the FAISS peer.
        print(" in process, on the exported vectors (no ZeroMQ, 1 thread): compare with tools/bench/daemon_peer.py")
        let inProcess = measureInProcess(catalog: catalog, queryVectors: off.queryVectors, daemonExactScores: off.exactScores)
        try writePeerFiles(to: outFolder, catalog: catalog, queryVectors: off.queryVectors, daemonExact: off.exactAnswers,
                           off: off, on: on, publication: publication, inProcess: inProcess, ingestRate: ingestOff.rate)
        print("  wrote embeddings.npy [\(catalog.ids.count), \(catalog.dimension)], queries.npy [\(queries), \(catalog.dimension)], glfd_exact.npy and glf.json to \(out)")
    }

    // MARK: The daemon

    /// Starts a daemon on `state`, runs `body` with it, and stops it. The daemon, and with it its
    /// LMDB environment, is gone when this returns, before the next one opens the same files
    /// (LMDB: never open one environment twice in a process).
    /// `publishAtStep`: the first step at which a version is published, and every as many steps after
    /// (none otherwise).
    private func withDaemon<Result>(state: URL, training: Bool, publishAtStep: Int? = nil,
                                    _ body: (GLFDaemon) throws -> Result) throws -> Result {
        var settings = try startSettings(state: state, training: training)
        if let publishAtStep {
            // Versions are due every P steps after the last one (the initial version, step 0):
            // P = the step wanted publishes there, and the next only P steps later.
            settings.trainer.publishEverySteps = publishAtStep
        }
        let daemon = try GLFDaemon(settings: settings)
        daemon.start()  // publishes the initial version on a new state
        defer { daemon.stop() }
        return try body(daemon)
    }

    /// glfd's defaults, but for the options given, loopback ports, and no publication (a new
    /// version would re-embed the catalog in the middle of a measurement).
    private func startSettings(state: URL, training: Bool) throws -> DaemonSettings {
        var settings = DaemonSettings(stateDirectory: state)
        settings.server.requestEndpoint = "tcp://127.0.0.1:*"
        settings.server.announceEndpoint = "tcp://127.0.0.1:*"
        settings.server.maxInflightIngestsPerClient = max(inflight, 8)
        settings.training.encoder = EncoderConfig(inputChannels: 3, imageSize: settings.store.canonical.side, width: width)
        settings.training.batch = trainingBatch
        settings.training.workers = trainingThreads
        settings.trainingEnabled = training
        // A small --count still trains in the training-on phase (glfd waits for min_items).
        settings.trainer.minItems = min(settings.trainer.minItems, count)
        settings.trainer.publishEverySteps = Int.max / 2
        settings.trainer.publishEverySeconds = .greatestFiniteMagnitude
        settings.trainer.publishWhenIdleSeconds = .greatestFiniteMagnitude
        try settings.training.adc?.validate(batch: trainingBatch)
        return settings
    }

    // MARK: Ingest

    private struct IngestFigures {
        var rate: Double
        var ackLatencies: [Double]
        var text: String {
            String(format: "%9.0f images/s   (acknowledged; request ack p50 %.1f ms, p99 %.1f ms)",
                   rate, percentile(ackLatencies, 0.5) * 1e3, percentile(ackLatencies, 0.99) * 1e3)
        }
    }

    /// Ingests `work` through `clients` DEALER clients, each keeping `inflight` requests of `batch`
    /// images in flight; checks that the ids acknowledged are firstID... in a block.
    private func ingest(_ work: [[UInt8]], firstID: UInt64, endpoint: String) throws -> IngestFigures {
        let requests = stride(from: 0, to: work.count, by: batch).map { start in
            Command.ingest(work[start..<min(start + batch, work.count)].map { ImagePayload($0, ImageDescriptor(source: "bench")) })
        }
        let results = ThreadResults<(replies: [Reply], latencies: [Double])>()
        let started = ContinuousClock.now
        let (clients, inflight) = (self.clients, self.inflight)
        let threads = (0..<clients).map { client in
            Thread {
                do {
                    let mine = Array(stride(from: client, to: requests.count, by: clients).map { requests[$0] })
                    let result = try benchClient(endpoint).pipeline(mine, inflight: inflight)
                    results.append((result.replies, result.latencies))
                } catch {
                    results.fail(error)
                }
            }
        }
        threads.forEach { $0.start() }
        results.wait(for: clients)
        let elapsed = seconds(since: started)
        let (done, error) = results.all
        if let error { throw error }
        var ids: [UInt64] = []
        for reply in done.flatMap(\.replies) { ids += try reply.result(as: IngestResult.self).ids }
        guard ids.sorted() == Array(firstID..<firstID + UInt64(work.count)) else {
            throw BenchDaemonError("ingest acknowledged \(ids.count) ids, not the \(work.count) expected from \(firstID)")
        }
        return IngestFigures(rate: Double(work.count) / elapsed, ackLatencies: done.flatMap(\.latencies))
    }

    // MARK: Queries over ZeroMQ

    private struct QueryFigures {
        var version = 0
        var queryVectors: [[Float]] = []
        var exactAnswers: [[UInt64]] = []
        var exactScores: [[Float]] = []
        var figures: [String: Double] = [:]
    }

    /// Catalog readiness, embed, knn exact and approximate on a started daemon. With
    /// `queryVectors` nil the embed replies of the query images become the query vectors.
    private func measureQueries(daemon: GLFDaemon, lastID: UInt64, queryImages: [[UInt8]],
                                queryVectors given: [[Float]]?, catalogLabel: String) throws -> QueryFigures {
        let client = try benchClient(daemon.server.boundEndpoints.requests)
        var result = QueryFigures()

        // The catalog: knn answers not_ready until every stored item is embedded under the version.
        let catalogSeconds = try waitForCatalog(client, lastID: lastID)
        let catalogRate = Double(lastID) / catalogSeconds
        report(catalogLabel, String(format: "%9.0f items/s    (%d items in %.1f s: start → first knn answer)",
                                                catalogRate, lastID, catalogSeconds))
        result.figures["catalog_items_per_second"] = catalogRate
        // knn answers exactly from here; measure once the approximate index is attached, as a
        // daemon that has run a while has it.
        let graphStart = ContinuousClock.now
        while try client.call(.status).result(as: StatusResult.self).catalog.building != nil { usleep(100_000) }
        report("approximate index attached", String(format: "%9.1f s later", seconds(since: graphStart)))

        // With training on, measure only once steps run, and count the steps taken meanwhile.
        var trainingStart: (step: Int, at: ContinuousClock.Instant)?
        if daemon.settings.trainingEnabled {
            let first = try client.call(.status).result(as: StatusResult.self).training.step
            var step = first
            let deadline = ContinuousClock.now + .seconds(600)
            while step < first + 2 && ContinuousClock.now < deadline {
                usleep(200_000)
                step = try client.call(.status).result(as: StatusResult.self).training.step
            }
            if step < first + 2 { note("warning: training took no steps in 10 minutes; measuring anyway") }
            // The step rate with nothing else asked of the daemon, to set beside the one under queries.
            let idleStart = ContinuousClock.now
            Thread.sleep(forTimeInterval: trainingAloneSeconds)
            let after = try client.call(.status).result(as: StatusResult.self).training.step
            let idleSeconds = seconds(since: idleStart)
            let idleRate = Double((after - step) * trainingBatch) / idleSeconds
            report("training alone (no requests)", String(format: "%9.1f images/s   (%d steps of %d in %.1f s)",
                                                          idleRate, after - step, trainingBatch, idleSeconds))
            result.figures["training_alone_images_per_second"] = idleRate
            trainingStart = (after, .now)
        }

        // Embed: one image per request, one after another, then several in flight, then batches.
        let single = queryImages.map { Command.embed([ImagePayload($0)]) }
        let sequential = try client.pipeline(single, inflight: 1)
        var vectors: [[Float]] = []
        for reply in sequential.replies {
            let embedded = try reply.result(as: EmbedResult.self)
            result.version = embedded.version
            guard let vector = reply.payloads.first.flatMap({ VectorFrame.decode($0, dimension: embedded.dim) }) else {
                throw BenchDaemonError("embed reply without a vector of dim \(embedded.dim)")
            }
            vectors.append(vector)
        }
        result.queryVectors = given ?? vectors
        if let given, given != vectors { note("note: embeddings differ from the training-off phase's (same version \(result.version))") }
        report("embed 1 image, one after another", latencyText(sequential.latencies, seconds: sequential.seconds, unit: "images/s"))
        let parallel = try client.pipeline(single, inflight: inflight)
        try parallel.replies.forEach { _ = try $0.result(as: EmbedResult.self) }
        report("embed 1 image, \(inflight) in flight", rateText(Double(single.count) / parallel.seconds, "images/s"))
        let batchCount = max(inflight, 16)
        let batched = (0..<batchCount).map { request in
            Command.embed((0..<embedBatch).map { ImagePayload(queryImages[(request * embedBatch + $0) % queryImages.count]) })
        }
        let batchedRun = try client.pipeline(batched, inflight: min(inflight, 4))
        try batchedRun.replies.forEach { _ = try $0.result(as: EmbedResult.self) }
        report("embed \(embedBatch) images/request, \(min(inflight, 4)) in flight",
               rateText(Double(batchCount * embedBatch) / batchedRun.seconds, "images/s"))
        result.figures["embed_p50_ms"] = percentile(sequential.latencies, 0.5) * 1e3
        result.figures["embed_p99_ms"] = percentile(sequential.latencies, 0.99) * 1e3

        // knn by vector: exact, then approximate, on the same query vectors.
        var answers: [Bool: [[UInt64]]] = [:], scores: [Bool: [[Float]]] = [:]
        for exact in [true, false] {
            let name = exact ? "exact" : "approx"
            let commands = result.queryVectors.map { Command.knn(KNNQuery(.vector($0), k: k, exact: exact)) }
            let one = try client.pipeline(commands, inflight: 1)
            let found = try one.replies.map { try $0.result(as: KNNResult.self) }
            answers[exact] = found.map { $0.neighbours.map(\.id) }
            scores[exact] = found.map { $0.neighbours.map(\.score) }
            if found.contains(where: { $0.exact != exact }) {
                note("note: knn asked for exact \(exact) was answered exact \(!exact) (no HNSW below index.approximate_min_items)")
            }
            let many = try client.pipeline(commands, inflight: inflight)
            try many.replies.forEach { _ = try $0.result(as: KNNResult.self) }
            let label = exact ? "knn exact over ZeroMQ" : "knn approximate over ZeroMQ"
            var text = latencyText(one.latencies, seconds: one.seconds, unit: "queries/s")
            if !exact { text += String(format: "   recall@%d %.4f", k, recallByScore(scores[false]!, exact: scores[true]!, k: k)) }
            report(label + ", one after another", text)
            report(label + ", \(inflight) in flight", rateText(Double(commands.count) / many.seconds, "queries/s"))
            result.figures["knn_\(name)_p50_ms"] = percentile(one.latencies, 0.5) * 1e3
            result.figures["knn_\(name)_p99_ms"] = percentile(one.latencies, 0.99) * 1e3
            result.figures["knn_\(name)_queries_per_second"] = Double(commands.count) / one.seconds
            result.figures["knn_\(name)_inflight_queries_per_second"] = Double(commands.count) / many.seconds
        }
        result.exactAnswers = answers[true]!
        result.exactScores = scores[true]!
        result.figures["knn_recall"] = recallByScore(scores[false]!, exact: scores[true]!, k: k)

        if let trainingStart {
            let status = try client.call(.status).result(as: StatusResult.self)
            let elapsed = seconds(since: trainingStart.at)
            let rate = Double((status.training.step - trainingStart.step) * trainingBatch) / elapsed
            report("training while queried", String(format: "%9.1f images/s   (%d steps of %d in %.1f s; status says %.1f images/s)",
                                                    rate, status.training.step - trainingStart.step, trainingBatch, elapsed,
                                                    status.training.imagesPerSecond))
            result.figures["training_images_per_second"] = rate
        }
        return result
    }

    /// Waits for the daemon's first publication, then for knn to answer from that version's
    /// catalog, sampling status every half second meanwhile.
    private func measurePublication(daemon: GLFDaemon, trainingAlone: Double?) throws -> [String: Double] {
        let client = try benchClient(daemon.server.boundEndpoints.requests)
        let first = try client.call(.status).result(as: StatusResult.self).model.version
        // The phases, told apart by what knn answers (status's `building` names the newest version
        // due, not what the catalog queue is doing): the restart first attaches the old catalog's
        // graph (knn answers exactly, old version); then the new version's catalog is embedded
        // (old version, approximate); knn answers from the new version (exactly, until its graph
        // is attached); its graph attached (new version, approximate): done. Versions keep coming
        // every few hundred steps meanwhile, so the catalog is never quiet; the phases are not
        // waiting for it.
        let probe = Command.knn(KNNQuery(.item(1), k: k, exact: false))
        _ = try waitForCatalog(client, lastID: 1)   // the restart loads the saved catalog first
        var published: ModelResult?
        var embedStarted: ContinuousClock.Instant?, served: ContinuousClock.Instant?, servedLag = Double.nan
        var samples: [(at: ContinuousClock.Instant, step: Int, phase: Int)] = [], peakResident = 0
        let deadline = ContinuousClock.now + .seconds(4 * 3600)
        var last = try client.call(.status).result(as: StatusResult.self)
        var answer = try client.call(probe).result(as: KNNResult.self)
        while ContinuousClock.now < deadline {
            last = try client.call(.status).result(as: StatusResult.self)
            answer = try client.call(probe).result(as: KNNResult.self)
            peakResident = max(peakResident, last.memory?.residentBytes ?? 0)
            if published == nil && last.model.version > first { published = last.model }
            if let version = published?.version {
                // Below index.approximate_min_items there is no graph: knn answers exactly throughout.
                let graphs = daemon.settings.catalog.approximate && last.catalog.items >= daemon.settings.catalog.approximateMinItems
                if answer.version < version && (!graphs || !answer.exact) && embedStarted == nil { embedStarted = .now }
                if answer.version >= version && served == nil {
                    served = .now
                    embedStarted = embedStarted ?? served   // a store small enough to be embedded between two samples
                    servedLag = Date().timeIntervalSince1970 - (published?.publishedAt ?? .nan)
                }
                if answer.version >= version && (!graphs || !answer.exact) { break }
                // 1: embedding the new version's catalog; 2: its graph.
                if embedStarted != nil { samples.append((.now, last.training.step, served == nil ? 1 : 2)) }
            }
            usleep(500_000)
        }
        guard let published, let embedStarted, let served, answer.version >= published.version else {
            throw BenchDaemonError("no version was served with its graph within 4 hours of the restart (last status: \(last.catalog))")
        }
        var figures: [String: Double] = [:]
        let (embedSeconds, graphSeconds) = (served - embedStarted, ContinuousClock.now - served)
        func asSeconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
        let items = Double(last.catalog.items)
        report("rebuild: embed \(last.catalog.items) items", String(format: "%9.1f s          (%.0f items/s, training on)",
                                                                    asSeconds(embedSeconds), items / asSeconds(embedSeconds)))
        report("rebuild: HNSW graph", String(format: "%9.1f s          (knn answers exactly meanwhile)", asSeconds(graphSeconds)))
        report("publication → knn answers from it", String(format: "%9.1f s          (version %d, step %d; %.0f s of it waiting for the old graph)",
                                                            servedLag, published.version, published.step,
                                                            servedLag - asSeconds(embedSeconds)))
        // Training's images/s over each phase, from the steps taken (status's own rate covers 30 s).
        for (phase, label) in [(1, "training while it embeds"), (2, "training while the graph is built")] {
            let inPhase = samples.filter { $0.phase == phase }
            guard let a = inPhase.first, let b = inPhase.last, b.at > a.at else { continue }
            let rate = Double((b.step - a.step) * trainingBatch) / asSeconds(b.at - a.at)
            report(label, String(format: "%9.1f images/s   (%@)", rate,
                                 trainingAlone.map { String(format: "%.2f of training alone", rate / $0) } ?? "-"))
            figures[phase == 1 ? "training_during_embed_images_per_second" : "training_during_graph_images_per_second"] = rate
        }
        if let memory = last.memory {
            func mib(_ bytes: Int) -> Double { Double(bytes) / 1_048_576 }
            report("memory after it, MiB", String(format: "resident %.0f (peak %.0f, this process), networks %.0f, catalog %.0f, replay %.0f",
                                                  mib(memory.residentBytes), mib(peakResident), mib(memory.networksBytes),
                                                  mib(memory.catalogBytes), mib(memory.replayBytes)))
            figures["catalog_bytes"] = Double(memory.catalogBytes)
            figures["networks_bytes"] = Double(memory.networksBytes)
            figures["peak_resident_bytes"] = Double(peakResident)
        }
        figures["items"] = items
        figures["rebuild_embed_seconds"] = asSeconds(embedSeconds)
        figures["rebuild_graph_seconds"] = asSeconds(graphSeconds)
        figures["rebuild_seconds"] = asSeconds(embedSeconds) + asSeconds(graphSeconds)
        figures["serving_lag_seconds"] = servedLag
        return figures
    }

    /// The items just ingested are not in the catalog yet. A burst past the tail limit is not
    /// embedded before the next knn's answer: that knn starts a rebuild that embeds it on the build
    /// threads and folds it into the base, and the HNSW graph is extended with it. Times both.
    private func measureTailFold(endpoint: String, lastID: UInt64) throws {
        let client = try benchClient(endpoint)
        let status = try client.call(.status).result(as: StatusResult.self)
        let backlog = status.store.items - status.catalog.items
        let started = ContinuousClock.now
        _ = try client.call(.knn(KNNQuery(.item(lastID), k: 1, exact: true))).result(as: KNNResult.self)
        report("first knn after \(backlog) new items", String(format: "%9.3f s          (answered without them; starts the fold)",
                                                              seconds(since: started)))
        let foldStart = ContinuousClock.now
        func building() throws -> Bool { try client.call(.status).result(as: StatusResult.self).catalog.building != nil }
        // The rebuild was queued by that knn: wait for it to start, then to end.
        while try !building() && seconds(since: foldStart) < 10 { usleep(20_000) }
        while try building() { usleep(100_000) }
        report("new items folded in, HNSW graph extended", String(format: "%9.1f s later    (embedded on the build threads)",
                                                                     seconds(since: foldStart)))
    }

    /// Seconds from now until knn by `lastID` is answered (the daemon has just started); with
    /// `orNotFound`, until it is answered at all (an empty store's catalog has no such item).
    private func waitForCatalog(_ client: GLFDClient, lastID: UInt64, orNotFound: Bool = false) throws -> Double {
        let started = ContinuousClock.now
        while true {
            let reply = try client.call(.knn(KNNQuery(.item(lastID), k: 1, exact: true)))
            switch reply.outcome {
            case .success: return seconds(since: started)
            case .failure(let error) where error.code == .notFound && orNotFound: return seconds(since: started)
            case .failure(let error) where error.code == .notReady: usleep(50_000)
            case .failure(let error): throw error
            }
        }
    }

    // MARK: Export

    private struct ExportedCatalog {
        var dimension: Int
        var ids: [UInt64]
        var vectors: [Float]
    }

    /// Every stored item's vector under `version`, through the export command.
    private func exportCatalog(endpoint: String, version: Int) throws -> ExportedCatalog {
        let client = try benchClient(endpoint)
        var catalog = ExportedCatalog(dimension: 0, ids: [], vectors: [])
        var after: UInt64 = 0
        let started = ContinuousClock.now
        while true {
            let reply = try client.call(.export(after: after, limit: ProtocolLimits.default.maxIDsPerRequest))
            let page = try reply.result(as: ExportResult.self)
            guard page.version == version else { throw BenchDaemonError("export changed version (\(version) → \(page.version))") }
            guard let frame = reply.payloads.first, let values = VectorFrame.decode(frame, dimension: page.ids.count * page.dim) else {
                throw BenchDaemonError("export page without its \(page.ids.count) × \(page.dim) vectors")
            }
            catalog.dimension = page.dim
            catalog.ids += page.ids
            catalog.vectors += values
            guard let next = page.nextAfter else { break }
            after = next
        }
        let elapsed = seconds(since: started)
        report("export over ZeroMQ", String(format: "%9.0f items/s    (%d items, pages of %d)",
                                            Double(catalog.ids.count) / elapsed, catalog.ids.count, ProtocolLimits.default.maxIDsPerRequest))
        return catalog
    }

    // MARK: In process

    /// Our indexes on the exported vectors, one thread, no ZeroMQ: what daemon_peer.py compares with.
    private func measureInProcess(catalog: ExportedCatalog, queryVectors: [[Float]], daemonExactScores: [[Float]]) -> [String: Double] {
        BLAS.setThreads(1)
        let d = catalog.dimension
        var builder = ExactIndex.Builder(dimension: d, capacity: catalog.ids.count)
        for (row, id) in catalog.ids.enumerated() { builder.append(id: id, vector: Array(catalog.vectors[row * d..<(row + 1) * d])) }
        let exact = builder.build()
        var figures: [String: Double] = [:]

        let (truth, latencies, total) = fastestPass(over: queryVectors) { exact.search($0, k: k) }
        report("exact, one query (glf ExactIndex)", latencyText(latencies, seconds: total, unit: "queries/s"))
        figures["exact_one_query_qps"] = Double(queryVectors.count) / total
        figures["exact_one_query_p50_ms"] = percentile(latencies, 0.5) * 1e3
        figures["exact_one_query_p99_ms"] = percentile(latencies, 0.99) * 1e3
        let truthScores = truth.map { $0.map(\.score) }
        report("  agreement with glfd's exact answers", String(format: "%9.4f          (recall@%d by score of glfd's exact answers)",
                                                               recallByScore(daemonExactScores, exact: truthScores, k: k), k))

        let batchSeconds = (0..<3).map { _ in timed { _ = exact.search(queries: queryVectors, k: k) } }.min()!
        report("exact, all queries in one call (sgemm)", rateText(Double(queryVectors.count) / batchSeconds, "queries/s"))
        figures["exact_batched_qps"] = Double(queryVectors.count) / batchSeconds

        let parameters = CatalogSettings().hnsw
        var hnsw: HNSWIndex!
        let buildSeconds = timed { hnsw = HNSWIndex(from: exact, parameters: parameters) }
        report("hnsw build (glf HNSWIndex)", String(format: "%9.1f s          (%.0f items/s; M %d, efConstruction %d)",
                                                    buildSeconds, Double(catalog.ids.count) / buildSeconds,
                                                    parameters.m, parameters.efConstruction))
        figures["hnsw_build_seconds"] = buildSeconds
        let (approximate, hnswLatencies, hnswTotal) = fastestPass(over: queryVectors) { hnsw.search($0, k: k) }
        let hnswRecall = recallByScore(approximate.map { $0.map(\.score) }, exact: truthScores, k: k)
        report("hnsw ef \(parameters.efSearch), one query (glf HNSWIndex)",
               latencyText(hnswLatencies, seconds: hnswTotal, unit: "queries/s") + String(format: "   recall@%d %.4f", k, hnswRecall))
        figures["hnsw_one_query_qps"] = Double(queryVectors.count) / hnswTotal
        figures["hnsw_one_query_p50_ms"] = percentile(hnswLatencies, 0.5) * 1e3
        figures["hnsw_one_query_p99_ms"] = percentile(hnswLatencies, 0.99) * 1e3
        figures["hnsw_recall"] = hnswRecall
        return figures
    }

    /// One search per query, `passes` times over all of them; the fastest pass (fewest seconds in
    /// all): its answers, its per-query latencies, its seconds. The best of three keeps another
    /// process's burst on these shared cores out of the figure, as daemon_peer.py does for FAISS.
    private func fastestPass<Answer>(over queries: [[Float]], passes: Int = 3,
                                     _ search: ([Float]) -> Answer) -> (answers: [Answer], latencies: [Double], seconds: Double) {
        var best: (answers: [Answer], latencies: [Double], seconds: Double)?
        for _ in 0..<passes {
            var answers: [Answer] = [], latencies: [Double] = []
            let total = timed { for query in queries { latencies.append(timed { answers.append(search(query)) }) } }
            if total < best?.seconds ?? .infinity { best = (answers, latencies, total) }
        }
        return best!
    }

    /// The vectors and our figures for tools/bench/daemon_peer.py. Rows of glfd_exact.npy are row
    /// numbers of embeddings.npy (float32, exact below 2^24), so the peer needs no ids.
    private func writePeerFiles(to folder: URL, catalog: ExportedCatalog, queryVectors: [[Float]], daemonExact: [[UInt64]],
                                off: QueryFigures, on: QueryFigures, publication: [String: Double], inProcess: [String: Double],
                                ingestRate: Double) throws {
        let d = catalog.dimension
        try NumpyFile.write(NumpyArray(shape: [catalog.ids.count, d], values: catalog.vectors),
                            to: folder.appendingPathComponent("embeddings.npy"))
        try NumpyFile.write(NumpyArray(shape: [queryVectors.count, d], values: queryVectors.flatMap { $0 }),
                            to: folder.appendingPathComponent("queries.npy"))
        let rowOf = Dictionary(uniqueKeysWithValues: catalog.ids.enumerated().map { ($1, $0) })
        let rows = daemonExact.map { answer in (0..<k).map { $0 < answer.count ? Float(rowOf[answer[$0]] ?? -1) : -1 } }
        try NumpyFile.write(NumpyArray(shape: [rows.count, k], values: rows.flatMap { $0 }),
                            to: folder.appendingPathComponent("glfd_exact.npy"))
        var figures: [String: Double] = ["k": Double(k), "ingest_images_per_second": ingestRate]
        for (key, value) in inProcess { figures["in_process.\(key)"] = value }
        for (key, value) in off.figures { figures["training_off.\(key)"] = value }
        for (key, value) in on.figures { figures["training_on.\(key)"] = value }
        for (key, value) in publication { figures["publication.\(key)"] = value }
        let json = try JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys, .prettyPrinted])
        try json.write(to: folder.appendingPathComponent("glf.json"))
    }

    // MARK: Printing

    /// One measurement per line: the label in a fixed column, then the figures.
    private func report(_ label: String, _ figures: String) { print("  " + padded(label, 48) + figures) }

    private func latencyText(_ latencies: [Double], seconds: Double, unit: String) -> String {
        String(format: "p50 %7.3f ms   p99 %7.3f ms   %8.0f %@", percentile(latencies, 0.5) * 1e3,
               percentile(latencies, 0.99) * 1e3, Double(latencies.count) / seconds, unit)
    }

    private func rateText(_ rate: Double, _ unit: String) -> String { String(format: "%9.0f %@", rate, unit) }
}

private struct BenchDaemonError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The value at quantile `q` (0...1) of `values`, nearest rank.
private func percentile(_ values: [Double], _ q: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))]
}

/// A client patient enough for a loaded machine, which can take minutes to embed a catalog.
private func benchClient(_ endpoint: String) throws -> GLFDClient {
    try GLFDClient(endpoint: endpoint, timeoutMilliseconds: 600_000)
}

/// What worker threads hand back, and a wait for all of them.
private final class ThreadResults<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private let finished = DispatchSemaphore(value: 0)
    private var values: [Value] = []
    private var error: Error?

    func append(_ value: Value) {
        lock.withLock { values.append(value) }
        finished.signal()
    }

    func fail(_ error: Error) {
        lock.withLock { self.error = self.error ?? error }
        finished.signal()
    }

    func wait(for threads: Int) { for _ in 0..<threads { finished.wait() } }

    var all: ([Value], Error?) { lock.withLock { (values, error) } }
}
