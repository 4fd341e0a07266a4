// Colour operations on one image, in place, on floats in [0, 1], channels interleaved (HWC).
//
// Each is torchvision's `_functional_tensor` formula written per pixel with the same float32
// operations in the same order, so results agree with torchvision to rounding of the mean:
//   blend(a, b, r) = clamp(r·a + (1 − r)·b, 0, 1)
//   brightness: blend(x, 0, f)           contrast: blend(x, mean(luma(x)), f)
//   saturation: blend(x, luma(x), f)     hue: RGB → HSV, h ← (h + shift) mod 1, HSV → RGB
//   luma = 0.2989·R + 0.587·G + 0.114·B (configurable)
// One-channel images: saturation and hue do nothing and contrast uses the plain mean (torchvision).

enum ColorOps {
    @inline(__always) static func clampUnit(_ v: Float) -> Float { min(max(v, 0), 1) }

    @inline(__always)
    static func luma(_ p: UnsafePointer<Float>, _ w: (Float, Float, Float)) -> Float {
        w.0 * p[0] + w.1 * p[1] + w.2 * p[2]
    }

    /// pixels: [count] values (any channel count).
    static func brightness(_ pixels: UnsafeMutablePointer<Float>, count: Int, factor: Float) {
        for i in 0..<count { pixels[i] = clampUnit(factor * pixels[i]) }
    }

    /// pixels: [pixelCount, channels], channels 1 or 3.
    static func contrast(_ pixels: UnsafeMutablePointer<Float>, pixelCount: Int, channels: Int,
                         factor: Float, luma w: (Float, Float, Float)) {
        var sum: Double = 0
        if channels == 3 {
            for i in 0..<pixelCount { sum += Double(luma(pixels + 3 * i, w)) }
        } else {
            for i in 0..<pixelCount { sum += Double(pixels[i]) }
        }
        let mean = Float(sum / Double(pixelCount))
        let other = Float(1.0 - Double(factor)) * mean
        for i in 0..<pixelCount * channels { pixels[i] = clampUnit(factor * pixels[i] + other) }
    }

    /// pixels: [pixelCount, 3].
    static func saturation(_ pixels: UnsafeMutablePointer<Float>, pixelCount: Int, factor: Float,
                           luma w: (Float, Float, Float)) {
        let rest = Float(1.0 - Double(factor))
        for i in 0..<pixelCount {
            let p = pixels + 3 * i
            let gray = rest * luma(p, w)
            p[0] = clampUnit(factor * p[0] + gray)
            p[1] = clampUnit(factor * p[1] + gray)
            p[2] = clampUnit(factor * p[2] + gray)
        }
    }

    /// pixels: [pixelCount, 3]; shift in turns. torchvision's `_rgb2hsv` and `_hsv2rgb` per pixel
    /// (the exact conversion, not an approximate rotation in RGB space).
    /// Which channel is largest and which sixth of the hue circle a pixel lands in are random, so
    /// branches mispredict (~45 ns per pixel measured); 8 pixels go through at a time with selects.
    /// Only non-mutating `replacing(with:where:)`, masks and arithmetic are used on SIMD values:
    /// `pointwiseMin`, mutating `replace` and float→int vector conversions compile to per-lane
    /// loops or calls. `stage` is scratch for 24 floats (8 pixels, planar).
    static func hue(_ pixels: UnsafeMutablePointer<Float>, pixelCount: Int, shift: Float,
                    stage: UnsafeMutablePointer<Float>) {
        typealias V = SIMD8<Float>
        @inline(__always) func larger(_ a: V, _ b: V) -> V { a.replacing(with: b, where: b .> a) }
        @inline(__always) func smaller(_ a: V, _ b: V) -> V { a.replacing(with: b, where: b .< a) }
        @inline(__always) func clamp(_ x: V) -> V { x.replacing(with: 0, where: x .< 0).replacing(with: 1, where: x .> 1) }
        var i = 0
        while i + 8 <= pixelCount {
            let p = pixels + 3 * i
            for l in 0..<8 { stage[l] = p[3 * l]; stage[8 + l] = p[3 * l + 1]; stage[16 + l] = p[3 * l + 2] }
            let r = load8(stage), g = load8(stage + 8), b = load8(stage + 16)
            let maxc = larger(r, larger(g, b)), minc = smaller(r, smaller(g, b))
            let equal = maxc .== minc
            let cr = maxc - minc
            let s = cr / maxc.replacing(with: 1, where: equal)
            let divisor = cr.replacing(with: 1, where: equal)
            let rc = (maxc - r) / divisor, gc = (maxc - g) / divisor, bc = (maxc - b) / divisor
            let hueRed = bc - gc, hueGreen = 2 + rc - bc, hueBlue = 4 + gc - rc
            let h0 = hueBlue.replacing(with: hueGreen, where: maxc .== g).replacing(with: hueRed, where: maxc .== r) / 6 + 1
            let h1 = h0.replacing(with: h0 - 1, where: h0 .>= 1) + shift          // torch.fmod(h, 1): exact
            let h = h1.replacing(with: h1 + 1, where: h1 .< 0).replacing(with: h1 - 1, where: h1 .>= 1)  // remainder
            let v = maxc
            let h6 = h * 6
            var floor6 = V(repeating: 0)                   // floor(h6) on [0, 6] by thresholds
            floor6 = floor6.replacing(with: 1, where: h6 .>= 1)
            floor6 = floor6.replacing(with: 2, where: h6 .>= 2)
            floor6 = floor6.replacing(with: 3, where: h6 .>= 3)
            floor6 = floor6.replacing(with: 4, where: h6 .>= 4)
            floor6 = floor6.replacing(with: 5, where: h6 .>= 5)
            floor6 = floor6.replacing(with: 6, where: h6 .>= 6)
            let f = h6 - floor6
            let pp = clamp(v * (1 - s))
            let q = clamp(v * (1 - s * f))
            let t = clamp(v * (1 - s * (1 - f)))
            let k = floor6.replacing(with: 0, where: floor6 .== 6)   // i % 6
            // torchvision's table: k → (R, G, B) = 0 (v,t,p) 1 (q,v,p) 2 (p,v,t) 3 (p,q,v) 4 (t,p,v) 5 (v,p,q)
            let outR = pp.replacing(with: t, where: k .== 4).replacing(with: q, where: k .== 1)
                .replacing(with: v, where: (k .== 0) .| (k .== 5))
            let outG = v.replacing(with: q, where: k .== 3).replacing(with: pp, where: k .>= 4).replacing(with: t, where: k .== 0)
            let outB = pp.replacing(with: t, where: k .== 2).replacing(with: v, where: (k .== 3) .| (k .== 4))
                .replacing(with: q, where: k .== 5)
            store8(outR, stage); store8(outG, stage + 8); store8(outB, stage + 16)
            for l in 0..<8 { p[3 * l] = stage[l]; p[3 * l + 1] = stage[8 + l]; p[3 * l + 2] = stage[16 + l] }
            i += 8
        }
        for j in i..<pixelCount { huePixel(pixels + 3 * j, shift: shift) }
    }

    /// One pixel of `hue`, the same float operations in scalar form (for the last pixelCount % 8).
    @inline(__always)
    static func huePixel(_ p: UnsafeMutablePointer<Float>, shift: Float) {
        let r = p[0], g = p[1], b = p[2]
        let maxc = max(r, max(g, b)), minc = min(r, min(g, b))
        let equal = maxc == minc
        let cr = maxc - minc
        let s = cr / (equal ? 1 : maxc)
        let divisor: Float = equal ? 1 : cr
        let rc = (maxc - r) / divisor, gc = (maxc - g) / divisor, bc = (maxc - b) / divisor
        var h: Float
        if maxc == r { h = bc - gc } else if maxc == g { h = 2 + rc - bc } else { h = 4 + gc - rc }
        h = h / 6 + 1
        if h >= 1 { h -= 1 }
        h += shift
        if h < 0 { h += 1 } else if h >= 1 { h -= 1 }
        let v = maxc
        let h6 = h * 6
        let sector = h6.rounded(.down)
        let f = h6 - sector
        let pp = clampUnit(v * (1 - s)), q = clampUnit(v * (1 - s * f)), t = clampUnit(v * (1 - s * (1 - f)))
        switch Int(sector) % 6 {
        case 0: p[0] = v; p[1] = t; p[2] = pp
        case 1: p[0] = q; p[1] = v; p[2] = pp
        case 2: p[0] = pp; p[1] = v; p[2] = t
        case 3: p[0] = pp; p[1] = q; p[2] = v
        case 4: p[0] = t; p[1] = pp; p[2] = v
        default: p[0] = v; p[1] = pp; p[2] = q
        }
    }

    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

    @inline(__always)
    static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }

    /// pixels: [pixelCount, 3]; luma replicated to all three channels.
    static func grayscale(_ pixels: UnsafeMutablePointer<Float>, pixelCount: Int, luma w: (Float, Float, Float)) {
        for i in 0..<pixelCount {
            let p = pixels + 3 * i
            let gray = luma(p, w)
            p[0] = gray; p[1] = gray; p[2] = gray
        }
    }

    static func solarize(_ pixels: UnsafeMutablePointer<Float>, count: Int, threshold: Float) {
        for i in 0..<count {
            let v = pixels[i]
            pixels[i] = v >= threshold ? 1 - v : v
        }
    }

    /// (x − mean[c]) / std[c]; mean and std point at `channels` values.
    static func normalize(_ pixels: UnsafeMutablePointer<Float>, pixelCount: Int, channels: Int,
                          mean: UnsafePointer<Float>, std: UnsafePointer<Float>) {
        if channels == 3 {
            let (m0, m1, m2) = (mean[0], mean[1], mean[2])
            let (s0, s1, s2) = (std[0], std[1], std[2])
            for i in 0..<pixelCount {
                let p = pixels + 3 * i
                p[0] = (p[0] - m0) / s0
                p[1] = (p[1] - m1) / s1
                p[2] = (p[2] - m2) / s2
            }
        } else {
            for i in 0..<pixelCount * channels {
                let c = i % channels
                pixels[i] = (pixels[i] - mean[c]) / std[c]
            }
        }
    }
}
