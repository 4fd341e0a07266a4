// An RGB picture being drawn, for the pictures glfctl writes (knn montages, catalog maps,
// training curves): filled boxes, images scaled by whole factors, lines and text in the built-in
// bitmap font (Font.swift), and PNG out through Imaging's encoder.
import Imaging

public struct Color: Sendable, Equatable {
    public var r, g, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { (self.r, self.g, self.b) = (r, g, b) }
    public static let white = Color(255, 255, 255), black = Color(0, 0, 0), grey = Color(128, 128, 128)
    /// Distinct colours for series and classes (Tableau 10).
    public static let palette: [Color] = [Color(31, 119, 180), Color(255, 127, 14), Color(44, 160, 44), Color(214, 39, 40),
                                          Color(148, 103, 189), Color(140, 86, 75), Color(227, 119, 194), Color(127, 127, 127),
                                          Color(188, 189, 34), Color(23, 190, 207)]
}

public struct Canvas: Sendable, Equatable {
    public let width: Int, height: Int
    /// [height, width, 3] row-major.
    public private(set) var pixels: [UInt8]

    public init(width: Int, height: Int, background: Color = .white) {
        precondition(width > 0 && height > 0, "a canvas needs a size")
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        fill(x: 0, y: 0, width: width, height: height, background)
    }

    public func pixel(x: Int, y: Int) -> Color {
        let i = (y * width + x) * 3
        return Color(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Sets one pixel; outside the canvas, nothing.
    public mutating func set(x: Int, y: Int, _ color: Color) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        (pixels[i], pixels[i + 1], pixels[i + 2]) = (color.r, color.g, color.b)
    }

    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ color: Color) {
        for row in max(0, y)..<min(height, y + h) {
            for column in max(0, x)..<min(width, x + w) { set(x: column, y: row, color) }
        }
    }

    /// `image` (gray or RGB) at (x, y), each pixel a `scale` × `scale` block.
    public mutating func draw(_ image: DecodedImage, x: Int, y: Int, scale: Int = 1) {
        let rgb = image.channels == 3 ? image : image.converted(to: .rgb)
        for row in 0..<rgb.height * scale {
            for column in 0..<rgb.width * scale {
                let i = ((row / scale) * rgb.width + column / scale) * 3
                set(x: x + column, y: y + row, Color(rgb.pixels[i], rgb.pixels[i + 1], rgb.pixels[i + 2]))
            }
        }
    }

    /// A straight line (Bresenham), `thickness` pixels wide.
    public mutating func line(from a: (x: Int, y: Int), to b: (x: Int, y: Int), _ color: Color, thickness: Int = 1) {
        var (x, y) = a
        let (dx, dy) = (abs(b.x - a.x), -abs(b.y - a.y))
        let (sx, sy) = (a.x < b.x ? 1 : -1, a.y < b.y ? 1 : -1)
        var error = dx + dy
        while true {
            fill(x: x - thickness / 2, y: y - thickness / 2, width: thickness, height: thickness, color)
            if x == b.x && y == b.y { break }
            let twice = 2 * error
            if twice >= dy { error += dy; x += sx }
            if twice <= dx { error += dx; y += sy }
        }
    }

    /// Width in pixels of `text` at `scale`.
    public static func textWidth(_ text: String, scale: Int = 1) -> Int { text.unicodeScalars.count * BitmapFont.width * scale }
    public static let lineHeight = BitmapFont.height

    /// `text` with its top-left corner at (x, y); characters outside ASCII 32–126 draw as '?'.
    public mutating func text(_ text: String, x: Int, y: Int, _ color: Color = .black, scale: Int = 1) {
        for (index, scalar) in text.unicodeScalars.enumerated() {
            let code = (32...126).contains(scalar.value) ? Int(scalar.value) : 63
            for row in 0..<BitmapFont.height {
                let bits = BitmapFont.rows[(code - 32) * BitmapFont.height + row]
                for column in 0..<BitmapFont.width where bits & (1 << (BitmapFont.width - 1 - column)) != 0 {
                    fill(x: x + (index * BitmapFont.width + column) * scale, y: y + row * scale, width: scale, height: scale, color)
                }
            }
        }
    }

    /// The picture as a PNG file's bytes.
    public func png() throws(ImageError) -> [UInt8] {
        try ImageEncoder.png(DecodedImage(width: width, height: height, channels: 3, pixels: pixels))
    }
}
