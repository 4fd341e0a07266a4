// The pictures glfctl writes: a montage's tiles are the images given, scaled pixel for pixel; its
// captions are drawn under them; the PNG decodes to the stated size; lines and text land where
// asked.
import GLFDTesting
import Imaging
import Pictures
import Testing

@Suite struct PicturesTests {
    @Test func aMontagesTilesAreTheImagesScaled() throws {
        let decoder = ImageDecoder()
        let images = try cifarFiles(7).map { try decoder.decode($0, to: .rgb) }
        let tiles = images.enumerated().map { MontageTile(image: $1, caption: ["#\($0)", "0.9876", "camera-1"]) }
        let canvas = Montage.render(tiles, scale: 3, perRow: 4)
        for (index, image) in images.enumerated() {
            let (x, y) = Montage.origin(of: index, side: 96, perRow: 4, captionLines: 3)
            for (row, column) in [(0, 0), (5, 17), (31, 31), (16, 2)] {
                let i = (row * 32 + column) * 3
                let want = Color(image.pixels[i], image.pixels[i + 1], image.pixels[i + 2])
                for (dy, dx) in [(0, 0), (2, 1), (1, 2)] {
                    #expect(canvas.pixel(x: x + column * 3 + dx, y: y + row * 3 + dy) == want, "tile \(index) pixel (\(row), \(column))")
                }
            }
            // The caption is drawn under the image: some dark pixels in its first line.
            let inked = (0..<Canvas.lineHeight).flatMap { dy in (0..<30).map { dx in canvas.pixel(x: x + dx, y: y + 96 + 4 + dy) } }
            #expect(inked.contains(.black))
        }
        // Two rows of four; the PNG decodes to the canvas, pixel for pixel.
        #expect(canvas.width == 8 + 4 * (96 + 8) && canvas.height == 8 + 2 * (96 + 3 * Canvas.lineHeight + 16))
        let decoded = try decoder.decode(try canvas.png(), to: .rgb)
        #expect(decoded.width == canvas.width && decoded.height == canvas.height && decoded.pixels == canvas.pixels)
    }

    @Test func linesAndTextLandWhereAsked() {
        var canvas = Canvas(width: 60, height: 30)
        canvas.line(from: (0, 0), to: (59, 29), .black)
        #expect(canvas.pixel(x: 0, y: 0) == .black && canvas.pixel(x: 59, y: 29) == .black && canvas.pixel(x: 30, y: 15) == .black)
        #expect(canvas.pixel(x: 59, y: 0) == .white)
        var text = Canvas(width: 40, height: 12)
        text.text("0", x: 0, y: 0)
        let zero = (0..<11).map { y in (0..<6).map { x in text.pixel(x: x, y: y) == .black ? "#" : "." }.joined() }
        #expect(zero[2...8] == [".###..", "##.##.", "##.##.", "##.##.", "##.##.", "##.##.", ".###.."], "\(zero)")
        #expect(Canvas.textWidth("score") == 30)
    }
}

@Suite struct LineChartTests {
    /// Each point of a series is drawn in its colour where `position` puts it; the PNG has the
    /// stated size (900 × 200 a panel).
    @Test func pointsLandWhereTheScalesPutThem() throws {
        let loss = Series(name: "simclr", points: [(0, 5.5), (100, 4.0), (200, 3.2), (300, 3.0)])
        let other = Series(name: "adc.lpm", points: [(0, 1.0), (300, 2.0)])
        let panels = [Panel(title: "loss", series: [loss, other]), Panel(title: "images/s", series: [Series(name: "ips", points: [(0, 300), (300, 310)])])]
        let canvas = LineChart.render(panels)
        #expect(canvas.width == 900 && canvas.height == 400)
        let plot = LineChart.plotArea(of: 0, width: 900, panelHeight: 200)
        let yRange = LineChart.yRange(of: panels[0])
        #expect(yRange == 1.0...5.5)
        for (point, color) in loss.points.map({ ($0, Color.palette[0]) }) + other.points.map({ ($0, Color.palette[1]) }) {
            let at = LineChart.position(x: point.x, y: point.y, xRange: 0...300, yRange: yRange, plot: plot)
            #expect(canvas.pixel(x: at.x, y: at.y) == color, "\(point) at \(at)")
        }
        let decoded = try ImageDecoder().decode(try canvas.png(), to: .rgb)
        #expect(decoded.width == 900 && decoded.height == 400)
    }
}

@Suite struct CatalogMapTests {
    /// Points spread along one direction of 8-D space, with a little noise across it: the first
    /// principal component orders them as that direction does, the second is small.
    @Test func principalComponentsFindTheSpread() {
        let direction: [Float] = [1, 2, 2, 0, 0, 0, 0, 4].map { $0 / 5 }
        var vectors: [Float] = []
        for i in 0..<100 {
            let t = Float(i) / 10
            vectors += direction.enumerated().map { j, d in d * t + 0.01 * Float((i * 7 + j * 3) % 5 - 2) }
        }
        let projected = PrincipalComponents.project(vectors, dimension: 8)
        let first = projected.map { $0[0] }, second = projected.map { $0[1] }
        let increasing = zip(first, first.dropFirst()).allSatisfy { $0 < $1 }, decreasing = zip(first, first.dropFirst()).allSatisfy { $0 > $1 }
        #expect(increasing || decreasing, "\(first.prefix(5))")
        #expect(abs(first.last! - first.first!) > 9 && second.allSatisfy { abs($0) < 0.1 })
    }

    @Test func pointsAreDrawnInTheirGroupsColours() throws {
        let points = (0..<30).map { MapPoint(x: Double($0), y: Double($0 % 7), group: $0 % 3) }
        let canvas = CatalogMap.render(points, legend: ["a", "b", "c"], title: "test", side: 400)
        #expect(canvas.width == 400 + 2 * CatalogMap.margin + CatalogMap.legendWidth && canvas.height == 400 + 2 * CatalogMap.margin)
        for point in points.suffix(5) {
            let (x, y) = CatalogMap.position(point, in: points, side: 400)
            #expect(canvas.pixel(x: x, y: y) == Color.palette[point.group], "\(point.x), \(point.y)")
        }
        let decoded = try ImageDecoder().decode(try canvas.png(), to: .rgb)
        #expect(decoded.width == canvas.width && decoded.height == canvas.height)
    }
}

@Suite struct TSNETests {
    /// Four clusters on four orthogonal axes of 12-D, 25 points each with noise: t-SNE keeps them
    /// apart (every point nearer its own cluster's mean than another's), spreads the layout it
    /// starts from (the principal components at a hundredth of their scale), and is deterministic.
    @Test func clustersStayApart() {
        var state: UInt64 = 12345
        func noise() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Double(state >> 11) / Double(1 << 53)) - 0.5
        }
        var vectors: [Float] = []
        for i in 0..<100 {
            for j in 0..<12 { vectors.append((j == (i / 25) * 3 ? 5 : 0) + 0.6 * noise()) }
        }
        let y = TSNE.embed(vectors, dimension: 12, perplexity: 10, iterations: 500)
        func mean(_ cluster: Int, _ axis: Int) -> Double {
            var sum = 0.0
            for i in cluster * 25..<(cluster + 1) * 25 { sum += y[i][axis] }
            return sum / 25
        }
        let means: [[Double]] = (0..<4).map { c in [mean(c, 0), mean(c, 1)] }
        func distance(_ a: [Double], _ b: [Double]) -> Double {
            let dx = a[0] - b[0], dy = a[1] - b[1]
            return (dx * dx + dy * dy).squareRoot()
        }
        for i in 0..<100 {
            let own = distance(y[i], means[i / 25])
            #expect((0..<4).filter { $0 != i / 25 }.allSatisfy { distance(y[i], means[$0]) > own }, "point \(i)")
        }
        #expect(y.map { abs($0[0]) + abs($0[1]) }.max()! > 1, "the layout spread from its 0.01-wide start")
        #expect(TSNE.embed(vectors, dimension: 12, perplexity: 10, iterations: 500) == y)
    }
}
