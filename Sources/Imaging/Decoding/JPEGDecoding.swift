// JPEG through TurboJPEG (libjpeg-turbo 2.1): tjDecompressHeader3 for the declared size, the
// limits, then tjDecompress2 straight into RGB or gray.
//
// libjpeg reports errors with longjmp, but TurboJPEG catches them itself (setjmp inside each tj*
// call) and returns -1, so nothing unwinds through Swift frames.
//
// Warnings are errors. libjpeg treats a truncated file as a *warning* ("premature end of JPEG
// file"), pads the missing data and returns an image whose lower part is flat gray; corrupt
// entropy-coded data is a warning too. A store that embeds what it was given must not embed a
// half-gray picture, so TJFLAG_STOPONWARNING stops at the first warning and the decode fails as
// `.corrupt`. The price: a few real-world files with harmless warnings (extraneous bytes before a
// marker) are rejected too; clients can re-encode them.
//
// A fresh handle after every failure. TurboJPEG 2.1's tjDecompressHeader3 returns from its setjmp
// without jpeg_abort_decompress, leaving the decompressor mid-header; the next call then parses a
// valid file from that state and fails ("Bogus Huffman table definition" — the tests caught it).
// Recreating the handle costs microseconds and only happens on bad input, and it guarantees that
// nothing from one bad request reaches the next (tables-only streams included).
//
// TJFLAG_LIMITSCANS caps progressive scans (a few hundred kB of scans can otherwise burn minutes
// of CPU: the "two issues with the JPEG standard" exploit).
import CImageCodecs

extension ImageDecoder {
    func turboJPEG() throws(ImageError) -> tjhandle {
        if let jpegHandle { return jpegHandle }
        guard let handle = tjInitDecompress() else {
            throw ImageError(.codecFailure, "TurboJPEG could not create a decompressor (out of memory?)", format: .jpeg)
        }
        jpegHandle = handle
        return handle
    }

    /// Drops the handle: the next JPEG gets a decompressor with no state from earlier inputs.
    private func discardJPEGHandle() {
        if let jpegHandle { tjDestroy(jpegHandle) }
        jpegHandle = nil
    }

    /// The last TurboJPEG error on this decoder's handle, which is then discarded (see above).
    private func jpegFailure(_ handle: tjhandle, during stage: String) -> ImageError {
        defer { discardJPEGHandle() }
        let text = tjGetErrorStr2(handle).map { String(cString: $0) } ?? "unknown error"
        let isWarning = tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue)
        let detail = isWarning ? " (libjpeg warning, treated as an error: the data is damaged or truncated)" : ""
        return ImageError(.corrupt, "\(stage): \(text)\(detail)", format: .jpeg)
    }

    func jpegHeader(_ bytes: [UInt8]) throws(ImageError) -> ImageHeader {
        let handle = try turboJPEG()
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = -1
        let status = bytes.withUnsafeBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &width, &height, &subsampling, &colorspace)
        }
        if status != 0 { throw jpegFailure(handle, during: "reading the JPEG header") }
        if width <= 0 || height <= 0 {
            // A tables-only stream: TurboJPEG has just stored its Huffman and quantisation tables
            // in the handle for later abbreviated images. Drop the handle so one request's tables
            // can never leak into the next.
            discardJPEGHandle()
            throw ImageError(.corrupt, "the JPEG holds tables but no image", format: .jpeg)
        }
        let channels: Int
        switch colorspace {
        case Int32(TJCS_GRAY.rawValue): channels = 1
        case Int32(TJCS_CMYK.rawValue), Int32(TJCS_YCCK.rawValue): channels = 4
        default: channels = 3
        }
        return ImageHeader(format: .jpeg, width: Int(width), height: Int(height), sourceChannels: channels)
    }

    func decodeJPEG(_ bytes: [UInt8], to color: ColorMode) throws(ImageError) -> DecodedImage {
        let header = try jpegHeader(bytes)
        try limits.checkDimensions(width: header.width, height: header.height, format: .jpeg)
        if header.sourceChannels == 4 {
            throw ImageError(.unsupported, "CMYK / YCCK JPEGs are not supported; convert the image to RGB", format: .jpeg)
        }
        let handle = try turboJPEG()
        let (width, height) = (header.width, header.height)
        // Gray from a colour JPEG is its Y channel: BT.601 luma of the encoder's RGB, the same
        // formula ColorConversion uses for PNG and raw pixels.
        let pixelFormat = color == .gray ? TJPF_GRAY : TJPF_RGB
        let flags = Int32(TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS)
        var pixels = [UInt8](repeating: 0, count: width * height * color.channels)
        let status = bytes.withUnsafeBufferPointer { source in
            pixels.withUnsafeMutableBufferPointer { destination in
                tjDecompress2(handle, source.baseAddress, UInt(source.count), destination.baseAddress,
                              Int32(width), 0, Int32(height), pixelFormat.rawValue, flags)
            }
        }
        if status != 0 { throw jpegFailure(handle, during: "decoding the JPEG") }
        return DecodedImage(width: width, height: height, channels: color.channels, pixels: pixels)
    }
}
