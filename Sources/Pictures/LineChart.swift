// Training curves as one picture (glfctl curves): panels stacked top to bottom, each with its
// series as lines against a shared x (trainer steps), the y range of its data, and a legend.
import Foundation

public struct Series: Sendable {
    public var name: String
    public var points: [(x: Double, y: Double)]
    public init(name: String, points: [(x: Double, y: Double)]) {
        self.name = name
        self.points = points
    }
}

public struct Panel: Sendable {
    public var title: String
    public var series: [Series]
    public init(title: String, series: [Series]) {
        self.title = title
        self.series = series
    }
}

public enum LineChart {
    public static let left = 70, right = 180, top = 22, bottom = 22

    /// Where a value lands in a panel's plot area (x from `xRange`, y from `yRange`, y up).
    public static func position(x: Double, y: Double, xRange: ClosedRange<Double>, yRange: ClosedRange<Double>,
                                plot: (x: Int, y: Int, width: Int, height: Int)) -> (x: Int, y: Int) {
        func share(_ v: Double, _ r: ClosedRange<Double>) -> Double { r.upperBound > r.lowerBound ? (v - r.lowerBound) / (r.upperBound - r.lowerBound) : 0.5 }
        return (plot.x + Int((share(x, xRange) * Double(plot.width - 1)).rounded()),
                plot.y + plot.height - 1 - Int((share(y, yRange) * Double(plot.height - 1)).rounded()))
    }

    /// The y range a panel shows: its data's, widened a little when flat.
    public static func yRange(of panel: Panel) -> ClosedRange<Double> {
        let ys = panel.series.flatMap { $0.points.map(\.y) }.filter(\.isFinite)
        guard let low = ys.min(), let high = ys.max() else { return 0...1 }
        return low < high ? low...high : (low - 0.5)...(high + 0.5)
    }

    /// The plot area of panel `index`.
    public static func plotArea(of index: Int, width: Int, panelHeight: Int) -> (x: Int, y: Int, width: Int, height: Int) {
        (left, index * panelHeight + top, width - left - right, panelHeight - top - bottom)
    }

    public static func render(_ panels: [Panel], width: Int = 900, panelHeight: Int = 200) -> Canvas {
        var canvas = Canvas(width: width, height: max(1, panels.count) * panelHeight)
        let xs = panels.flatMap { $0.series.flatMap { $0.points.map(\.x) } }
        let xRange = (xs.min() ?? 0)...(max(xs.max() ?? 1, (xs.min() ?? 0) + 1))
        for (index, panel) in panels.enumerated() {
            let plot = plotArea(of: index, width: width, panelHeight: panelHeight)
            let yRange = yRange(of: panel)
            canvas.text(panel.title, x: plot.x, y: plot.y - 16)
            // The frame, and the ranges as text at its corners.
            canvas.line(from: (plot.x - 1, plot.y), to: (plot.x - 1, plot.y + plot.height), .grey)
            canvas.line(from: (plot.x - 1, plot.y + plot.height), to: (plot.x + plot.width, plot.y + plot.height), .grey)
            canvas.text(label(yRange.upperBound), x: 4, y: plot.y)
            canvas.text(label(yRange.lowerBound), x: 4, y: plot.y + plot.height - Canvas.lineHeight)
            canvas.text(label(xRange.lowerBound), x: plot.x, y: plot.y + plot.height + 4)
            let end = "step " + label(xRange.upperBound)
            canvas.text(end, x: plot.x + plot.width - Canvas.textWidth(end), y: plot.y + plot.height + 4)
            for (s, series) in panel.series.enumerated() {
                let color = Color.palette[s % Color.palette.count]
                let placed = series.points.filter { $0.x.isFinite && $0.y.isFinite }
                    .map { position(x: $0.x, y: $0.y, xRange: xRange, yRange: yRange, plot: plot) }
                for (a, b) in zip(placed, placed.dropFirst()) { canvas.line(from: a, to: b, color, thickness: 2) }
                if placed.count == 1 { canvas.fill(x: placed[0].x - 2, y: placed[0].y - 2, width: 5, height: 5, color) }
                let legend = plot.y + s * (Canvas.lineHeight + 2)
                canvas.fill(x: plot.x + plot.width + 10, y: legend + 4, width: 12, height: 3, color)
                canvas.text(String(series.name.prefix(24)), x: plot.x + plot.width + 26, y: legend)
            }
        }
        return canvas
    }

    /// A number in at most 9 characters.
    static func label(_ value: Double) -> String {
        let magnitude = abs(value)
        if magnitude >= 1e5 || (magnitude > 0 && magnitude < 1e-3) { return String(format: "%.2e", value) }
        if magnitude >= 100 || value == value.rounded() { return String(format: "%.0f", value) }
        return String(format: "%.4g", value)
    }
}
