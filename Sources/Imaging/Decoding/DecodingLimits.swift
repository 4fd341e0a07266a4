// DecodingLimits: what a decoder accepts, checked before any pixel memory is allocated.
//
// A 100 kB PNG or JPEG can declare 65 000 × 65 000 pixels (a decompression bomb: 12 GB of RGB).
// The decoder reads the declared size from the header and compares it with these limits first;
// only then does it allocate width × height × channels bytes and run the codec.

public struct DecodingLimits: Sendable, Equatable {
    /// Largest accepted input, in bytes (encoded files and raw pixel buffers alike).
    public var maxEncodedBytes: Int
    /// Largest accepted width × height. Peak memory of a decode is about 3 bytes per pixel for
    /// the output plus, for progressive JPEGs, 2 bytes per sample of coefficients.
    public var maxPixels: Int
    /// Largest accepted width or height: stops 1 × 40 000 000 strips the pixel count allows.
    public var maxSide: Int

    public init(maxEncodedBytes: Int = 16 << 20, maxPixels: Int = 40_000_000, maxSide: Int = 16_384) {
        precondition(maxEncodedBytes > 0 && maxPixels > 0 && maxSide > 0, "limits must be positive")
        self.maxEncodedBytes = maxEncodedBytes
        self.maxPixels = maxPixels
        self.maxSide = maxSide
    }

    /// 16 MiB, 40 megapixels, 16 384 pixels a side.
    public static let `default` = DecodingLimits()

    func checkEncodedSize(_ count: Int, format: ImageFormat?) throws(ImageError) {
        if count == 0 { throw ImageError(.empty, "no image bytes were sent", format: format) }
        if count > maxEncodedBytes {
            throw ImageError(.tooLarge, "\(count) bytes exceed the limit of \(maxEncodedBytes) bytes; send a smaller file",
                             format: format)
        }
    }

    /// Width and height as declared by a header (not yet trusted).
    func checkDimensions(width: Int, height: Int, format: ImageFormat) throws(ImageError) {
        guard width > 0, height > 0 else {
            throw ImageError(.corrupt, "the header declares an empty image (\(width)×\(height))", format: format)
        }
        if width > maxSide || height > maxSide {
            throw ImageError(.tooManyPixels, "\(width)×\(height) pixels: a side exceeds the limit of \(maxSide)",
                             format: format)
        }
        // Both sides ≤ maxSide, so the product cannot overflow.
        if width * height > maxPixels {
            throw ImageError(.tooManyPixels, "\(width)×\(height) = \(width * height) pixels exceed the limit of \(maxPixels)",
                             format: format)
        }
    }
}
