// Encoding DecodedImages as PNG (libpng simplified API: lossless, exact round trip) and JPEG
// (TurboJPEG: lossy). For tests, tools and thumbnails; not on the request path, so each call
// creates and frees its own codec state and is safe from any thread.
import CImageCodecs

public enum ImageEncoder {
    /// An 8-bit gray or RGB PNG.
    public static func png(_ image: DecodedImage) throws(ImageError) -> [UInt8] {
        var description = png_image()  // zeroed: opaque = NULL
        description.version = UInt32(PNG_IMAGE_VERSION)
        description.width = UInt32(image.width)
        description.height = UInt32(image.height)
        description.format = image.channels == 3 ? PNG_FORMAT_RGB : UInt32(PNG_FORMAT_GRAY)
        // Room for the uncompressed rows plus headers: deflate never expands much beyond that;
        // if it ever does, libpng reports the size it needs and we try once more.
        var capacity = image.pixels.count + image.height + 1024
        for _ in 0..<2 {
            var output = [UInt8](repeating: 0, count: capacity)
            var size = png_alloc_size_t(capacity)
            let status = image.pixels.withUnsafeBytes { source in
                output.withUnsafeMutableBytes { destination in
                    png_image_write_to_memory(&description, destination.baseAddress, &size, 0, source.baseAddress, 0, nil)
                }
            }
            if status != 0 { return Array(output.prefix(Int(size))) }
            if Int(size) <= capacity { break }  // an error, not a small buffer
            capacity = Int(size)
            description.warning_or_error = 0
        }
        let message = withUnsafeBytes(of: description.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        throw ImageError(.codecFailure, "PNG encoding failed: \(message)", format: .png)
    }

    /// A baseline JPEG at `quality` (1...100). Colour images keep full chroma resolution (4:4:4)
    /// unless `subsampleChroma` asks for 4:2:0 (smaller files, what cameras write).
    public static func jpeg(_ image: DecodedImage, quality: Int = 90, subsampleChroma: Bool = false) throws(ImageError) -> [UInt8] {
        precondition((1...100).contains(quality), "JPEG quality is 1...100, not \(quality)")
        guard let handle = tjInitCompress() else {
            throw ImageError(.codecFailure, "TurboJPEG could not create a compressor (out of memory?)", format: .jpeg)
        }
        defer { tjDestroy(handle) }
        let pixelFormat = image.channels == 3 ? TJPF_RGB : TJPF_GRAY
        let subsampling = image.channels == 1 ? TJSAMP_GRAY : (subsampleChroma ? TJSAMP_420 : TJSAMP_444)
        var buffer: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        defer { if let buffer { tjFree(buffer) } }
        let status = image.pixels.withUnsafeBufferPointer { source in
            tjCompress2(handle, source.baseAddress, Int32(image.width), 0, Int32(image.height), pixelFormat.rawValue,
                        &buffer, &size, Int32(subsampling.rawValue), Int32(quality), Int32(TJFLAG_ACCURATEDCT))
        }
        guard status == 0, let buffer else {
            let text = tjGetErrorStr2(handle).map { String(cString: $0) } ?? "unknown error"
            throw ImageError(.codecFailure, "JPEG encoding failed: \(text)", format: .jpeg)
        }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }
}
