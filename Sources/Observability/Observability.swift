// glfd's logs and metrics: the process-wide switches.
//
//   Logs     swift-log → JournaldLogHandler → stderr, one line per message with the sd-daemon level
//            prefix; journald (the service's stderr under systemd) adds time, unit and pid.
//   Metrics  swift-metrics → PrometheusRegistry (text format 0.0.4) ← GLFDMetrics, the names glfd
//            exports; MetricsExposition serves them on a loopback HTTP endpoint and/or writes them for
//            node_exporter's textfile collector.
//
// swift-log's and swift-metrics' bootstraps may run once per process (a second call traps), so both
// are wrapped here: the first call bootstraps, later calls only change what the first one installed.
import CoreMetrics
import Foundation
import Logging

public enum Observability {
    /// The output of every handler `bootstrapLogging` installs: stderr at info until told otherwise.
    public static let logOutput = LogOutput()

    private static let lock = NSLock()
    nonisolated(unsafe) private static var loggingBootstrapped = false
    nonisolated(unsafe) private static var metricsFactory: PrometheusRegistry?

    /// Makes every `Logger` write journald lines at `level` or more severe; safe to call again (it then
    /// changes the level and, when given, the writer of the loggers made before and after).
    public static func bootstrapLogging(level: Logger.Level, writer: LogWriter? = nil) {
        logOutput.level = level
        if let writer { logOutput.writer = writer }
        lock.withLock {
            guard !loggingBootstrapped else { return }
            loggingBootstrapped = true
            LoggingSystem.bootstrap({ label, provider in
                JournaldLogHandler(label: label, output: logOutput, metadataProvider: provider)
            }, metadataProvider: nil)
        }
    }

    /// Makes `registry` swift-metrics' global factory, for code that creates metrics without a
    /// factory (`Counter(label:)`). Only the first registry is installed; returns it.
    @discardableResult
    public static func bootstrapMetrics(_ registry: PrometheusRegistry) -> PrometheusRegistry {
        lock.withLock {
            if let installed = metricsFactory { return installed }
            MetricsSystem.bootstrap(registry)
            metricsFactory = registry
            return registry
        }
    }
}
