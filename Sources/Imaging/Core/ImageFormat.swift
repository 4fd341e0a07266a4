// ImageFormat: what a byte string is, from its first bytes. Raw pixels have no signature, so the
// caller says `.raw` together with width, height and channels (see ImageDecoder.decodeRaw).

public enum ImageFormat: String, Sendable, Equatable, CaseIterable {
    case jpeg
    case png
    case raw

    /// JPEG: SOI marker FF D8 followed by the first marker's FF.
    static let jpegSignature: [UInt8] = [0xFF, 0xD8, 0xFF]
    /// PNG: the 8-byte signature "\x89PNG\r\n\x1A\n".
    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The format announced by the magic bytes, or nil (never `.raw`: raw pixels are declared).
    public static func detect(_ bytes: [UInt8]) -> ImageFormat? {
        if bytes.starts(with: jpegSignature) { return .jpeg }
        if bytes.starts(with: pngSignature) { return .png }
        return nil
    }
}

/// What a header says, read without decoding any pixel.
public struct ImageHeader: Equatable, Sendable {
    public let format: ImageFormat
    public let width: Int
    public let height: Int
    /// Colour channels the file stores: 1 for gray, 3 for colour, 4 for CMYK / YCCK JPEGs (which
    /// `decode` rejects as unsupported). An alpha channel is not counted: decoding drops it.
    public let sourceChannels: Int

    public init(format: ImageFormat, width: Int, height: Int, sourceChannels: Int) {
        self.format = format
        self.width = width
        self.height = height
        self.sourceChannels = sourceChannels
    }
}
