// A swift-metrics factory that keeps every metric in memory and renders them in the Prometheus text
// format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// swift-metrics' kinds map onto Prometheus' three:
//   Counter, FloatingPointCounter         → counter
//   Meter, Recorder(aggregate: false)     → gauge   (Gauge is such a Recorder)
//   Recorder(aggregate: true), Timer      → histogram (Timer's nanoseconds become seconds)
//
// A metric's label (swift-metrics' word for its name) is the Prometheus name, dimensions are its
// labels. One name is one family of one kind: a later handler of another kind under the same name
// works but is not exported, and so is a series past `maxSeriesPerFamily` (a guard against a label
// value that is not from a fixed set). `describe(_:help:buckets:)` gives a family its HELP text and,
// for histograms, the bucket bounds; describe before the first handler is made.
//
// Every series has its own lock, so updates of different series never contend; the registry's lock
// is held only to find a series and while rendering.
import CoreMetrics
import Foundation

public enum PrometheusMetricKind: String, Sendable {
    case counter, gauge, histogram
}

public final class PrometheusRegistry: MetricsFactory, @unchecked Sendable {
    /// Latency buckets in seconds, 0.5 ms … 5 s: for histograms that were given none.
    public static let defaultBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    public static let maxSeriesPerFamily = 1000

    private struct Description {
        var help: String
        var buckets: [Double]?
    }

    private let lock = NSLock()
    private var families: [String: Family] = [:]
    private var descriptions: [String: Description] = [:]

    public init() {}

    /// HELP text for `name`, and for a histogram its upper bucket bounds (sorted, without +Inf).
    public func describe(_ name: String, help: String, buckets: [Double]? = nil) {
        let name = PrometheusText.metricName(name)
        let cleaned = buckets.map { Array(Set($0.filter { $0.isFinite })).sorted() }
        lock.withLock {
            descriptions[name] = Description(help: help, buckets: cleaned)
            families[name]?.help = help
        }
    }

    /// The exposition of every family, sorted by name, each series sorted by its labels.
    public func exposition() -> String {
        let snapshot = lock.withLock {
            families.values.sorted { $0.name < $1.name }.map { family in
                (name: family.name, help: family.help, kind: family.kind, series: family.series.sorted { $0.key < $1.key })
            }
        }
        var text = ""
        text.reserveCapacity(256 * snapshot.count)
        for family in snapshot {
            let name = family.name
            text += "# HELP \(name) \(PrometheusText.escapeHelp(family.help))\n"
            text += "# TYPE \(name) \(family.kind.rawValue)\n"
            for (labels, storage) in family.series {
                switch storage {
                case .value(let value):
                    text += "\(name)\(labels.rendered) \(PrometheusText.number(value.current))\n"
                case .histogram(let histogram):
                    let state = histogram.snapshot()
                    var cumulative: UInt64 = 0
                    for (bound, count) in zip(histogram.bounds, state.counts) {
                        cumulative += count
                        text += "\(name)_bucket\(labels.rendered(adding: ("le", PrometheusText.number(bound)))) \(cumulative)\n"
                    }
                    text += "\(name)_bucket\(labels.rendered(adding: ("le", "+Inf"))) \(state.count)\n"
                    text += "\(name)_sum\(labels.rendered) \(PrometheusText.number(state.sum))\n"
                    text += "\(name)_count\(labels.rendered) \(state.count)\n"
                }
            }
        }
        return text
    }

    // MARK: MetricsFactory

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        valueSeries(label, dimensions, kind: .counter)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        valueSeries(label, dimensions, kind: .counter)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        valueSeries(label, dimensions, kind: .gauge)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        aggregate ? histogramSeries(label, dimensions) : valueSeries(label, dimensions, kind: .gauge)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        histogramSeries(label, dimensions)
    }

    public func destroyCounter(_ handler: any CounterHandler) { remove(handler) }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { remove(handler) }
    public func destroyMeter(_ handler: any MeterHandler) { remove(handler) }
    public func destroyRecorder(_ handler: any RecorderHandler) { remove(handler) }
    public func destroyTimer(_ handler: any TimerHandler) { remove(handler) }

    // MARK: Families and series

    private enum Storage {
        case value(ValueSeries)
        case histogram(HistogramSeries)

        var object: AnyObject {
            switch self {
            case .value(let series): series
            case .histogram(let series): series
            }
        }
    }

    private final class Family {
        let name: String
        let kind: PrometheusMetricKind
        var help: String
        let buckets: [Double]
        var series: [LabelSet: Storage] = [:]

        init(name: String, kind: PrometheusMetricKind, help: String, buckets: [Double]) {
            self.name = name
            self.kind = kind
            self.help = help
            self.buckets = buckets
        }
    }

    /// The family of `name`, made on first use; nil when the name is taken by another kind.
    private func family(_ name: String, kind: PrometheusMetricKind) -> Family? {
        if let family = families[name] { return family.kind == kind ? family : nil }
        let description = descriptions[name]
        let family = Family(name: name, kind: kind, help: description?.help ?? name,
                            buckets: description?.buckets ?? Self.defaultBuckets)
        families[name] = family
        return family
    }

    private func valueSeries(_ label: String, _ dimensions: [(String, String)], kind: PrometheusMetricKind) -> ValueSeries {
        let name = PrometheusText.metricName(label)
        let labels = LabelSet(dimensions)
        return lock.withLock {
            guard let family = family(name, kind: kind) else { return ValueSeries(isCounter: kind == .counter) }
            if case .value(let existing)? = family.series[labels] { return existing }
            let series = ValueSeries(isCounter: kind == .counter)
            if family.series.count < Self.maxSeriesPerFamily { family.series[labels] = .value(series) }
            return series
        }
    }

    private func histogramSeries(_ label: String, _ dimensions: [(String, String)]) -> HistogramSeries {
        let name = PrometheusText.metricName(label)
        let labels = LabelSet(dimensions.filter { $0.0 != "le" })
        return lock.withLock {
            guard let family = family(name, kind: .histogram) else { return HistogramSeries(bounds: Self.defaultBuckets) }
            if case .histogram(let existing)? = family.series[labels] { return existing }
            let series = HistogramSeries(bounds: family.buckets)
            if family.series.count < Self.maxSeriesPerFamily { family.series[labels] = .histogram(series) }
            return series
        }
    }

    private func remove(_ handler: AnyObject) {
        lock.withLock {
            for family in families.values {
                if let key = family.series.first(where: { $0.value.object === handler })?.key {
                    family.series[key] = nil
                    return
                }
            }
        }
    }
}

/// A series' labels, sorted by name, and their rendering `{a="x",b="y"}` ("" without labels).
struct LabelSet: Hashable, Comparable {
    let pairs: [(name: String, value: String)]
    let rendered: String

    init(_ dimensions: [(String, String)]) {
        var seen = Set<String>()
        var pairs: [(name: String, value: String)] = []
        for (name, value) in dimensions {
            let name = PrometheusText.labelName(name)
            if seen.insert(name).inserted { pairs.append((name, value)) }
        }
        pairs.sort { $0.name < $1.name }
        self.pairs = pairs
        rendered = Self.render(pairs)
    }

    func rendered(adding extra: (String, String)) -> String { Self.render(pairs + [extra]) }

    private static func render(_ pairs: [(name: String, value: String)]) -> String {
        if pairs.isEmpty { return "" }
        return "{" + pairs.map { "\($0.name)=\"\(PrometheusText.escapeLabelValue($0.value))\"" }.joined(separator: ",") + "}"
    }

    static func == (lhs: LabelSet, rhs: LabelSet) -> Bool { lhs.rendered == rhs.rendered }
    static func < (lhs: LabelSet, rhs: LabelSet) -> Bool { lhs.rendered < rhs.rendered }
    func hash(into hasher: inout Hasher) { hasher.combine(rendered) }
}

/// A counter's or a gauge's value. Counters ignore negative and non-finite increments.
final class ValueSeries: CounterHandler, FloatingPointCounterHandler, MeterHandler, RecorderHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0.0
    private let isCounter: Bool

    init(isCounter: Bool) { self.isCounter = isCounter }

    var current: Double { lock.withLock { value } }

    func increment(by amount: Int64) { add(Double(amount)) }
    func increment(by amount: Double) { add(amount) }
    func decrement(by amount: Double) { add(-amount) }
    func reset() { lock.withLock { value = 0 } }
    func set(_ value: Int64) { set(Double(value)) }
    func set(_ value: Double) { if !isCounter { lock.withLock { self.value = value } } }
    func record(_ value: Int64) { set(Double(value)) }
    func record(_ value: Double) { set(value) }

    private func add(_ amount: Double) {
        if isCounter && !(amount >= 0 && amount.isFinite) { return }
        lock.withLock { value += amount }
    }
}

/// Observations counted into buckets `value ≤ bound`; +Inf is the total count.
final class HistogramSeries: RecorderHandler, TimerHandler, @unchecked Sendable {
    let bounds: [Double]
    private let lock = NSLock()
    private var counts: [UInt64]
    private var sum = 0.0
    private var count: UInt64 = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    func record(_ value: Int64) { observe(Double(value)) }
    func record(_ value: Double) { observe(value) }
    func recordNanoseconds(_ duration: Int64) { observe(Double(duration) / 1e9) }
    func preferDisplayUnit(_ unit: TimeUnit) {}

    func observe(_ value: Double) {
        if value.isNaN { return }
        let bucket = bounds.firstIndex { value <= $0 }
        lock.withLock {
            if let bucket { counts[bucket] += 1 }
            sum += value
            count += 1
        }
    }

    /// Per-bucket (not cumulative) counts, the sum and the count, read together.
    func snapshot() -> (counts: [UInt64], sum: Double, count: UInt64) {
        lock.withLock { (counts, sum, count) }
    }
}
