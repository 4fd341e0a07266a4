// ImageDecoder: bytes → DecodedImage, with DecodingLimits enforced before decoding.
//
// Order of checks, cheapest first: byte count (empty, too large) → magic bytes → declared
// dimensions from the header → allocate exactly width × height × channels → decode. Every failure
// is an ImageError; nothing in here traps on input.
//
// Thread safety: a decoder owns a TurboJPEG handle, which keeps per-call state (and the text of
// its last error). Use one decoder per thread or task; never share one between concurrent callers.
// Decoders are cheap to make (the handle is created on the first JPEG) and fine to keep for life.
import CImageCodecs

public final class ImageDecoder {
    public let limits: DecodingLimits
    /// TurboJPEG, lazily created: a decoder that only ever sees PNG or raw pixels never needs it.
    var jpegHandle: tjhandle?

    public init(limits: DecodingLimits = .default) {
        self.limits = limits
    }

    deinit { if let jpegHandle { tjDestroy(jpegHandle) } }

    /// Decodes a JPEG or PNG (recognised by its magic bytes) to `color`.
    /// Colour images become gray through BT.601 luma, gray images become RGB by replication;
    /// transparent PNG pixels are composited onto white.
    public func decode(_ bytes: [UInt8], to color: ColorMode) throws(ImageError) -> DecodedImage {
        try limits.checkEncodedSize(bytes.count, format: nil)
        switch ImageFormat.detect(bytes) {
        case .jpeg: return try decodeJPEG(bytes, to: color)
        case .png: return try decodePNG(bytes, to: color)
        case .raw, nil: throw Self.unknownFormat(bytes)
        }
    }

    /// Reads only the header: format and declared size (limits are not applied here, so a caller
    /// can report what was declared).
    public func header(of bytes: [UInt8]) throws(ImageError) -> ImageHeader {
        try limits.checkEncodedSize(bytes.count, format: nil)
        switch ImageFormat.detect(bytes) {
        case .jpeg: return try jpegHeader(bytes)
        case .png: return try pngHeader(bytes)
        case .raw, nil: throw Self.unknownFormat(bytes)
        }
    }

    /// Raw 8-bit pixels, height × width × channels, row-major; channels 1 (gray), 3 (RGB) or 4
    /// (RGBA: alpha is dropped, as canvases and video frames often carry an opaque alpha).
    public func decodeRaw(_ bytes: [UInt8], width: Int, height: Int, channels: Int,
                          to color: ColorMode) throws(ImageError) -> DecodedImage {
        guard width > 0, height > 0 else {
            throw ImageError(.invalidDimensions, "raw pixels need a positive width and height, not \(width)×\(height)",
                             format: .raw)
        }
        guard [1, 3, 4].contains(channels) else {
            throw ImageError(.unsupported, "raw pixels must have 1 (gray), 3 (RGB) or 4 (RGBA) channels, not \(channels)",
                             format: .raw)
        }
        try limits.checkEncodedSize(bytes.count, format: .raw)
        try limits.checkDimensions(width: width, height: height, format: .raw)
        let expected = width * height * channels
        guard bytes.count == expected else {
            throw ImageError(.rawSizeMismatch,
                             "\(width)×\(height)×\(channels) raw pixels need \(expected) bytes, but \(bytes.count) were sent",
                             format: .raw)
        }
        let image: DecodedImage
        if channels == 4 {
            var rgb = [UInt8](repeating: 0, count: width * height * 3)
            for p in 0..<(width * height) {
                rgb[3 * p] = bytes[4 * p]
                rgb[3 * p + 1] = bytes[4 * p + 1]
                rgb[3 * p + 2] = bytes[4 * p + 2]
            }
            image = DecodedImage(width: width, height: height, channels: 3, pixels: rgb)
        } else {
            image = DecodedImage(width: width, height: height, channels: channels, pixels: bytes)
        }
        return image.converted(to: color)
    }

    private static func unknownFormat(_ bytes: [UInt8]) -> ImageError {
        let prefix = bytes.prefix(8).map { String($0, radix: 16, uppercase: true) }
            .map { $0.count == 1 ? "0" + $0 : $0 }.joined(separator: " ")
        return ImageError(.unknownFormat,
                          "the data is neither JPEG (FF D8 FF) nor PNG (89 50 4E 47 0D 0A 1A 0A); it starts with \(prefix)")
    }
}
