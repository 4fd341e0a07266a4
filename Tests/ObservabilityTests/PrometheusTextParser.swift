// A small, strict reader of the Prometheus text format 0.0.4, independent of the code under test:
// what a scraper would reject, it rejects.
//   - HELP and TYPE at most once per family, TYPE before the family's samples;
//   - every sample belongs to a TYPE'd family (histograms: name_bucket, name_sum, name_count);
//   - label names and values well formed, values unescaped (\\, \", \n);
//   - histograms: each series' buckets cumulative (monotone in le), +Inf present and equal to _count.
import Foundation

struct ParsedExposition {
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var help: [String: String] = [:]
    var types: [String: String] = [:]
    var samples: [Sample] = []

    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    /// Buckets of one histogram series, by upper bound, in the order written.
    func buckets(_ name: String, _ labels: [String: String]) -> [(le: Double, count: Double)] {
        samples.filter { $0.name == name + "_bucket" && $0.labels.filter { $0.key != "le" } == labels }
            .map { (le: ParsedExposition.number($0.labels["le"] ?? "NaN") ?? .nan, count: $0.value) }
    }

    static func number(_ text: String) -> Double? {
        switch text {
        case "+Inf", "Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(text)
        }
    }
}

struct ExpositionFormatError: Error, CustomStringConvertible {
    var line: Int
    var reason: String
    var description: String { "line \(line): \(reason)" }
}

enum PrometheusTextParser {
    static func parse(_ text: String) throws -> ParsedExposition {
        var result = ParsedExposition()
        var seenSamples = Set<String>()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = String(rawLine)
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
                guard parts.count >= 3, parts[0] == "#", parts[1] == "HELP" || parts[1] == "TYPE" else { continue }
                let name = parts[2]
                guard isMetricName(name) else { throw ExpositionFormatError(line: number, reason: "bad metric name \(name)") }
                let rest = parts.count == 4 ? parts[3] : ""
                if parts[1] == "HELP" {
                    guard result.help[name] == nil else { throw ExpositionFormatError(line: number, reason: "second HELP for \(name)") }
                    result.help[name] = unescape(rest, quotes: false)
                } else {
                    guard result.types[name] == nil else { throw ExpositionFormatError(line: number, reason: "second TYPE for \(name)") }
                    guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(rest) else {
                        throw ExpositionFormatError(line: number, reason: "unknown type \(rest)")
                    }
                    guard !seenSamples.contains(name) else { throw ExpositionFormatError(line: number, reason: "TYPE after samples of \(name)") }
                    result.types[name] = rest
                }
                continue
            }
            let sample = try parseSample(line, line: number)
            let family = try family(of: sample.name, types: result.types, line: number)
            seenSamples.insert(family)
            result.samples.append(sample)
        }
        try checkHistograms(result)
        return result
    }

    private static func family(of name: String, types: [String: String], line: Int) throws -> String {
        if let type = types[name], type != "histogram" { return name }
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if types[base] == "histogram" { return base }
        }
        throw ExpositionFormatError(line: line, reason: "sample \(name) has no TYPE line before it")
    }

    private static func checkHistograms(_ exposition: ParsedExposition) throws {
        for (name, type) in exposition.types where type == "histogram" {
            let seriesLabels = Set(exposition.samples.filter { $0.name == name + "_count" }.map(\.labels))
            for labels in seriesLabels {
                let buckets = exposition.buckets(name, labels)
                guard let last = buckets.last, last.le == .infinity else {
                    throw ExpositionFormatError(line: 0, reason: "\(name)\(labels) has no +Inf bucket")
                }
                for (previous, next) in zip(buckets, buckets.dropFirst()) {
                    guard previous.le < next.le, previous.count <= next.count else {
                        throw ExpositionFormatError(line: 0, reason: "\(name)\(labels) buckets not monotone at le=\(next.le)")
                    }
                }
                guard exposition.value(name + "_count", labels) == last.count, exposition.value(name + "_sum", labels) != nil else {
                    throw ExpositionFormatError(line: 0, reason: "\(name)\(labels): +Inf bucket differs from _count, or no _sum")
                }
            }
        }
    }

    private static func parseSample(_ line: String, line number: Int) throws -> ParsedExposition.Sample {
        let characters = Array(line)
        var position = 0
        while position < characters.count, characters[position] != "{", characters[position] != " " { position += 1 }
        let name = String(characters[..<position])
        guard isMetricName(name) else { throw ExpositionFormatError(line: number, reason: "bad metric name '\(name)'") }
        var labels: [String: String] = [:]
        if position < characters.count, characters[position] == "{" {
            position += 1
            while true {
                guard position < characters.count else { throw ExpositionFormatError(line: number, reason: "unterminated labels") }
                if characters[position] == "}" { position += 1; break }
                let nameStart = position
                while position < characters.count, characters[position] != "=" { position += 1 }
                let labelName = String(characters[nameStart..<position])
                guard isLabelName(labelName), position + 1 < characters.count, characters[position + 1] == "\"" else {
                    throw ExpositionFormatError(line: number, reason: "bad label '\(labelName)'")
                }
                position += 2
                var value = ""
                while true {
                    guard position < characters.count else { throw ExpositionFormatError(line: number, reason: "unterminated label value") }
                    let character = characters[position]
                    if character == "\"" { position += 1; break }
                    if character == "\\" {
                        guard position + 1 < characters.count else { throw ExpositionFormatError(line: number, reason: "dangling escape") }
                        switch characters[position + 1] {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw ExpositionFormatError(line: number, reason: "bad escape in label value")
                        }
                        position += 2
                        continue
                    }
                    value.append(character)
                    position += 1
                }
                guard labels[labelName] == nil else { throw ExpositionFormatError(line: number, reason: "label \(labelName) twice") }
                labels[labelName] = value
                if position < characters.count, characters[position] == "," { position += 1 }
            }
        }
        guard position < characters.count, characters[position] == " " else {
            throw ExpositionFormatError(line: number, reason: "no value")
        }
        let fields = String(characters[(position + 1)...]).split(separator: " ").map(String.init)
        guard (1...2).contains(fields.count), let value = ParsedExposition.number(fields[0]) else {
            throw ExpositionFormatError(line: number, reason: "bad value '\(fields.first ?? "")'")
        }
        return ParsedExposition.Sample(name: name, labels: labels, value: value)
    }

    private static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !(first >= "0" && first <= "9") else { return false }
        return name.unicodeScalars.allSatisfy { ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" || $0 == ":" }
    }

    private static func isLabelName(_ name: String) -> Bool { isMetricName(name) && !name.contains(":") }

    private static func unescape(_ text: String, quotes: Bool) -> String {
        var result = ""
        var escaping = false
        for character in text {
            if escaping {
                result.append(character == "n" ? "\n" : character)
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                result.append(character)
            }
        }
        return result
    }
}
