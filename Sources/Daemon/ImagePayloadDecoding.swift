// A request's images as the store's items, for ingest, embed and knn by image alike.
import Protocol
import Store

/// Images of a request as the store's items: decoded and resized to its canonical shape, with
/// their descriptors. The first image that fails is named by its index.
enum ImagePayloadDecoding {
    static func items(_ images: [ImagePayload], canonical: CanonicalShape) -> Result<[NewItem], ProtocolError> {
        let decoder = IngestDecoder(canonical: canonical)
        var items: [NewItem] = []
        for (index, image) in images.enumerated() {
            do {
                let d = image.descriptor
                var item: NewItem
                switch d.format ?? .auto {
                case .raw:
                    item = try decoder.item(raw: image.bytes, width: d.width ?? 0, height: d.height ?? 0, channels: d.channels ?? 0)
                case .auto, .jpeg, .png:
                    item = try decoder.item(encoded: image.bytes)
                    if let format = d.format, format != .auto, format.rawValue != item.originalFormat.rawValue {
                        return .failure(ProtocolError(.badImage, "declared \(format.rawValue), but the bytes are \(item.originalFormat.rawValue)", index: index))
                    }
                }
                item.source = d.source ?? ""
                item.metadata = Array((d.meta ?? "").utf8)
                items.append(item)
            } catch {
                var protocolError = GLFDaemon.protocolError(error)
                protocolError.index = index
                return .failure(protocolError)
            }
        }
        return .success(items)
    }
}
