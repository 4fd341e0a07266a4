// The progress line's text.
import Foundation
import Testing
@testable import TerminalProgress

@Suite struct ProgressLineTests {
    @Test func theLineShowsCountRateAndTimeLeft() {
        let line = ProgressLine.render(label: "ingest", done: 3_328, total: 10_000, unit: "files", seconds: 4.1, width: 10)
        #expect(line == "ingest  [###-------]  3,328/10,000 files  812/s  ETA 9 s")
        // Nothing done yet: no rate, no ETA.
        #expect(ProgressLine.render(label: "export", done: 0, total: 50, unit: "items", seconds: 0.3, width: 4)
                == "export  [----]  0/50 items")
        // Done: the full bar and the mean rate, no ETA.
        #expect(ProgressLine.render(label: "embed", done: 1_000_000, total: 1_000_000, unit: "images", seconds: 500, width: 4)
                == "embed  [####]  1,000,000/1,000,000 images  2,000/s")
    }

    @Test func longWaitsReadAsMinutesAndHours() {
        #expect(ProgressLine.duration(59.2) == "1 min 00 s")
        #expect(ProgressLine.duration(125) == "2 min 05 s")
        #expect(ProgressLine.duration(3_725) == "1 h 02 min")
        #expect(ProgressLine.grouped(999) == "999" && ProgressLine.grouped(1_000) == "1,000" && ProgressLine.grouped(-12_345) == "-12,345")
    }

    // That nothing is drawn off a terminal is checked on the real tool: GlfctlPicturesTests runs
    // glfctl ingest with its standard error on a pipe.
}
