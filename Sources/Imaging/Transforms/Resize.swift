// Resizing to the model's canonical size. Separable: a vertical pass, then a horizontal one, each
// axis with its own rule —
//   shrinking (output < input): area averaging. Output pixel i covers input interval
//     [i·s, (i+1)·s), s = input/output; each input pixel weighs its overlap / s. This is box
//     filtering without aliasing (OpenCV INTER_AREA, PIL's BOX), what a 32×32 CIFAR-style input
//     needs from a 4000×3000 photo; bilinear would sample 4 of every 10 000 pixels.
//   enlarging (output > input): bilinear with half-pixel centres (align_corners = false, as
//     OpenCV INTER_LINEAR and PyTorch): source x = (i + 0.5)·s − 0.5, clamped to [0, input − 1].
//   equal: copied.
// Mixing is fine (shrink one axis, enlarge the other): a product of 1-D weights is exactly the 2-D
// area overlap or bilinear weight. Sums are in Float; results round half up to UInt8.
// The aspect ratio is not kept: callers that want it crop first.

/// For each output index along one axis, the input indices it reads and their weights (sum 1).
struct ResizeWeights {
    /// First input index of output i.
    var first: [Int]
    /// Taps per output (the same for all outputs: unused taps weigh 0 and read a valid index).
    var taps: Int
    /// outputCount × taps weights.
    var weights: [Float]

    init(input: Int, output: Int) {
        precondition(input > 0 && output > 0)
        let scale = Double(input) / Double(output)
        if output < input {
            // Never more taps than input pixels: a window of `taps` from `start` must stay inside
            // the row (2 → 1 wanted 3 taps, and the horizontal pass read past the row's end,
            // multiplying whatever it found by a zero weight: NaN now and then, and a trap).
            taps = min(Int(scale.rounded(.up)) + 1, input)
            first = []
            weights = []
            for i in 0..<output {
                let low = Double(i) * scale, high = min(Double(i + 1) * scale, Double(input))
                var start = Int(low.rounded(.down))
                start = min(start, max(0, input - taps))
                first.append(start)
                for t in 0..<taps {
                    let j = Double(start + t)
                    let overlap = max(0, min(high, j + 1) - max(low, j))
                    weights.append(Float(overlap / scale))
                }
            }
        } else if output > input {
            taps = 2
            first = []
            weights = []
            for i in 0..<output {
                let source = min(max((Double(i) + 0.5) * scale - 0.5, 0), Double(input - 1))
                var start = Int(source.rounded(.down))
                var fraction = source - Double(start)
                if start == input - 1 && input > 1 { start -= 1; fraction = 1 }  // keep both taps in range
                if input == 1 { first.append(0); weights += [1, 0]; continue }
                first.append(start)
                weights += [Float(1 - fraction), Float(fraction)]
            }
        } else {
            taps = 1
            first = Array(0..<input)
            weights = [Float](repeating: 1, count: input)
        }
    }
}

extension DecodedImage {
    /// Resized to width × height: area averaging on axes that shrink, bilinear on axes that grow.
    public func resized(width newWidth: Int, height newHeight: Int) -> DecodedImage {
        precondition(newWidth > 0 && newHeight > 0, "cannot resize to \(newWidth)×\(newHeight)")
        if newWidth == width && newHeight == height { return self }
        let vertical = ResizeWeights(input: height, output: newHeight)
        let horizontal = ResizeWeights(input: width, output: newWidth)
        let c = channels
        // Vertical pass first: whole input rows are contiguous, so the inner loop is a long
        // vectorisable axpy over width·c values, and a big shrink (4000×3000 → 32×32) leaves only
        // newHeight rows for the strided horizontal pass.
        // [height, width, c] bytes → [newHeight, width, c] floats.
        let rowLength = width * c
        var rows = [Float](repeating: 0, count: newHeight * rowLength)
        pixels.withUnsafeBufferPointer { source in
            rows.withUnsafeMutableBufferPointer { destination in
                vertical.weights.withUnsafeBufferPointer { weights in
                    for y in 0..<newHeight {
                        let sum = destination.baseAddress! + y * rowLength
                        let start = vertical.first[y]
                        for t in 0..<vertical.taps {
                            let w = weights[y * vertical.taps + t]
                            if w == 0 { continue }
                            let sourceRow = source.baseAddress! + (start + t) * rowLength
                            for i in 0..<rowLength { sum[i] += w * Float(sourceRow[i]) }
                        }
                    }
                }
            }
        }
        // Horizontal pass: [newHeight, width, c] floats → [newHeight, newWidth, c] bytes.
        var output = [UInt8](repeating: 0, count: newHeight * newWidth * c)
        rows.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                horizontal.weights.withUnsafeBufferPointer { weights in
                    horizontal.first.withUnsafeBufferPointer { first in
                        let taps = horizontal.taps
                        for y in 0..<newHeight {
                            let sourceRow = source.baseAddress! + y * rowLength
                            let destinationRow = destination.baseAddress! + y * newWidth * c
                            for x in 0..<newWidth {
                                let w = weights.baseAddress! + x * taps
                                let input = sourceRow + first[x] * c
                                if c == 3 {
                                    var r: Float = 0, g: Float = 0, b: Float = 0
                                    for t in 0..<taps {
                                        r += w[t] * input[3 * t]
                                        g += w[t] * input[3 * t + 1]
                                        b += w[t] * input[3 * t + 2]
                                    }
                                    destinationRow[3 * x] = roundedByte(r)
                                    destinationRow[3 * x + 1] = roundedByte(g)
                                    destinationRow[3 * x + 2] = roundedByte(b)
                                } else {
                                    var v: Float = 0
                                    for t in 0..<taps { v += w[t] * input[t] }
                                    destinationRow[x] = roundedByte(v)
                                }
                            }
                        }
                    }
                }
            }
        }
        return DecodedImage(width: newWidth, height: newHeight, channels: c, pixels: output)
    }

    /// Resized to side × side (the canonical square input of the encoders).
    public func resized(side: Int) -> DecodedImage { resized(width: side, height: side) }
}

/// Round half up, clamped to 0...255 (weights are convex, so only rounding noise can leave it).
@inline(__always)
private func roundedByte(_ value: Float) -> UInt8 {
    UInt8(min(max((value + 0.5).rounded(.down), 0), 255))
}
