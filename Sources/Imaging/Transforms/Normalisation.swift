// Bytes → model input: Float HWC (the layout of one NHWC sample), x = pixel / 255, then
// optionally (x − mean[c]) / std[c] with per-channel statistics given by the caller (for CIFAR-10
// RGB: mean 0.4914, 0.4822, 0.4465; std 0.2470, 0.2435, 0.2616).

extension DecodedImage {
    /// height × width × channels floats.
    public func normalised(mean: [Float]? = nil, std: [Float]? = nil) -> [Float] {
        var output = [Float](repeating: 0, count: pixels.count)
        output.withUnsafeMutableBufferPointer { writeNormalised(into: $0, mean: mean, std: std) }
        return output
    }

    /// Writes the normalised pixels into `destination` (exactly height × width × channels floats),
    /// e.g. one sample's slice of a batch tensor, without an intermediate array.
    public func writeNormalised(into destination: UnsafeMutableBufferPointer<Float>,
                                mean: [Float]? = nil, std: [Float]? = nil) {
        precondition(destination.count == pixels.count, "destination holds \(destination.count) floats, image has \(pixels.count)")
        precondition(mean.map { $0.count == channels } ?? true, "mean needs \(channels) values")
        precondition(std.map { $0.count == channels && $0.allSatisfy { $0 > 0 } } ?? true,
                     "std needs \(channels) positive values")
        // One 256-entry table per channel: (v / 255 − mean) / std computed once per value, so
        // the loop is a lookup and the result is exactly the formula, not a reordered version.
        let c = channels
        var table = [Float](repeating: 0, count: 256 * c)
        for k in 0..<c {
            let m = mean?[k] ?? 0, s = std?[k] ?? 1
            for v in 0..<256 { table[k * 256 + v] = (Float(v) / 255 - m) / s }
        }
        pixels.withUnsafeBufferPointer { source in
            table.withUnsafeBufferPointer { table in
                for p in 0..<(width * height) {
                    for k in 0..<c {
                        destination[p * c + k] = table[k * 256 + Int(source[p * c + k])]
                    }
                }
            }
        }
    }
}
