// One line of progress for long work in the command-line tools (glfctl ingest and export, glf
// embed and eval), redrawn in place on standard error when it is a terminal, and silent otherwise
// (a pipe, a log file, a test), so scripts read only the results:
//
//   ingest  [#########---------------------]  3,328/10,000 files  812/s  ETA 9 s
import Foundation

public final class ProgressLine {
    public let label: String
    public let total: Int
    public let unit: String
    /// Whether anything is drawn: standard error is a terminal (unless told otherwise).
    public let enabled: Bool
    private let started = Date()
    private var lastDrawn = Date.distantPast

    public init(_ label: String, total: Int, unit: String, enabled: Bool = isatty(STDERR_FILENO) != 0) {
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = enabled
    }

    /// `done` of `total` finished; redrawn at most ten times a second, and at the end.
    public func update(done: Int) {
        guard enabled, Date().timeIntervalSince(lastDrawn) > 0.1 || done >= total else { return }
        lastDrawn = Date()
        let line = Self.render(label: label, done: done, total: total, unit: unit, seconds: Date().timeIntervalSince(started))
        FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8))
    }

    /// Ends the line (the last state stays on screen).
    public func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// The line for `done` of `total` after `seconds`: the rate is the mean since the start, and
    /// the ETA what is left at that rate (none until something is done).
    public static func render(label: String, done: Int, total: Int, unit: String, seconds: Double, width: Int = 30) -> String {
        let clamped = min(max(done, 0), max(total, 0))
        let filled = total > 0 ? clamped * width / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        var line = "\(label)  [\(bar)]  \(grouped(clamped))/\(grouped(total)) \(unit)"
        guard done > 0, seconds > 0 else { return line }
        let rate = Double(done) / seconds
        line += "  \(grouped(Int(rate.rounded())))/s"
        if done < total { line += "  ETA " + duration(Double(total - done) / rate) }
        return line
    }

    /// 12,345
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        let groups = stride(from: digits.count, to: 0, by: -3).reversed().map { end in
            String(digits[digits.index(digits.startIndex, offsetBy: max(0, end - 3))..<digits.index(digits.startIndex, offsetBy: end)])
        }
        return (n < 0 ? "-" : "") + groups.joined(separator: ",")
    }

    /// "8 s", "2 min 05 s", "1 h 02 min".
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded(.up))
        if s < 60 { return "\(s) s" }
        if s < 3600 { return String(format: "%d min %02d s", s / 60, s % 60) }
        return String(format: "%d h %02d min", s / 3600, (s % 3600) / 60)
    }
}
