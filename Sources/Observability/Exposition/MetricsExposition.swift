// The two ways out for glfd's metrics, as the configuration offers them:
//
//   metrics.endpoint = "127.0.0.1:9464"   an HTTP endpoint (GET /metrics) on loopback; "" disables
//   metrics.textfile = "/var/lib/node_exporter/textfile/glfd.prom"   rewritten every `interval`; "" disables
//
// The endpoint is on by default: a scrape then always sees the values of that moment, and Prometheus
// records whether glfd answered (`up`). The textfile is for hosts that already run node_exporter and
// allow no further listening ports; its values are up to `interval` old, and node_exporter exports
// the file's mtime (node_textfile_mtime_seconds) to tell a stale file. Both can run at once.
//
// Each runs on its own thread and only reads the registry: a slow or hostile client, or a slow
// disk, delays the next scrape or write, never the daemon.
import Foundation
import Logging

public final class MetricsExposition: @unchecked Sendable {
    /// The address the endpoint listens on ("127.0.0.1:9464"; the real port when 0 was asked for).
    public var endpointAddress: String? { endpoint?.address }
    /// The port the endpoint listens on.
    public var endpointPort: Int? { endpoint?.port }
    public var textfilePath: String? { textfile?.path }

    private let endpoint: MetricsHTTPEndpoint?
    private let textfile: MetricsTextfileWriter?

    private init(endpoint: MetricsHTTPEndpoint?, textfile: MetricsTextfileWriter?) {
        self.endpoint = endpoint
        self.textfile = textfile
    }

    /// Binds the endpoint and writes the textfile once (so that configuration errors surface here, as
    /// typed errors), then serves and rewrites in the background until `stop()`.
    /// - Parameters:
    ///   - endpoint: host:port ("[::1]:9464" for IPv6; port 0 picks a free one); nil or "" for none.
    ///   - textfile: the .prom file node_exporter reads; nil or "" for none.
    ///   - interval: seconds between textfile writes.
    ///   - clientTimeout: seconds one HTTP client may take to send its request and read the answer.
    public static func start(registry: PrometheusRegistry, endpoint: String?, textfile: String?,
                             interval: Double = 15, clientTimeout: Double = 3,
                             logger: Logger = Logger(label: "glfd.metrics")) throws -> MetricsExposition {
        let render: @Sendable () -> String = { registry.exposition() }
        var server: MetricsHTTPEndpoint?
        if let endpoint, !endpoint.isEmpty {
            server = try MetricsHTTPEndpoint(endpoint: endpoint, clientTimeout: clientTimeout, render: render, logger: logger)
        }
        var writer: MetricsTextfileWriter?
        if let textfile, !textfile.isEmpty {
            do {
                writer = try MetricsTextfileWriter(path: textfile, interval: interval, render: render, logger: logger)
            } catch {
                server?.close()
                throw error
            }
        }
        server?.start()
        writer?.start()
        if let server { logger.info("metrics endpoint listening", metadata: ["address": "\(server.address)", "path": "/metrics"]) }
        if let writer { logger.info("metrics textfile written", metadata: ["path": "\(writer.path)", "interval_seconds": "\(interval)"]) }
        return MetricsExposition(endpoint: server, textfile: writer)
    }

    /// Stops serving (closing the listening socket) and writes the textfile a last time.
    public func stop() {
        endpoint?.stop()
        textfile?.stop()
    }
}
