// Random resized crop: the crop box of a UInt8 source resampled to S × S floats in [0, 1].
//
// Resampling is torchvision's `resize(..., bilinear, antialias=True)` on a float tensor, i.e.
// torch's `_upsample_bilinear2d_aa` (the same filter as PIL): a triangle filter of half-width
// max(in/out, 1) centred at (o + 0.5)·in/out, taps outside the crop dropped and the rest
// renormalised. When enlarging (the usual case: crops of a 32×32 source) this is exactly bilinear
// with align_corners=False; when shrinking it averages instead of aliasing.
// Separable: a horizontal pass over the crop's rows, then a vertical pass into the output, both
// accumulating taps in the same order as torch. The flip is folded into the horizontal pass
// (mirrored destination column), since flipping commutes with every later operation.

/// Filter taps of one axis: output index o reads input first[o] ..< first[o] + count[o].
struct ResampleTaps {
    let first: UnsafeMutablePointer<Int>       // [outputLength]
    let count: UnsafeMutablePointer<Int>       // [outputLength]
    let weights: UnsafeMutablePointer<Float>   // [outputLength, maxTaps]
    let maxTaps: Int
    let outputLength: Int

    /// An upper bound on taps per output for inputs up to `inputLength`: the filter spans
    /// 2·max(in/out, 1) input pixels, plus one for where it starts.
    static func maximumTaps(inputLength: Int, outputLength: Int) -> Int {
        let support = max(Double(inputLength) / Double(outputLength), 1)
        return Int((2 * support).rounded(.up)) + 2
    }

    init(allocatingFor outputLength: Int, maxTaps: Int) {
        self.outputLength = outputLength
        self.maxTaps = maxTaps
        first = .allocate(capacity: outputLength)
        count = .allocate(capacity: outputLength)
        weights = .allocate(capacity: outputLength * maxTaps)
    }

    func deallocate() {
        first.deallocate()
        count.deallocate()
        weights.deallocate()
    }

    /// torch's `_compute_index_ranges_weights` for the antialiased bilinear filter, in float32.
    func compute(inputLength: Int) {
        let scale = Float(inputLength) / Float(outputLength)
        let support = max(scale, 1)
        let inverseFilterScale = 1 / support
        for o in 0..<outputLength {
            let center = scale * (Float(o) + 0.5)
            let lo = max(Int(center - support + 0.5), 0)
            let n = min(Int(center + support + 0.5), inputLength) - lo
            precondition(n >= 1 && n <= maxTaps, "resampling taps out of range")
            let w = weights + o * maxTaps
            var total: Float = 0
            for k in 0..<n {
                let x = (Float(k + lo) - center + 0.5) * inverseFilterScale
                let value = max(0, 1 - abs(x))
                w[k] = value
                total += value
            }
            if total != 0 { for k in 0..<n { w[k] /= total } }
            first[o] = lo
            count[o] = n
        }
    }
}

/// The source pixels inside `box` as floats in [0, 1], converted to the output channel count:
/// a 1-channel source is replicated for RGB output, an RGB source reduced to luma for gray output.
/// source: [H, W, sourceChannels] UInt8; crop: [box.height, box.width, outputChannels].
func loadCrop(source: UnsafePointer<UInt8>, sourceWidth: Int, sourceChannels: Int, box: CropBox,
              outputChannels: Int, luma: (Float, Float, Float),
              unit: UnsafePointer<Float>, into crop: UnsafeMutablePointer<Float>) {
    let rowLength = box.width * sourceChannels
    for r in 0..<box.height {
        let src = source + ((box.top + r) * sourceWidth + box.left) * sourceChannels
        let dst = crop + r * box.width * outputChannels
        if sourceChannels == outputChannels {
            for i in 0..<rowLength { dst[i] = unit[Int(src[i])] }
        } else if sourceChannels == 1 {
            for x in 0..<box.width {
                let v = unit[Int(src[x])]
                dst[3 * x] = v; dst[3 * x + 1] = v; dst[3 * x + 2] = v
            }
        } else {
            for x in 0..<box.width {
                let s = src + 3 * x
                dst[x] = luma.0 * unit[Int(s[0])] + luma.1 * unit[Int(s[1])] + luma.2 * unit[Int(s[2])]
            }
        }
    }
}

/// crop [h, w, C] → output [S, S, C] through `rows` [h, S, C]. Taps must be computed for w (x) and h (y).
func resample(crop: UnsafePointer<Float>, height h: Int, width w: Int, channels c: Int, flip: Bool,
              xTaps: ResampleTaps, yTaps: ResampleTaps,
              rows: UnsafeMutablePointer<Float>, into output: UnsafeMutablePointer<Float>) {
    let s = xTaps.outputLength
    let outRowLength = s * c
    // Horizontal: each crop row to S columns.
    for r in 0..<h {
        let inRow = crop + r * w * c
        let outRow = rows + r * outRowLength
        for o in 0..<s {
            let weights = xTaps.weights + o * xTaps.maxTaps
            let n = xTaps.count[o]
            let src = inRow + xTaps.first[o] * c
            let dst = outRow + (flip ? s - 1 - o : o) * c
            for ch in 0..<c {
                var acc = src[ch] * weights[0]
                for k in 1..<max(n, 1) { acc += src[k * c + ch] * weights[k] }
                dst[ch] = acc
            }
        }
    }
    // Vertical: S output rows, each a weighted sum of whole intermediate rows (contiguous, vectorises).
    for o in 0..<yTaps.outputLength {
        let weights = yTaps.weights + o * yTaps.maxTaps
        let n = yTaps.count[o]
        let dst = output + o * outRowLength
        let first = rows + yTaps.first[o] * outRowLength
        let w0 = weights[0]
        for e in 0..<outRowLength { dst[e] = first[e] * w0 }
        for k in 1..<max(n, 1) {
            let row = first + k * outRowLength
            let wk = weights[k]
            for e in 0..<outRowLength { dst[e] += row[e] * wk }
        }
    }
}
