// RGB ↔ gray. Gray is ITU-R BT.601 luma on the 8-bit (gamma-encoded) values,
// Y = 0.299 R + 0.587 G + 0.114 B, in libjpeg's 16-bit fixed point — so a colour PNG converted
// here and a colour JPEG decoded by TurboJPEG straight to gray agree. Gray → RGB replicates.

extension DecodedImage {
    /// The same pixels with `color`'s channel count (self when it already has it).
    public func converted(to color: ColorMode) -> DecodedImage {
        if color.channels == channels { return self }
        let count = width * height
        var output = [UInt8](repeating: 0, count: count * color.channels)
        pixels.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                if color == .gray {
                    for p in 0..<count {
                        let r = UInt32(source[3 * p]), g = UInt32(source[3 * p + 1]), b = UInt32(source[3 * p + 2])
                        // 19595 + 38470 + 7471 = 65536: white stays 255; + 32768 rounds.
                        destination[p] = UInt8((19595 * r + 38470 * g + 7471 * b + 32768) >> 16)
                    }
                } else {
                    for p in 0..<count {
                        let y = source[p]
                        destination[3 * p] = y
                        destination[3 * p + 1] = y
                        destination[3 * p + 2] = y
                    }
                }
            }
        }
        return DecodedImage(width: width, height: height, channels: color.channels, pixels: output)
    }
}
