// The journald line: "<priority>label: message key=value ..." — one line per message.
import Logging
import Observability
import XCTest

final class LogFormatTests: XCTestCase {
    private func logger(level: Logger.Level = .trace, capture: LogCapture) -> (Logger, LogOutput) {
        let output = LogOutput(level: level, writer: capture.writer)
        return (Logger(label: "glfd.test") { JournaldLogHandler(label: $0, output: output) }, output)
    }

    func testEachLevelHasItsSyslogPrefix() {
        let capture = LogCapture()
        let (logger, _) = logger(capture: capture)
        let expected: [(Logger.Level, String)] = [(.trace, "<7>"), (.debug, "<7>"), (.info, "<6>"), (.notice, "<5>"),
                                                  (.warning, "<4>"), (.error, "<3>"), (.critical, "<2>")]
        for (level, _) in expected { logger.log(level: level, "hello") }
        XCTAssertEqual(capture.lines, expected.map { "\($0.1)glfd.test: hello" })
    }

    func testMetadataIsSortedAndQuotedWhenNeeded() {
        let capture = LogCapture()
        var (logger, _) = logger(capture: capture)
        logger[metadataKey: "z"] = "last"
        logger[metadataKey: "a"] = "overridden"
        logger.info("store opened", metadata: ["a": "1", "b": "two words", "q": "say \"hi\"", "e": "", "n": "\(42)",
                                               "list": .array(["x", "y"]), "path": "/var/lib/glfd"])
        XCTAssertEqual(capture.lines, [#"<6>glfd.test: store opened a=1 b="two words" e="" list=[x,y] n=42 path=/var/lib/glfd q="say \"hi\"" z=last"#])
    }

    func testAMessageNeverSpansTwoLines() {
        let capture = LogCapture()
        let (logger, _) = logger(capture: capture)
        logger.warning("first\nsecond", metadata: ["trace": "a b\nc"])
        XCTAssertEqual(capture.lines, [#"<4>glfd.test: first\nsecond trace="a b\nc""#])
    }

    func testErrorsAreMetadata() {
        struct DiskFull: Error, CustomStringConvertible { var description: String { "disk full" } }
        let capture = LogCapture()
        let (logger, _) = logger(capture: capture)
        logger.error("cannot commit", error: DiskFull())
        XCTAssertEqual(capture.lines, [#"<3>glfd.test: cannot commit error="disk full""#])
    }

    func testLevelsFilterAndTheOutputLevelAppliesToLoggersWithoutTheirOwn() {
        let capture = LogCapture()
        var (logger, output) = logger(level: .info, capture: capture)
        logger.debug("per-request noise")
        logger.info("kept")
        output.level = .warning
        logger.info("now filtered")
        logger.logLevel = .debug
        logger.debug("own level wins")
        XCTAssertEqual(capture.lines, ["<6>glfd.test: kept", "<7>glfd.test: own level wins"])
    }

    /// LoggingSystem.bootstrap traps on a second call; Observability's may be called again.
    func testBootstrapTwiceChangesTheLevelAndTheWriter() {
        let capture = LogCapture()
        defer { Observability.bootstrapLogging(level: .info, writer: LogOutput.standardError) }
        Observability.bootstrapLogging(level: .debug, writer: capture.writer)
        Logger(label: "glfd.boot").debug("first")
        Observability.bootstrapLogging(level: .warning)
        let logger = Logger(label: "glfd.boot")
        logger.info("dropped")
        logger.warning("second", metadata: ["k": "v"])
        XCTAssertEqual(capture.lines, ["<7>glfd.boot: first", "<4>glfd.boot: second k=v"])
    }
}
