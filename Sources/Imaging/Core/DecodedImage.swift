// DecodedImage: 8-bit pixels in row-major height × width × channels order (HWC, channels
// innermost, as Neural's NHWC tensors), channels 1 (gray) or 3 (RGB, in that order).

/// The colour layout a model asks for.
public enum ColorMode: Int, Sendable, Equatable, CaseIterable {
    case gray = 1
    case rgb = 3

    public var channels: Int { rawValue }
}

public struct DecodedImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// 1 (gray) or 3 (RGB).
    public let channels: Int
    /// height × width × channels bytes, row-major, top row first.
    public let pixels: [UInt8]

    /// Pixels built in code are trusted: a wrong count is a programming error, not bad input
    /// (bytes from outside go through ImageDecoder.decodeRaw, which throws instead).
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "an image has at least one pixel (\(width)×\(height))")
        precondition(channels == 1 || channels == 3, "channels must be 1 or 3, not \(channels)")
        precondition(pixels.count == width * height * channels,
                     "\(width)×\(height)×\(channels) needs \(width * height * channels) bytes, not \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    public var color: ColorMode { channels == 1 ? .gray : .rgb }

    /// The byte at row y, column x, channel c.
    public subscript(y: Int, x: Int, c: Int) -> UInt8 {
        pixels[(y * width + x) * channels + c]
    }
}
