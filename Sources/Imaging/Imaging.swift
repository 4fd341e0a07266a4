// Imaging: turning bytes a client sent into pixels the model can use — JPEG (libturbojpeg), PNG
// (libpng) and raw pixels, converted to RGB or gray and resized to the model's canonical size,
// with limits checked before any pixel is decoded.
//
// The map:
//   Core/ImageFormat.swift         what the bytes are (magic numbers), and the header peek
//   Core/DecodedImage.swift        pixels: [UInt8], height × width × channels (1 = gray, 3 = RGB)
//   Core/ImageError.swift          the one error type: a stable code and a message
//   Decoding/DecodingLimits.swift  maximum encoded bytes, pixels and side, checked before decoding
//   Decoding/ImageDecoder.swift    the entry point; raw pixels; one decoder per thread
//   Decoding/JPEGDecoding.swift    TurboJPEG: header first, then decompress; warnings are errors
//   Decoding/PNGDecoding.swift     libpng's simplified API, which never longjmps into Swift
//   Encoding/ImageEncoder.swift    PNG and JPEG encoding, for tests and tools
//   Transforms/ColorConversion.swift  RGB ↔ gray (ITU-R BT.601 luma)
//   Transforms/Resize.swift        area averaging when shrinking, bilinear when enlarging
//   Transforms/Normalisation.swift [UInt8] → [Float] in [0, 1], optionally (x − mean) / std
//
// Typical use, once per request on a worker that owns its decoder:
//   let image = try decoder.decode(bytes, to: .rgb).resized(width: 32, height: 32)
//   let input = image.normalised(mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616])
