// A 2-D map of the catalog (glfctl map): the embeddings projected on their two principal
// components (PCA: the fast default; no t-SNE yet), drawn as points coloured by source or label,
// or as thumbnails, with a legend.
import Foundation
import Imaging

public enum PrincipalComponents {
    /// The rows of `vectors` ([count, dimension], row-major) on their first `components`
    /// principal axes: centred, then projected on the leading eigenvectors of the covariance,
    /// found by power iteration with deflation (enough for 2 of a few hundred dimensions).
    public static func project(_ vectors: [Float], dimension: Int, components: Int = 2, iterations: Int = 200) -> [[Double]] {
        let count = vectors.count / dimension
        guard count > 0 else { return [] }
        var mean = [Double](repeating: 0, count: dimension)
        for row in 0..<count { for j in 0..<dimension { mean[j] += Double(vectors[row * dimension + j]) / Double(count) } }
        let centred = (0..<count).map { row in (0..<dimension).map { Double(vectors[row * dimension + $0]) - mean[$0] } }
        var axes: [[Double]] = []
        for component in 0..<components {
            // A fixed start (not random): the same catalog gives the same map.
            var axis = (0..<dimension).map { j in 1 + Double((j * 7 + component * 13) % 11) / 11 }
            for _ in 0..<iterations {
                // C·axis = Xᵀ(X·axis)/n, less the axes found already.
                var next = [Double](repeating: 0, count: dimension)
                for x in centred {
                    let projection = zip(x, axis).reduce(0) { $0 + $1.0 * $1.1 }
                    for j in 0..<dimension { next[j] += projection * x[j] }
                }
                for found in axes {
                    let overlap = zip(next, found).reduce(0) { $0 + $1.0 * $1.1 }
                    for j in 0..<dimension { next[j] -= overlap * found[j] }
                }
                let norm = next.reduce(0) { $0 + $1 * $1 }.squareRoot()
                guard norm > 0 else { break }
                axis = next.map { $0 / norm }
            }
            axes.append(axis)
        }
        return centred.map { x in axes.map { axis in zip(x, axis).reduce(0) { $0 + $1.0 * $1.1 } } }
    }
}

public struct MapPoint: Sendable {
    public var x: Double, y: Double
    /// Index into the legend (colour), and a thumbnail to draw instead of a dot.
    public var group: Int
    public var thumbnail: DecodedImage?
    public init(x: Double, y: Double, group: Int, thumbnail: DecodedImage? = nil) {
        (self.x, self.y, self.group, self.thumbnail) = (x, y, group, thumbnail)
    }
}

public enum CatalogMap {
    public static let margin = 24, legendWidth = 200

    /// Where a point lands: the points' bounding box fills the square plot of `side` pixels.
    public static func position(_ point: MapPoint, in points: [MapPoint], side: Int) -> (x: Int, y: Int) {
        let (xs, ys) = (points.map(\.x), points.map(\.y))
        func share(_ v: Double, _ low: Double, _ high: Double) -> Double { high > low ? (v - low) / (high - low) : 0.5 }
        return (margin + Int((share(point.x, xs.min()!, xs.max()!) * Double(side - 1)).rounded()),
                margin + side - 1 - Int((share(point.y, ys.min()!, ys.max()!) * Double(side - 1)).rounded()))
    }

    public static func render(_ points: [MapPoint], legend: [String], title: String, side: Int = 800) -> Canvas {
        var canvas = Canvas(width: side + 2 * margin + legendWidth, height: side + 2 * margin)
        canvas.text(title, x: margin, y: 6)
        for point in points {
            let (x, y) = position(point, in: points, side: side)
            if let thumbnail = point.thumbnail {
                canvas.draw(thumbnail, x: x - thumbnail.width / 2, y: y - thumbnail.height / 2)
            } else {
                canvas.fill(x: x - 2, y: y - 2, width: 5, height: 5, Color.palette[point.group % Color.palette.count])
            }
        }
        for (index, name) in legend.prefix(40).enumerated() {
            let y = margin + index * (Canvas.lineHeight + 3)
            canvas.fill(x: side + 2 * margin, y: y + 2, width: 8, height: 8, Color.palette[index % Color.palette.count])
            canvas.text(String(name.prefix(28)), x: side + 2 * margin + 12, y: y)
        }
        return canvas
    }
}
