// glfd: the self-learning image embedding daemon. Reads its configuration (a TOML file, GLFD_*
// environment variables, --set overrides), opens the store, binds its sockets, trains and serves
// until SIGTERM or SIGINT, then stops gracefully and exits 0.
import ArgumentParser
import Configuration
import Daemon
import Foundation
import Logging
import Neural
import Observability

struct GLFD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "glfd",
        abstract: "The self-learning image embedding daemon (protocol: protocol/PROTOCOL.md).",
        discussion: """
            Without a configuration file it runs on the built-in defaults: state in ./state, requests on \
            tcp://127.0.0.1:5555, announcements on tcp://127.0.0.1:5556. Every setting (see systemd/glfd.toml) \
            can also come from GLFD_<SECTION>_<KEY> environment variables or --set section.key=value.
            """)

    @Option(name: .customLong("config"), help: "Configuration file (TOML). Default: $GLFD_CONFIG if set, else none.")
    var configFile: String?

    @Option(name: .customLong("set"), help: "Override one setting: section.key=value (repeatable).")
    var overrides: [String] = []

    @Flag(name: .customLong("print-config"), help: "Print the effective configuration, with where each value came from, and exit.")
    var printConfig = false

    @Option(name: .customLong("restore"), help: "Start from a snapshot (glfctl snapshot DIR): copied into the state directory, which must hold no store and no model versions yet.")
    var restore: String?

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let configuration: GLFDConfiguration
        do {
            configuration = try GLFDConfiguration.load(file: configFile ?? environment["GLFD_CONFIG"], environment: environment,
                                                       overrides: overrides)
        } catch {
            throw ValidationError("\(error)")
        }
        if printConfig {
            print(configuration.describe(), terminator: "")
            return
        }
        // Before anything slow: from here a SIGTERM stops the daemon gracefully, whenever it comes.
        Signals.install()
        // Every client connection is a file descriptor: with the usual soft limit of 1,024, a flood
        // of idle connections left no room for new clients (or for the store's and models' files).
        let files = raiseOpenFileLimit()
        // glfd parallelises itself (the trainer's replicas, catalog builds on index.build_threads).
        // A threaded OpenBLAS under two concurrent callers serialises them on its own lock and runs
        // their work on its worker threads at the default priority: the niced trainer then stalled
        // behind its own sgemms (1 step in 70 s) and would have competed with queries as an equal.
        // (ContinuousTrainer sets it too, for daemons embedded in other processes such as tests.)
        BLAS.setThreads(1)
        Observability.bootstrapLogging(level: Logger.Level(rawValue: configuration.logging.level.rawValue) ?? .info)
        let logger = Logger(label: "glfd")
        let metrics = GLFDMetrics()
        Observability.bootstrapMetrics(metrics.registry)
        let notifier = SystemdNotifier()
        let settings = try DaemonSettings(configuration)
        if let restore {
            do {
                try GLFDaemon.restore(from: URL(fileURLWithPath: restore), into: settings)
            } catch {
                throw ValidationError("--restore \(restore): \(error)")
            }
            log("glfd: restored the snapshot \(restore) into \(configuration.paths.stateDirectory)")
        }
        let daemon = try GLFDaemon(settings: settings)
        daemon.notifier = notifier
        daemon.metrics = metrics
        let (requests, announcements) = daemon.server.boundEndpoints
        // The first line names the bound endpoints (tools and tests read it).
        log("glfd: serving glfd/1 on \(requests), announcing on \(announcements); state in \(configuration.paths.stateDirectory)")
        let exposition = try MetricsExposition.start(
            registry: metrics.registry,
            endpoint: configuration.metrics.endpoint.isEmpty ? nil : configuration.metrics.endpoint,
            textfile: configuration.metrics.textfile.isEmpty ? nil : configuration.metrics.textfile,
            logger: logger)
        // Before the log says "started" (tests and operators send SIGHUP as soon as it does); a
        // SIGHUP that came even earlier runs this as soon as it is set.
        Signals.onReload {
            // What can change safely while serving: the log level and the CURVE allowlist. Everything
            // else needs a restart (sockets, store layout, model shape); say so rather than half-apply it.
            notifier.reloading()
            do {
                let fresh = try GLFDConfiguration.load(file: configFile ?? environment["GLFD_CONFIG"], environment: environment,
                                                       overrides: overrides)
                if fresh.logging.level != configuration.logging.level {
                    Observability.bootstrapLogging(level: Logger.Level(rawValue: fresh.logging.level.rawValue) ?? .info)
                    logger.notice("log level now \(fresh.logging.level.rawValue)")
                }
                if fresh.security.curve, configuration.security.curve {
                    let curve = try CurveSettings.load(secretKeyFile: fresh.security.serverSecretKeyFile,
                                                       allowedClientsFile: fresh.security.allowedClientsFile)
                    daemon.server.allowClients(curve.allowedClients)
                    logger.notice("reloaded the CURVE allowlist", metadata: ["keys": "\(curve.allowedClients.count)"])
                }
                let changedElsewhere = fresh.paths != configuration.paths || fresh.server != configuration.server
                    || fresh.store != configuration.store || fresh.training != configuration.training
                    || fresh.models != configuration.models || fresh.index != configuration.index
                    || fresh.metrics != configuration.metrics
                if changedElsewhere {
                    logger.notice("other changed settings take effect at the next restart")
                }
            } catch {
                logger.error("reload failed, keeping the running configuration", metadata: ["error": "\(error)"])
            }
            notifier.ready(status: daemon.statusLine)
        }
        logger.info("started", metadata: ["requests": "\(requests)", "announcements": "\(announcements)", "open_files": "\(files)",
                                          "metrics": "\(exposition.endpointAddress.map { "http://\($0)/metrics" } ?? configuration.metrics.textfile)",
                                          "state": "\(configuration.paths.stateDirectory)"])
        if files < 4096 {
            logger.warning("few open files allowed: a flood of idle connections can lock new clients out; raise the hard limit (the unit's LimitNOFILE)",
                           metadata: ["open_files": "\(files)"])
        }
        daemon.start()
        // Sockets are bound and the store is open: ready.
        notifier.ready(status: daemon.statusLine)
        notifier.startWatchdog()
        let statusTimer = DispatchSource.makeTimerSource(queue: .global())
        statusTimer.schedule(deadline: .now(), repeating: 5)
        statusTimer.setEventHandler {
            daemon.updateGauges()
            notifier.status(daemon.statusLine)
        }
        statusTimer.resume()
        Signals.waitForTermination()
        statusTimer.cancel()
        notifier.stopping()
        logger.info("stopping")
        daemon.stop()
        exposition.stop()
        notifier.stopWatchdog()
        logger.info("stopped")
    }
}

func log(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

/// Raises the soft limit on open files to the hard one (systemd's unit sets both); returns it.
func raiseOpenFileLimit() -> UInt {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
    }
    return UInt(limit.rlim_cur)
}

BLAS.restartWithBetterKernelsIfNeeded()
GLFD.main()
