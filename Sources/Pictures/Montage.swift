// A knn answer as one picture (glfctl knn --montage): the query and its neighbours side by side,
// each image scaled up by a whole factor, with its caption (rank, score, source) under it.
import Imaging

public struct MontageTile: Sendable {
    public var image: DecodedImage
    /// Lines of text under the image (cut to the tile's width).
    public var caption: [String]
    public init(image: DecodedImage, caption: [String]) {
        self.image = image
        self.caption = caption
    }
}

public enum Montage {
    public static let margin = 8

    /// The top-left corner of tile `index`'s image, for tiles of `side` pixels (after scaling),
    /// `perRow` to a row, with `captionLines` lines under each.
    public static func origin(of index: Int, side: Int, perRow: Int, captionLines: Int) -> (x: Int, y: Int) {
        let (column, row) = (index % perRow, index / perRow)
        return (margin + column * (side + margin), margin + row * (side + captionLines * Canvas.lineHeight + 2 * margin))
    }

    /// Every tile's image resized to the side most tiles have (the store's canonical side, when
    /// the query is a file of another size), then scaled by `scale`; `perRow` to a row.
    public static func render(_ tiles: [MontageTile], scale: Int = 4, perRow: Int = 6) -> Canvas {
        let sides = Dictionary(grouping: tiles.map { max($0.image.width, $0.image.height) }, by: { $0 })
        let base = sides.max { ($0.value.count, $1.key) < ($1.value.count, $0.key) }?.key ?? 32
        let side = base * scale
        let lines = tiles.map(\.caption.count).max() ?? 0
        let columns = max(1, min(perRow, tiles.count)), rows = max(1, (tiles.count + perRow - 1) / perRow)
        let last = origin(of: columns - 1 + (rows - 1) * perRow, side: side, perRow: perRow, captionLines: lines)
        var canvas = Canvas(width: last.x + side + margin, height: last.y + side + lines * Canvas.lineHeight + 2 * margin)
        let fits = side / BitmapFont.width
        for (index, tile) in tiles.enumerated() {
            let (x, y) = origin(of: index, side: side, perRow: perRow, captionLines: lines)
            let image = tile.image.width == base && tile.image.height == base ? tile.image : tile.image.resized(side: base)
            canvas.draw(image, x: x, y: y, scale: scale)
            for (line, text) in tile.caption.enumerated() {
                canvas.text(String(text.prefix(fits)), x: x, y: y + side + 4 + line * Canvas.lineHeight)
            }
        }
        return canvas
    }
}
