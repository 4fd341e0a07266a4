// What glfd's metrics look like in the exposition after the daemon's events: every kind, every label.
import CoreMetrics
import Observability
import XCTest

final class MetricsTests: XCTestCase {
    private func parsed(_ metrics: GLFDMetrics) throws -> ParsedExposition {
        try PrometheusTextParser.parse(metrics.exposition())
    }

    func testEveryFamilyHasHelpAndTypeFromTheStart() throws {
        let exposition = try parsed(GLFDMetrics())
        let expected: [String: String] = [
            "glfd_ingest_items_total": "counter", "glfd_ingest_bytes_total": "counter", "glfd_ingest_requests_total": "counter",
            "glfd_ingest_refusals_total": "counter", "glfd_ingest_in_flight": "gauge", "glfd_requests_total": "counter",
            "glfd_queue_depth": "gauge", "glfd_query_duration_seconds": "histogram", "glfd_training_step": "gauge",
            "glfd_training_steps_total": "counter", "glfd_training_images_per_second": "gauge", "glfd_training_loss": "gauge",
            "glfd_training_collapse_monitor": "gauge", "glfd_training_rollbacks_total": "counter", "glfd_training_idle": "gauge",
            "glfd_model_version": "gauge", "glfd_model_step": "gauge", "glfd_model_published_timestamp_seconds": "gauge",
            "glfd_catalog_build_duration_seconds": "histogram", "glfd_catalog_items": "gauge",
            "glfd_catalog_serving_lag_seconds": "histogram", "glfd_store_items": "gauge",
            "glfd_store_bytes": "gauge", "glfd_store_replay_members": "gauge", "glfd_store_map_size_bytes": "gauge",
            "glfd_store_map_used_bytes": "gauge", "glfd_start_time_seconds": "gauge",
            "glfd_drift_score": "gauge", "glfd_drift_arrivals": "gauge",
        ]
        // Labelled families appear with their first series; the rest are there, at 0, from the start.
        let labelled: Set = ["glfd_ingest_refusals_total", "glfd_requests_total", "glfd_queue_depth",
                             "glfd_query_duration_seconds", "glfd_training_loss"]
        for (name, type) in expected where !labelled.contains(name) {
            XCTAssertEqual(exposition.types[name], type, name)
            XCTAssertFalse(exposition.help[name, default: ""].isEmpty, name)
        }
        XCTAssertEqual(exposition.value("glfd_ingest_items_total"), 0)
        XCTAssertEqual(exposition.value("glfd_start_time_seconds")!, Date().timeIntervalSince1970, accuracy: 60)

        let metrics = GLFDMetrics()
        metrics.ingestRefused(code: "busy")
        metrics.request(command: "status")
        metrics.setQueueDepth("query", 1)
        metrics.queryLatency(command: "embed", seconds: 0.01)
        metrics.setTraining(step: 1, imagesPerSecond: 1, loss: ["total": 1], collapse: 0.1, rolledBack: 0)
        let full = try parsed(metrics)
        for (name, type) in expected {
            XCTAssertEqual(full.types[name], type, name)
            XCTAssertFalse(full.help[name, default: ""].isEmpty, name)
        }
        XCTAssertEqual(Set(full.types.keys), Set(expected.keys))
    }

    func testMemoryByPartAndTheServingLag() throws {
        let metrics = GLFDMetrics()
        metrics.setMemory(["resident": 1_500_000_000, "networks": 900_000_000, "catalog": 61_000_000])
        metrics.catalogServed(lagSeconds: 45)
        let exposition = try parsed(metrics)
        XCTAssertEqual(exposition.types["glfd_memory_bytes"], "gauge")
        XCTAssertEqual(exposition.value("glfd_memory_bytes", ["part": "resident"]), 1_500_000_000)
        XCTAssertEqual(exposition.value("glfd_memory_bytes", ["part": "catalog"]), 61_000_000)
        XCTAssertEqual(exposition.value("glfd_catalog_serving_lag_seconds_count"), 1)
        XCTAssertEqual(exposition.value("glfd_catalog_serving_lag_seconds_bucket", ["le": "30"]), 0)
        XCTAssertEqual(exposition.value("glfd_catalog_serving_lag_seconds_bucket", ["le": "60"]), 1)
    }

    func testDriftIsNaNWhileNothingIsMeasured() throws {
        let metrics = GLFDMetrics()
        metrics.setDrift(score: 1.25, arrivals: 200)
        var exposition = try parsed(metrics)
        XCTAssertEqual(exposition.value("glfd_drift_score"), 1.25)
        XCTAssertEqual(exposition.value("glfd_drift_arrivals"), 200)
        metrics.setDrift(score: nil, arrivals: 0)
        exposition = try parsed(metrics)
        XCTAssertTrue(exposition.value("glfd_drift_score")?.isNaN ?? false, "no score is NaN, not 0 (which would read as identical)")
        XCTAssertEqual(exposition.value("glfd_drift_arrivals"), 0)
    }

    func testTheRoleAndHowFarAReplicaIsBehind() throws {
        let metrics = GLFDMetrics()
        metrics.setRole("trainer", versionsBehind: nil)
        var exposition = try parsed(metrics)
        XCTAssertEqual(exposition.value("glfd_role", ["role": "trainer"]), 1)
        XCTAssertTrue(exposition.value("glfd_replica_versions_behind")?.isNaN ?? false)
        metrics.setRole("replica", versionsBehind: 2)
        exposition = try parsed(metrics)
        XCTAssertEqual(exposition.value("glfd_role", ["role": "replica"]), 1)
        XCTAssertEqual(exposition.value("glfd_replica_versions_behind"), 2)
    }

    func testJetStreamCountsBecomeCounterIncrementsAndTheLagIsNaNUntilKnown() throws {
        let metrics = GLFDMetrics()
        metrics.setJetStream(connected: false, pending: nil, stored: 0, duplicates: 0, rejected: 0)
        var exposition = try parsed(metrics)
        XCTAssertEqual(exposition.value("glfd_jetstream_connected"), 0)
        XCTAssertTrue(exposition.value("glfd_jetstream_pending")?.isNaN ?? false)
        metrics.setJetStream(connected: true, pending: 40, stored: 100, duplicates: 3, rejected: 1)
        metrics.setJetStream(connected: true, pending: 0, stored: 160, duplicates: 3, rejected: 2)
        exposition = try parsed(metrics)
        XCTAssertEqual(exposition.types["glfd_jetstream_messages_total"], "counter")
        XCTAssertEqual(exposition.value("glfd_jetstream_connected"), 1)
        XCTAssertEqual(exposition.value("glfd_jetstream_pending"), 0)
        XCTAssertEqual(exposition.value("glfd_jetstream_messages_total", ["outcome": "stored"]), 160)
        XCTAssertEqual(exposition.value("glfd_jetstream_messages_total", ["outcome": "duplicate"]), 3)
        XCTAssertEqual(exposition.value("glfd_jetstream_messages_total", ["outcome": "rejected"]), 2)
    }

    func testIngestCountersAndRefusalsByCode() throws {
        let metrics = GLFDMetrics()
        metrics.ingested(items: 3, bytes: 1000)
        metrics.ingested(items: 2)
        metrics.ingestRefused(code: "store_full")
        metrics.ingestRefused(code: "store_full")
        metrics.ingestRefused(code: "busy")
        metrics.ingestStarted()
        metrics.ingestStarted()
        metrics.ingestFinished()
        let exposition = try parsed(metrics)
        XCTAssertEqual(exposition.value("glfd_ingest_items_total"), 5)
        XCTAssertEqual(exposition.value("glfd_ingest_requests_total"), 2)
        XCTAssertEqual(exposition.value("glfd_ingest_bytes_total"), 1000)
        XCTAssertEqual(exposition.value("glfd_ingest_refusals_total", ["code": "store_full"]), 2)
        XCTAssertEqual(exposition.value("glfd_ingest_refusals_total", ["code": "busy"]), 1)
        XCTAssertEqual(exposition.value("glfd_ingest_in_flight"), 1)
        XCTAssertTrue(metrics.exposition().contains("glfd_ingest_items_total 5\n"), "integers without a decimal point")
    }

    func testRequestsByCommandAndOutcomeAndQueueDepths() throws {
        let metrics = GLFDMetrics()
        metrics.request(command: "knn")
        metrics.request(command: "knn")
        metrics.request(command: "knn", error: "not_ready")
        metrics.setQueueDepth("ingest", 7)
        metrics.setQueueDepth("ingest", 3)
        metrics.setQueueDepth("store_commit", 12)
        let exposition = try parsed(metrics)
        XCTAssertEqual(exposition.value("glfd_requests_total", ["command": "knn", "outcome": "ok"]), 2)
        XCTAssertEqual(exposition.value("glfd_requests_total", ["command": "knn", "outcome": "not_ready"]), 1)
        XCTAssertEqual(exposition.value("glfd_queue_depth", ["queue": "ingest"]), 3)
        XCTAssertEqual(exposition.value("glfd_queue_depth", ["queue": "store_commit"]), 12)
    }

    func testTrainingGaugesLossTermsAndCountersFromAbsoluteNumbers() throws {
        let metrics = GLFDMetrics()
        metrics.setTraining(step: 100, imagesPerSecond: 250, loss: ["total": 1.5, "align": 0.25], collapse: 0.08, rolledBack: 0, idle: false)
        metrics.setTraining(step: 110, imagesPerSecond: 260, loss: ["total": 1.25, "align": 0.125], collapse: 0.07, rolledBack: 0)
        var exposition = try parsed(metrics)
        XCTAssertEqual(exposition.value("glfd_training_step"), 110)
        XCTAssertEqual(exposition.value("glfd_training_steps_total"), 10, "steps since the first report")
        XCTAssertEqual(exposition.value("glfd_training_images_per_second"), 260)
        XCTAssertEqual(exposition.value("glfd_training_loss", ["term": "total"]), 1.25)
        XCTAssertEqual(exposition.value("glfd_training_loss", ["term": "align"]), 0.125)
        XCTAssertEqual(exposition.value("glfd_training_collapse_monitor"), 0.07)
        XCTAssertEqual(exposition.value("glfd_training_idle"), 0)
        // A rollback to the snapshot at step 100: the counter keeps what was done, and counts on from there.
        metrics.setTraining(step: 100, imagesPerSecond: 0, loss: [:], collapse: 0.07, rolledBack: 1, idle: true)
        metrics.setTraining(step: 105, imagesPerSecond: 0, loss: [:], collapse: 0.07, rolledBack: 1)
        exposition = try parsed(metrics)
        XCTAssertEqual(exposition.value("glfd_training_steps_total"), 15)
        XCTAssertEqual(exposition.value("glfd_training_rollbacks_total"), 1)
        XCTAssertEqual(exposition.value("glfd_training_step"), 105)
        XCTAssertEqual(exposition.value("glfd_training_idle"), 1)
    }

    func testModelStoreAndCatalog() throws {
        let metrics = GLFDMetrics()
        metrics.setModelVersion(7, step: 3500, publishedAt: 1_700_000_000.5)
        metrics.setStore(items: 1204, bytes: UInt64(5) << 40, mapSize: 1 << 30, mapUsed: 123_456_789, replayMembers: 1000)
        metrics.catalogBuilt(seconds: 42, items: 1204)
        let exposition = try parsed(metrics)
        XCTAssertEqual(exposition.value("glfd_model_version"), 7)
        XCTAssertEqual(exposition.value("glfd_model_step"), 3500)
        XCTAssertEqual(exposition.value("glfd_model_published_timestamp_seconds"), 1_700_000_000.5)
        XCTAssertEqual(exposition.value("glfd_store_items"), 1204)
        XCTAssertEqual(exposition.value("glfd_store_bytes"), Double(UInt64(5) << 40))
        XCTAssertEqual(exposition.value("glfd_store_map_size_bytes"), Double(1 << 30))
        XCTAssertEqual(exposition.value("glfd_store_map_used_bytes"), 123_456_789)
        XCTAssertEqual(exposition.value("glfd_store_replay_members"), 1000)
        XCTAssertEqual(exposition.value("glfd_catalog_items"), 1204)
        XCTAssertEqual(exposition.value("glfd_catalog_build_duration_seconds_count"), 1)
        XCTAssertEqual(exposition.value("glfd_catalog_build_duration_seconds_bucket", ["le": "30"]), 0)
        XCTAssertEqual(exposition.value("glfd_catalog_build_duration_seconds_bucket", ["le": "60"]), 1)
    }

    func testQueryLatencyHistogramsByCommandAndIndex() throws {
        let metrics = GLFDMetrics()
        for seconds in [0.0004, 0.003, 0.003, 0.2, 7.0] { metrics.queryLatency(command: "knn", exact: true, seconds: seconds) }
        metrics.queryLatency(command: "knn", exact: false, seconds: 0.001)
        metrics.queryLatency(command: "embed", seconds: 0.05)
        let exposition = try parsed(metrics)
        let exact = ["command": "knn", "index": "exact"]
        let buckets = exposition.buckets("glfd_query_duration_seconds", exact)
        XCTAssertEqual(buckets.map(\.le), GLFDMetrics.queryBuckets + [.infinity])
        XCTAssertEqual(buckets.first?.le, 0.0005)
        XCTAssertEqual(buckets.first(where: { $0.le == 0.0005 })?.count, 1)
        XCTAssertEqual(buckets.first(where: { $0.le == 0.0025 })?.count, 1)
        XCTAssertEqual(buckets.first(where: { $0.le == 0.005 })?.count, 3)
        XCTAssertEqual(buckets.first(where: { $0.le == 5 })?.count, 4)
        XCTAssertEqual(buckets.last?.count, 5)
        XCTAssertEqual(exposition.value("glfd_query_duration_seconds_count", exact), 5)
        XCTAssertEqual(exposition.value("glfd_query_duration_seconds_sum", exact)!, 7.2064, accuracy: 1e-9)
        XCTAssertEqual(exposition.value("glfd_query_duration_seconds_count", ["command": "knn", "index": "approximate"]), 1)
        XCTAssertEqual(exposition.value("glfd_query_duration_seconds_count", ["command": "embed", "index": "none"]), 1)
        XCTAssertTrue(metrics.exposition().contains(#"glfd_query_duration_seconds_bucket{command="embed",index="none",le="+Inf"} 1"#))
    }

    // MARK: The registry on its own: swift-metrics' kinds, escaping, guards.

    func testSwiftMetricsKindsMapOntoPrometheusKinds() throws {
        let registry = PrometheusRegistry()
        registry.describe("job_seconds", help: "Job time\nin seconds, C:\\jobs", buckets: [1, 0.5, 2])
        Counter(label: "events_total", factory: registry).increment(by: 2)
        Counter(label: "events_total", factory: registry).increment(by: -5)
        FloatingPointCounter(label: "energy_joules_total", factory: registry).increment(by: 1.5)
        Gauge(label: "temperature", factory: registry).record(21.5)
        let timer = CoreMetrics.Timer(label: "job_seconds", factory: registry)
        timer.recordNanoseconds(750_000_000)
        timer.recordMilliseconds(1500)
        Recorder(label: "sizes", aggregate: true, factory: registry).record(3)
        Gauge(label: "events_total", factory: registry).record(99)

        let text = registry.exposition()
        let exposition = try PrometheusTextParser.parse(text)
        XCTAssertEqual(exposition.types, ["events_total": "counter", "energy_joules_total": "counter", "temperature": "gauge",
                                          "job_seconds": "histogram", "sizes": "histogram"])
        XCTAssertEqual(exposition.value("events_total"), 2, "negative increments and a gauge of the same name are not counted")
        XCTAssertEqual(exposition.value("energy_joules_total"), 1.5)
        XCTAssertEqual(exposition.value("temperature"), 21.5)
        XCTAssertEqual(exposition.buckets("job_seconds", [:]).map(\.le), [0.5, 1, 2, .infinity])
        XCTAssertEqual(exposition.buckets("job_seconds", [:]).map(\.count), [0, 1, 2, 2])
        XCTAssertEqual(exposition.value("job_seconds_sum"), 2.25)
        XCTAssertEqual(exposition.help["job_seconds"], "Job time\nin seconds, C:\\jobs")
        XCTAssertTrue(text.contains(#"# HELP job_seconds Job time\nin seconds, C:\\jobs"#))
        XCTAssertEqual(exposition.buckets("sizes", [:]).map(\.le), PrometheusRegistry.defaultBuckets + [.infinity])
    }

    func testLabelValuesAreEscapedAndNamesSanitised() throws {
        let registry = PrometheusRegistry()
        Gauge(label: "glfd.odd-name", dimensions: [("path", "C:\\a \"b\"\nc"), ("bad label", "x")], factory: registry).record(1)
        let text = registry.exposition()
        XCTAssertTrue(text.contains(#"glfd_odd_name{bad_label="x",path="C:\\a \"b\"\nc"} 1"#), text)
        let exposition = try PrometheusTextParser.parse(text)
        XCTAssertEqual(exposition.value("glfd_odd_name", ["path": "C:\\a \"b\"\nc", "bad_label": "x"]), 1)
    }

    func testSeriesPerFamilyAreBounded() throws {
        let registry = PrometheusRegistry()
        for index in 0..<(PrometheusRegistry.maxSeriesPerFamily + 50) {
            Counter(label: "flood_total", dimensions: [("id", "\(index)")], factory: registry).increment()
        }
        let exposition = try PrometheusTextParser.parse(registry.exposition())
        XCTAssertEqual(exposition.samples.count, PrometheusRegistry.maxSeriesPerFamily)
    }

    func testConcurrentUpdatesAreAllCounted() throws {
        let metrics = GLFDMetrics()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for _ in 0..<1000 {
                metrics.ingested(items: 1)
                metrics.request(command: "ingest")
                metrics.queryLatency(command: "knn", exact: worker % 2 == 0, seconds: 0.001)
                if worker == 0 { _ = metrics.exposition() }
            }
        }
        let exposition = try parsed(metrics)
        XCTAssertEqual(exposition.value("glfd_ingest_items_total"), 8000)
        XCTAssertEqual(exposition.value("glfd_requests_total", ["command": "ingest", "outcome": "ok"]), 8000)
        XCTAssertEqual(exposition.value("glfd_query_duration_seconds_count", ["command": "knn", "index": "exact"]), 4000)
    }
}
