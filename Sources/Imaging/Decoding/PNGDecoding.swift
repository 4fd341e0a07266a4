// PNG through libpng's simplified API (png_image_begin_read_from_memory / png_image_finish_read).
//
// Why the simplified API: libpng reports errors by longjmp to a jmp_buf the caller set with
// setjmp, and Swift can neither call setjmp safely nor be unwound through. The simplified API runs
// every libpng operation inside png_safe_execute (png.c), which does the setjmp in C, one frame
// below our call; png_safe_error longjmps only to that buffer and, when none is set, abort()s
// instead. Either way no longjmp ever crosses a Swift frame: failures come back as a 0 return with
// `warning_or_error` and `message` filled in. We register no callbacks, so no Swift code runs
// inside libpng either.
//
// libpng keeps a pointer to the png_image (as its error and I/O context) between begin_read and
// finish_read, so the struct lives in manually allocated memory with a stable address, and the
// input bytes stay pinned for both calls.
//
// Limits: the IHDR is read from the bytes before libpng is involved (the PNG standard puts it
// first, at a fixed offset), and again from libpng's parse before any pixel buffer is allocated.
// libpng's own caps apply too: chunks ≤ 8 MB (PNG_USER_CHUNK_MALLOC_MAX, which also bounds
// compressed text and ICC profiles), ≤ 1000 ancillary chunks.
//
// Warnings (bad CRC in an ancillary chunk, a profile libpng ignores) are accepted: libpng has
// recovered and the pixels are intact. Errors (bad critical chunk, truncated or undecompressible
// image data) are `.corrupt`.
import CImageCodecs

extension ImageDecoder {
    /// Width and height from the IHDR chunk, which must directly follow the signature:
    /// length (4 bytes, = 13), "IHDR", width (big-endian u32), height (big-endian u32).
    static func pngDeclaredSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        guard bytes.count >= 24, bytes[12..<16].elementsEqual("IHDR".utf8) else { return nil }
        func bigEndian(_ at: Int) -> Int { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (bigEndian(16), bigEndian(20))
    }

    func pngHeader(_ bytes: [UInt8]) throws(ImageError) -> ImageHeader {
        try withPNGImage(bytes) { image throws(ImageError) in
            let hasColor = image.pointee.format & PNG_FORMAT_FLAG_COLOR != 0
            return ImageHeader(format: .png, width: Int(image.pointee.width), height: Int(image.pointee.height),
                               sourceChannels: hasColor ? 3 : 1)
        }
    }

    func decodePNG(_ bytes: [UInt8], to color: ColorMode) throws(ImageError) -> DecodedImage {
        if let declared = Self.pngDeclaredSize(bytes) {
            try limits.checkDimensions(width: declared.width, height: declared.height, format: .png)
        }
        return try withPNGImage(bytes) { image throws(ImageError) in
            let (width, height) = (Int(image.pointee.width), Int(image.pointee.height))
            try limits.checkDimensions(width: width, height: height, format: .png)
            // Colour → gray is done by ColorConversion (BT.601 on the sRGB values, as JPEG's Y),
            // not by libpng (which mixes in linear light): one formula whatever the format.
            let sourceHasColor = image.pointee.format & PNG_FORMAT_FLAG_COLOR != 0
            let decodeAsRGB = color == .rgb || sourceHasColor
            image.pointee.format = decodeAsRGB ? PNG_FORMAT_RGB : UInt32(PNG_FORMAT_GRAY)
            // 16-bit files without gAMA/sRGB are nearly always gamma-encoded (what image tools
            // write), not linear as libpng would otherwise assume.
            image.pointee.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
            let channels = decodeAsRGB ? 3 : 1
            var pixels = [UInt8](repeating: 0, count: width * height * channels)
            var white = png_color(red: 255, green: 255, blue: 255)
            let status = pixels.withUnsafeMutableBytes { destination in
                png_image_finish_read(image, &white, destination.baseAddress, 0, nil)
            }
            if status == 0 { throw Self.pngFailure(image, during: "decoding the PNG") }
            return DecodedImage(width: width, height: height, channels: channels, pixels: pixels).converted(to: color)
        }
    }

    /// Runs png_image_begin_read_from_memory on `bytes`, then `body` with the parsed header while
    /// the bytes are still pinned; frees libpng's state on every path.
    private func withPNGImage<T>(_ bytes: [UInt8],
                                 _ body: (UnsafeMutablePointer<png_image>) throws(ImageError) -> T) throws(ImageError) -> T {
        let image = UnsafeMutablePointer<png_image>.allocate(capacity: 1)
        image.initialize(to: png_image())  // zeroed: opaque = NULL, as libpng requires
        image.pointee.version = UInt32(PNG_IMAGE_VERSION)
        defer {
            png_image_free(image)  // no-op when libpng already freed (opaque == NULL)
            image.deinitialize(count: 1)
            image.deallocate()
        }
        let result: Result<T, ImageError> = bytes.withUnsafeBytes { source in
            guard png_image_begin_read_from_memory(image, source.baseAddress, source.count) != 0 else {
                return .failure(Self.pngFailure(image, during: "reading the PNG header"))
            }
            do throws(ImageError) { return .success(try body(image)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private static func pngFailure(_ image: UnsafeMutablePointer<png_image>, during stage: String) -> ImageError {
        let message = withUnsafeBytes(of: image.pointee.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return ImageError(.corrupt, "\(stage): \(message.isEmpty ? "libpng failed without a message" : message)",
                          format: .png)
    }
}
