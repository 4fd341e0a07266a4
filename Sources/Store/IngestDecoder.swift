// From a client's bytes to a storable item: decode (JPEG, PNG, or raw pixels the caller describes)
// under the decoding limits, convert to the store's colour mode, resize to its canonical side.
// One per thread: it owns an ImageDecoder (and through it a TurboJPEG handle).
import Imaging

public final class IngestDecoder {
    public let canonical: CanonicalShape
    public let decoder: ImageDecoder

    public init(canonical: CanonicalShape, limits: DecodingLimits = .default) {
        self.canonical = canonical
        self.decoder = ImageDecoder(limits: limits)
    }

    /// An encoded JPEG or PNG.
    public func item(encoded bytes: [UInt8], source: String = "", metadata: [UInt8] = []) throws(StoreError) -> NewItem {
        do {
            let header = try decoder.header(of: bytes)
            let image = try decoder.decode(bytes, to: canonical.color)
            return NewItem(image: image.resized(side: canonical.side), originalWidth: header.width,
                           originalHeight: header.height, originalFormat: header.format,
                           source: source, metadata: metadata)
        } catch {
            throw .badImage(error)
        }
    }

    /// Raw 8-bit pixels, height × width × channels (1, 3 or 4).
    public func item(raw bytes: [UInt8], width: Int, height: Int, channels: Int,
                     source: String = "", metadata: [UInt8] = []) throws(StoreError) -> NewItem {
        do {
            let image = try decoder.decodeRaw(bytes, width: width, height: height, channels: channels, to: canonical.color)
            return NewItem(image: image.resized(side: canonical.side), originalWidth: width, originalHeight: height,
                           originalFormat: .raw, source: source, metadata: metadata)
        } catch {
            throw .badImage(error)
        }
    }
}
