// Winograd F(2×2, 3×3) convolution (Lavin & Gray 2016): 3×3 kernel, stride 1, padding 1, NHWC.
// Not a Layer: Conv2D can hand it its input, weights and buffers for the shapes where it is faster.
//
//   input  x: [N, H, W, IC]
//   weight w: [OC, 3, 3, IC]   (the arena's layout, as in Conv2D)
//   output y: [N, H, W, OC]
//
// The zero-padded input is cut into 4×4 tiles d with stride 2, each giving a 2×2 block of outputs:
// T = ⌈H/2⌉·⌈W/2⌉ tiles per image (outputs past an odd edge are computed, then dropped). With ξ
// running over the 16 positions of a 4×4 tile and Bᵀ, G, Aᵀ the matrices of `Transforms`:
//
// forward:  U = G g Gᵀ        per (oc, ic) filter g           U[ξ]: [OC, IC]
//           V = Bᵀ d B        per (tile, ic)                  V[ξ]: [T, IC]
//           M[ξ] = V[ξ]·U[ξ]ᵀ 16 sgemms                       M[ξ]: [T, OC]
//           y = Aᵀ M A        per (tile, oc), 2×2 pixels
// backward: each step's adjoint, in reverse order, so that it is the exact gradient of what forward
//           computed (not of an exact convolution that forward only approximates in Float32):
//           dM = A dy Aᵀ;  dU[ξ] += dM[ξ]ᵀ·V[ξ];  dV[ξ] = dM[ξ]·U[ξ];  dx = B dV Bᵀ summed over the
//           overlapping tiles, padding dropped;  dw += Gᵀ dU G.
//
// Why: a 2×2 block of outputs costs 4·9 = 36 multiplies per (ic, oc) directly and 16 here, so the
// sgemms do 2.25× fewer FLOPs than im2col's, and V is 4× the input where im2col's patches are 9×.
// The transforms are additions over channel vectors (channels are innermost in NHWC), 4 lanes at a
// time.
//
// Layouts, chosen so that every transform reads and writes whole blocks of memory:
//   U, dU [16, OC, IC]  each U[ξ] contiguous, rows in the weights' own OHWI order;
//   V, dV [T, 16, IC]   a tile's 16 vectors side by side; V[ξ] is the matrix at ξ·IC with leading
//   M, dM [T, 16, OC]   dimension 16·IC (sgemm packs its operands anyway, so the stride is free).
// (A first version with separate [16, T, C] matrices, whose 16 write streams sat multiples of 4 KiB
// apart in the same L1 sets, and a table of 16 pixel pointers per tile, ran the 32→32-channel
// forward at 0.97× im2col's speed and backward at 1.4×, against 1.15× and 2× here.)
//
// As in Conv2D, the batch goes a few images at a time, so that one chunk's V and M (`chunkBytes`)
// stay in the core's L2 between the transforms and the sgemms; but a chunk has at least as many
// tiles as channels, because each chunk streams U and dU (16·IC·OC floats each) through the sgemms
// again (at batch 128, 256 channels at 4×4 took 19 + 30 ms in chunks of 1 MiB, 32 tiles, and
// 13 + 25 ms in chunks of 256 tiles). Each chunk is first copied into a zero-padded buffer, so that
// every tile is read the same way, without bounds checks. Backward pads and transforms the input
// again rather than keeping V from forward: V is 4× the input (67 MB for 32 channels at 32×32 and
// batch 128): writing it out and reading it back through memory should cost more than the ~5 ms
// measured for recomputing it there (an estimate: keeping it was not tried). U is transformed from
// the weights given to each call, so forward and backward never use stale filters.

public final class WinogradConvolution {
    /// The three matrices of a Winograd transform with 4×4 input tiles, 3×3 filters, 2×2 outputs.
    /// The fast kernels are written out for `lavinGray`; any other choice runs a slow general path
    /// that exists for tests (an equivalent rescaling must agree, a wrong matrix must not).
    public struct Transforms: Sendable, Equatable {
        /// Bᵀ [4, 4] row-major: input tile d → V = Bᵀ d B.
        public var inputTransposed: [Float]
        /// G [4, 3]: filter g → U = G g Gᵀ.
        public var filter: [Float]
        /// Aᵀ [2, 4]: product M → output block y = Aᵀ M A.
        public var outputTransposed: [Float]

        public init(inputTransposed: [Float], filter: [Float], outputTransposed: [Float]) {
            precondition(inputTransposed.count == 16 && filter.count == 12 && outputTransposed.count == 8)
            self.inputTransposed = inputTransposed
            self.filter = filter
            self.outputTransposed = outputTransposed
        }

        /// Interpolation points 0, 1, −1, ∞ (Lavin & Gray, section 4.1).
        public static let lavinGray = Transforms(
            inputTransposed: [1, 0, -1, 0,
                              0, 1, 1, 0,
                              0, -1, 1, 0,
                              0, 1, 0, -1],
            filter: [1, 0, 0,
                     0.5, 0.5, 0.5,
                     0.5, -0.5, 0.5,
                     0, 0, 1],
            outputTransposed: [1, 1, 1, 0,
                               0, 1, -1, -1])
    }

    public let inChannels: Int, outChannels: Int
    public let transforms: Transforms
    /// Target size of one chunk's transformed tiles V [T, 16, IC] and products M [T, 16, OC].
    public var chunkBytes = 1 << 20
    /// At least this many tiles per chunk (default: the larger channel count), so that the sgemms of
    /// few-tile, many-channel shapes get rows enough to pay for streaming U and dU.
    public var minimumChunkTiles: Int

    /// nil for `lavinGray` (the written-out kernels), the matrices otherwise.
    private let general: Transforms?
    private let filterTransform = Tensor(zeros: [0])          // U  [16, OC, IC]
    private let filterTransformGradient = Tensor(zeros: [0])  // dU [16, OC, IC]
    private let paddedImages = Tensor(zeros: [0])             // one chunk of x, zero-padded [images, Hp, Wp, IC]
    private let paddedGradient = Tensor(zeros: [0])           // dL/d(paddedImages)
    private let tileBuffer = Tensor(zeros: [0])               // one chunk's V, then dV [T, 16, IC]
    private let productBuffer = Tensor(zeros: [0])            // one chunk's M or dM [T, 16, OC]
    private let edgeTile = Tensor(zeros: [0])                 // [2, 2, OC] outputs of a tile past an odd edge

    public init(inChannels: Int, outChannels: Int, transforms: Transforms = .lavinGray) {
        precondition(inChannels >= 1 && outChannels >= 1)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.transforms = transforms
        general = transforms == .lavinGray ? nil : transforms
        minimumChunkTiles = max(inChannels, outChannels)
        edgeTile.reshape(to: [2, 2, outChannels])
    }

    /// y[N, H, W, OC] = conv3×3(x[N, H, W, IC], w[OC, 3, 3, IC]), padding 1. `output` is reshaped.
    public func forward(input x: Tensor, weight w: UnsafePointer<Float>, output y: Tensor) {
        precondition(x.shape.count == 4 && x.shape[3] == inChannels, "Winograd expects [N, H, W, \(inChannels)], got \(x.shape)")
        let (n, ic, oc) = (x.shape[0], inChannels, outChannels)
        let grid = TileGrid(height: x.shape[1], width: x.shape[2])
        y.reshape(to: [n, grid.height, grid.width, oc])
        transformFilters(w)
        let step = imagesPerChunk(grid)
        for first in stride(from: 0, to: n, by: step) {
            let images = first..<min(first + step, n)
            let tiles = images.count * grid.tilesPerImage
            let (v, m, u) = (tileBuffer.data, productBuffer.data, filterTransform.data)
            transformInput(x, images: images, grid, into: v)
            for ξ in 0..<16 {
                // M[ξ][T, OC] = V[ξ][T, IC] · U[ξ][OC, IC]ᵀ
                BLAS.gemm(transposeB: true, m: tiles, n: oc, k: ic,
                          a: v + ξ * ic, lda: 16 * ic, b: u + ξ * oc * ic, ldb: ic, c: m + ξ * oc, ldc: 16 * oc)
            }
            transformOutput(m, images: images, grid, into: y)
        }
    }

    /// dw[OC, 3, 3, IC] += dL/dw; dx (when given) = dL/dx, reshaped to x's shape and overwritten.
    /// `input` and `weight` must be those of the forward that produced the output.
    public func backward(outputGradient dy: Tensor, input x: Tensor, weight w: UnsafePointer<Float>,
                         weightGradient dw: UnsafeMutablePointer<Float>, inputGradient dx: Tensor?) {
        let (n, ic, oc) = (x.shape[0], inChannels, outChannels)
        let grid = TileGrid(height: x.shape[1], width: x.shape[2])
        precondition(x.shape[3] == ic && dy.shape == [n, grid.height, grid.width, oc],
                     "Winograd backward: dy \(dy.shape) does not match x \(x.shape)")
        transformFilters(w)
        filterTransformGradient.reshape(to: [16, oc, ic])
        filterTransformGradient.fill(0)
        dx?.reshape(to: x.shape)
        let step = imagesPerChunk(grid)
        for first in stride(from: 0, to: n, by: step) {
            let images = first..<min(first + step, n)
            let tiles = images.count * grid.tilesPerImage
            let (v, dm, u, du) = (tileBuffer.data, productBuffer.data, filterTransform.data, filterTransformGradient.data)
            transformInput(x, images: images, grid, into: v)
            transformOutputGradient(dy, images: images, grid, into: dm)
            for ξ in 0..<16 {
                // dU[ξ][OC, IC] += dM[ξ][T, OC]ᵀ · V[ξ][T, IC]
                BLAS.gemm(transposeA: true, m: oc, n: ic, k: tiles,
                          a: dm + ξ * oc, lda: 16 * oc, b: v + ξ * ic, ldb: 16 * ic,
                          beta: 1, c: du + ξ * oc * ic, ldc: ic)
            }
            guard let dx else { continue }
            for ξ in 0..<16 {
                // dV[ξ][T, IC] = dM[ξ][T, OC] · U[ξ][OC, IC], over V (no longer needed)
                BLAS.gemm(m: tiles, n: ic, k: oc,
                          a: dm + ξ * oc, lda: 16 * oc, b: u + ξ * oc * ic, ldb: ic, c: v + ξ * ic, ldc: 16 * ic)
            }
            transformInputGradient(v, images: images, grid, into: dx)
        }
        accumulateFilterGradient(into: dw)
    }

    // MARK: Tiles and chunks

    /// How H×W images are cut into tiles, and the zero-padded size they are read from: one row and
    /// column of padding before, and after enough (1 or 2) for the last tile's 4×4.
    private struct TileGrid {
        let height: Int, width: Int
        var tileRows: Int { (height + 1) / 2 }
        var tileColumns: Int { (width + 1) / 2 }
        var tilesPerImage: Int { tileRows * tileColumns }
        var paddedHeight: Int { 2 * tileRows + 2 }
        var paddedWidth: Int { 2 * tileColumns + 2 }
    }

    /// Images per chunk: as many as fit `chunkBytes` of V and M, at least `minimumChunkTiles` tiles.
    /// Sizes the chunk buffers.
    private func imagesPerChunk(_ grid: TileGrid) -> Int {
        let tilesPerImage = grid.tilesPerImage
        let bytesPerImage = 16 * tilesPerImage * (inChannels + outChannels) * MemoryLayout<Float>.size
        let images = max(1, chunkBytes / bytesPerImage, (minimumChunkTiles + tilesPerImage - 1) / tilesPerImage)
        tileBuffer.reshape(to: [images * tilesPerImage, 16, inChannels])
        productBuffer.reshape(to: [images * tilesPerImage, 16, outChannels])
        paddedImages.reshape(to: [images, grid.paddedHeight, grid.paddedWidth, inChannels])
        return images
    }

    /// Calls `body(tile, image, y, x)` for the tiles of `count` images, in the order of the rows of
    /// V and M: `image` counts from the chunk's first, (y, x) is the tile's top-left output pixel,
    /// and its 4×4 input tile starts at (y, x) in the padded image.
    @inline(__always)
    private func forEachTile(images count: Int, _ grid: TileGrid, _ body: (Int, Int, Int, Int) -> Void) {
        var tile = 0
        for image in 0..<count {
            for y in stride(from: 0, to: grid.height, by: 2) {
                for x in stride(from: 0, to: grid.width, by: 2) {
                    body(tile, image, y, x)
                    tile += 1
                }
            }
        }
    }

    // MARK: The six transforms

    /// U[ξ][oc, ic] = (G g Gᵀ)[ξ] for every filter g = w[oc, :, :, ic].
    private func transformFilters(_ w: UnsafePointer<Float>) {
        let (ic, oc) = (inChannels, outChannels)
        filterTransform.reshape(to: [16, oc, ic])
        let u = filterTransform.data
        for o in 0..<oc {
            apply(.filter, from: TileView(UnsafeMutablePointer(mutating: w) + o * 9 * ic, row: 3 * ic, column: ic),
                  to: TileView(u + o * ic, row: 4 * oc * ic, column: oc * ic), channels: ic)
        }
    }

    /// dw[oc, :, :, ic] += Gᵀ dU G, the adjoint of `transformFilters`.
    private func accumulateFilterGradient(into dw: UnsafeMutablePointer<Float>) {
        let (ic, oc) = (inChannels, outChannels)
        let du = filterTransformGradient.data
        for o in 0..<oc {
            apply(.filterAdjoint, from: TileView(du + o * ic, row: 4 * oc * ic, column: oc * ic),
                  to: TileView(dw + o * 9 * ic, row: 3 * ic, column: ic), channels: ic)
        }
    }

    /// V[tile][ξ] = (Bᵀ d B)[ξ] for the tiles d of the chunk's images, zero-padded first.
    private func transformInput(_ x: Tensor, images: Range<Int>, _ grid: TileGrid, into v: UnsafeMutablePointer<Float>) {
        let (h, w, ic, hp, wp) = (grid.height, grid.width, inChannels, grid.paddedHeight, grid.paddedWidth)
        for (k, image) in images.enumerated() {
            let source = x.data + image * h * w * ic
            let padded = paddedImages.data + k * hp * wp * ic
            padded.update(repeating: 0, count: wp * ic)
            for y in 0..<h {
                let row = padded + (y + 1) * wp * ic
                row.update(repeating: 0, count: ic)
                (row + ic).update(from: source + y * w * ic, count: w * ic)
                (row + (w + 1) * ic).update(repeating: 0, count: (wp - w - 1) * ic)
            }
            (padded + (h + 1) * wp * ic).update(repeating: 0, count: (hp - h - 1) * wp * ic)
        }
        let padded = paddedImages.data
        forEachTile(images: images.count, grid) { tile, image, y, x in
            apply(.input, from: TileView(padded + ((image * hp + y) * wp + x) * ic, row: wp * ic, column: ic),
                  to: TileView(v + tile * 16 * ic, row: 4 * ic, column: ic), channels: ic)
        }
    }

    /// dx = B dV Bᵀ summed over the overlapping tiles (into the padded gradient), padding dropped.
    private func transformInputGradient(_ dv: UnsafeMutablePointer<Float>, images: Range<Int>, _ grid: TileGrid, into dx: Tensor) {
        let (h, w, ic, hp, wp) = (grid.height, grid.width, inChannels, grid.paddedHeight, grid.paddedWidth)
        paddedGradient.reshape(to: [images.count, hp, wp, ic])
        paddedGradient.fill(0)
        let padded = paddedGradient.data
        forEachTile(images: images.count, grid) { tile, image, y, x in
            apply(.inputAdjoint, from: TileView(dv + tile * 16 * ic, row: 4 * ic, column: ic),
                  to: TileView(padded + ((image * hp + y) * wp + x) * ic, row: wp * ic, column: ic), channels: ic)
        }
        for (k, image) in images.enumerated() {
            for y in 0..<h {
                (dx.data + (image * h + y) * w * ic).update(from: padded + ((k * hp + y + 1) * wp + 1) * ic, count: w * ic)
            }
        }
    }

    /// y = Aᵀ M A: each tile's 2×2 block of output pixels. A tile past an odd edge goes through
    /// `edgeTile`, and only its pixels inside the image are kept.
    private func transformOutput(_ m: UnsafeMutablePointer<Float>, images: Range<Int>, _ grid: TileGrid, into out: Tensor) {
        let (h, w, oc) = (grid.height, grid.width, outChannels)
        let edge = edgeTile.data
        forEachTile(images: images.count, grid) { tile, image, y, x in
            let from = TileView(m + tile * 16 * oc, row: 4 * oc, column: oc)
            let pixel = out.data + ((images.lowerBound + image) * h * w + y * w + x) * oc
            if y + 1 < h && x + 1 < w {
                apply(.output, from: from, to: TileView(pixel, row: w * oc, column: oc), channels: oc)
            } else {
                apply(.output, from: from, to: TileView(edge, row: 2 * oc, column: oc), channels: oc)
                for i in 0..<2 where y + i < h {
                    for j in 0..<2 where x + j < w {
                        (pixel + (i * w + j) * oc).update(from: edge + (2 * i + j) * oc, count: oc)
                    }
                }
            }
        }
    }

    /// dM = A dy Aᵀ, the adjoint of `transformOutput`: pixels past an odd edge have zero gradient.
    private func transformOutputGradient(_ dy: Tensor, images: Range<Int>, _ grid: TileGrid, into dm: UnsafeMutablePointer<Float>) {
        let (h, w, oc) = (grid.height, grid.width, outChannels)
        let edge = edgeTile.data
        forEachTile(images: images.count, grid) { tile, image, y, x in
            let to = TileView(dm + tile * 16 * oc, row: 4 * oc, column: oc)
            let pixel = dy.data + ((images.lowerBound + image) * h * w + y * w + x) * oc
            if y + 1 < h && x + 1 < w {
                apply(.outputAdjoint, from: TileView(pixel, row: w * oc, column: oc), to: to, channels: oc)
            } else {
                edge.update(repeating: 0, count: 4 * oc)
                for i in 0..<2 where y + i < h {
                    for j in 0..<2 where x + j < w {
                        (edge + (2 * i + j) * oc).update(from: pixel + (i * w + j) * oc, count: oc)
                    }
                }
                apply(.outputAdjoint, from: TileView(edge, row: 2 * oc, column: oc), to: to, channels: oc)
            }
        }
    }

    // MARK: One tile, all channels

    private enum Transform {
        case filter, filterAdjoint, input, inputAdjoint, output, outputAdjoint
    }

    /// Transforms the tile of channel vectors at `from` into the one at `to`; the adjoints that
    /// scatter (into dx and dw) add, the others overwrite.
    @inline(__always)
    private func apply(_ transform: Transform, from s: TileView, to d: TileView, channels: Int) {
        if let general {
            applyGeneral(transform, general, from: s, to: d, channels: channels)
            return
        }
        switch transform {
        case .filter: forEachLane(channels) { lane, c in filterTile(lane, s, d, c) } scalar: { filterTile(Float.self, s, d, $0) }
        case .filterAdjoint: forEachLane(channels) { lane, c in filterAdjointTile(lane, s, d, c) } scalar: { filterAdjointTile(Float.self, s, d, $0) }
        case .input: forEachLane(channels) { lane, c in inputTile(lane, s, d, c) } scalar: { inputTile(Float.self, s, d, $0) }
        case .inputAdjoint: forEachLane(channels) { lane, c in inputAdjointTile(lane, s, d, c) } scalar: { inputAdjointTile(Float.self, s, d, $0) }
        case .output: forEachLane(channels) { lane, c in outputTile(lane, s, d, c) } scalar: { outputTile(Float.self, s, d, $0) }
        case .outputAdjoint: forEachLane(channels) { lane, c in outputAdjointTile(lane, s, d, c) } scalar: { outputAdjointTile(Float.self, s, d, $0) }
        }
    }

    /// The same transforms from the matrices, one channel at a time: X → P X Pᵀ, or Pᵀ X P for an
    /// adjoint. Slow; for transforms other than `lavinGray` (tests) only.
    private func applyGeneral(_ transform: Transform, _ t: Transforms, from s: TileView, to d: TileView, channels: Int) {
        let (p, rows, columns, adjoint, accumulates): ([Float], Int, Int, Bool, Bool) = switch transform {
        case .filter: (t.filter, 4, 3, false, false)
        case .filterAdjoint: (t.filter, 4, 3, true, true)
        case .input: (t.inputTransposed, 4, 4, false, false)
        case .inputAdjoint: (t.inputTransposed, 4, 4, true, true)
        case .output: (t.outputTransposed, 2, 4, false, false)
        case .outputAdjoint: (t.outputTransposed, 2, 4, true, false)
        }
        let (inSide, outSide) = adjoint ? (rows, columns) : (columns, rows)
        for c in 0..<channels {
            var result = [Float](repeating: 0, count: outSide * outSide)
            for a in 0..<inSide {
                for b in 0..<inSide {
                    let value = s.at(a, b)[c]
                    for i in 0..<outSide {
                        for j in 0..<outSide {
                            // forward: out[i][j] += P[i][a]·x[a][b]·P[j][b]; adjoint: P[a][i]·x[a][b]·P[b][j]
                            let weight = adjoint ? p[a * columns + i] * p[b * columns + j] : p[i * columns + a] * p[j * columns + b]
                            result[i * outSide + j] += weight * value
                        }
                    }
                }
            }
            for i in 0..<outSide {
                for j in 0..<outSide {
                    d.at(i, j)[c] = (accumulates ? d.at(i, j)[c] : 0) + result[i * outSide + j]
                }
            }
        }
    }
}

/// A small 2-D grid of channel vectors inside a larger buffer (a tile of an image, of V or M, a
/// filter): element (i, j) starts at base + i·row + j·column floats. Passed by value, so the
/// kernels keep it in registers (a table of pointers in memory had to be re-read after every store).
private struct TileView {
    var base: UnsafeMutablePointer<Float>
    var row: Int, column: Int

    init(_ base: UnsafeMutablePointer<Float>, row: Int, column: Int) {
        self.base = base
        self.row = row
        self.column = column
    }

    @inline(__always) func at(_ i: Int, _ j: Int) -> UnsafeMutablePointer<Float> { base + (i &* row &+ j &* column) }
}

// MARK: Written-out transforms for Lavin & Gray's matrices
//
// Each works on one channel offset `c` of a tile, with lanes of 4 channels (or 1 for the last few):
// first down the columns, then along the rows, each a 1-D transform of 4 (or 3, or 2) values.
//
//   Bᵀ = ⎡1  0 −1  0⎤     G = ⎡ 1    0    0 ⎤     Aᵀ = ⎡1 1  1  0⎤
//        ⎢0  1  1  0⎥         ⎢1/2  1/2  1/2⎥          ⎣0 1 −1 −1⎦
//        ⎢0 −1  1  0⎥         ⎢1/2 −1/2  1/2⎥
//        ⎣0  1  0 −1⎦         ⎣ 0    0    1 ⎦

private protocol WinogradLane {
    init(_ pointer: UnsafeMutablePointer<Float>)
    func store(_ pointer: UnsafeMutablePointer<Float>)
    static func + (lhs: Self, rhs: Self) -> Self
    static func - (lhs: Self, rhs: Self) -> Self
    static func * (lhs: Self, rhs: Float) -> Self
    static prefix func - (operand: Self) -> Self
}

extension Float: WinogradLane {
    @inline(__always) fileprivate init(_ pointer: UnsafeMutablePointer<Float>) { self = pointer.pointee }
    @inline(__always) fileprivate func store(_ pointer: UnsafeMutablePointer<Float>) { pointer.pointee = self }
}

extension SIMD4: WinogradLane where Scalar == Float {
    @inline(__always) fileprivate init(_ pointer: UnsafeMutablePointer<Float>) { self = UnsafeRawPointer(pointer).loadUnaligned(as: SIMD4<Float>.self) }
    @inline(__always) fileprivate func store(_ pointer: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(pointer).storeBytes(of: self, as: SIMD4<Float>.self) }
}

/// Calls `body` for channels 0, 4, 8… with 4 lanes, then `scalar` for the remainder.
@inline(__always)
private func forEachLane(_ channels: Int, _ body: (SIMD4<Float>.Type, Int) -> Void, scalar: (Int) -> Void) {
    var c = 0
    while c + 4 <= channels { body(SIMD4<Float>.self, c); c += 4 }
    while c < channels { scalar(c); c += 1 }
}

/// x ↦ Bᵀx and x ↦ Bx on 4 values.
@inline(__always) private func timesBT<L: WinogradLane>(_ a: L, _ b: L, _ c: L, _ d: L) -> (L, L, L, L) { (a - c, b + c, c - b, b - d) }
@inline(__always) private func timesB<L: WinogradLane>(_ a: L, _ b: L, _ c: L, _ d: L) -> (L, L, L, L) { (a, b - c + d, b + c - a, -d) }
/// x ↦ Gx (3 → 4) and x ↦ Gᵀx (4 → 3).
@inline(__always) private func timesG<L: WinogradLane>(_ a: L, _ b: L, _ c: L) -> (L, L, L, L) { (a, (a + b + c) * 0.5, (a - b + c) * 0.5, c) }
@inline(__always) private func timesGT<L: WinogradLane>(_ a: L, _ b: L, _ c: L, _ d: L) -> (L, L, L) { (a + (b + c) * 0.5, (b - c) * 0.5, (b + c) * 0.5 + d) }
/// x ↦ Aᵀx (4 → 2) and x ↦ Ax (2 → 4).
@inline(__always) private func timesAT<L: WinogradLane>(_ a: L, _ b: L, _ c: L, _ d: L) -> (L, L) { (a + b + c, b - c - d) }
@inline(__always) private func timesA<L: WinogradLane>(_ a: L, _ b: L) -> (L, L, L, L) { (a, a + b, a - b, -b) }

/// 9 filter taps g → 16 values U = G g Gᵀ.
@inline(__always)
private func filterTile<L: WinogradLane>(_: L.Type, _ s: TileView, _ d: TileView, _ c: Int) {
    func at(_ i: Int, _ j: Int) -> L { L(s.at(i, j) + c) }
    // Columns of G g (each: 3 taps → 4).
    let c0 = timesG(at(0, 0), at(1, 0), at(2, 0)), c1 = timesG(at(0, 1), at(1, 1), at(2, 1)), c2 = timesG(at(0, 2), at(1, 2), at(2, 2))
    func store(_ i: Int, _ v: (L, L, L, L)) {
        v.0.store(d.at(i, 0) + c); v.1.store(d.at(i, 1) + c); v.2.store(d.at(i, 2) + c); v.3.store(d.at(i, 3) + c)
    }
    store(0, timesG(c0.0, c1.0, c2.0))
    store(1, timesG(c0.1, c1.1, c2.1))
    store(2, timesG(c0.2, c1.2, c2.2))
    store(3, timesG(c0.3, c1.3, c2.3))
}

/// 16 values dU → 9 taps: dg += Gᵀ dU G.
@inline(__always)
private func filterAdjointTile<L: WinogradLane>(_: L.Type, _ s: TileView, _ d: TileView, _ c: Int) {
    func at(_ i: Int, _ j: Int) -> L { L(s.at(i, j) + c) }
    // Columns of Gᵀ dU (each: 4 → 3).
    let c0 = timesGT(at(0, 0), at(1, 0), at(2, 0), at(3, 0)), c1 = timesGT(at(0, 1), at(1, 1), at(2, 1), at(3, 1))
    let c2 = timesGT(at(0, 2), at(1, 2), at(2, 2), at(3, 2)), c3 = timesGT(at(0, 3), at(1, 3), at(2, 3), at(3, 3))
    func add(_ i: Int, _ v: (L, L, L)) {
        (L(d.at(i, 0) + c) + v.0).store(d.at(i, 0) + c)
        (L(d.at(i, 1) + c) + v.1).store(d.at(i, 1) + c)
        (L(d.at(i, 2) + c) + v.2).store(d.at(i, 2) + c)
    }
    add(0, timesGT(c0.0, c1.0, c2.0, c3.0))
    add(1, timesGT(c0.1, c1.1, c2.1, c3.1))
    add(2, timesGT(c0.2, c1.2, c2.2, c3.2))
}

/// 16 input pixels d → 16 values V = Bᵀ d B.
@inline(__always)
private func inputTile<L: WinogradLane>(_: L.Type, _ s: TileView, _ d: TileView, _ c: Int) {
    func at(_ i: Int, _ j: Int) -> L { L(s.at(i, j) + c) }
    // Columns of Bᵀ d.
    let c0 = timesBT(at(0, 0), at(1, 0), at(2, 0), at(3, 0)), c1 = timesBT(at(0, 1), at(1, 1), at(2, 1), at(3, 1))
    let c2 = timesBT(at(0, 2), at(1, 2), at(2, 2), at(3, 2)), c3 = timesBT(at(0, 3), at(1, 3), at(2, 3), at(3, 3))
    func store(_ i: Int, _ v: (L, L, L, L)) {
        v.0.store(d.at(i, 0) + c); v.1.store(d.at(i, 1) + c); v.2.store(d.at(i, 2) + c); v.3.store(d.at(i, 3) + c)
    }
    store(0, timesBT(c0.0, c1.0, c2.0, c3.0))
    store(1, timesBT(c0.1, c1.1, c2.1, c3.1))
    store(2, timesBT(c0.2, c1.2, c2.2, c3.2))
    store(3, timesBT(c0.3, c1.3, c2.3, c3.3))
}

/// 16 values dV → 16 input pixels: dd += B dV Bᵀ.
@inline(__always)
private func inputAdjointTile<L: WinogradLane>(_: L.Type, _ s: TileView, _ d: TileView, _ c: Int) {
    func at(_ i: Int, _ j: Int) -> L { L(s.at(i, j) + c) }
    // Columns of B dV.
    let c0 = timesB(at(0, 0), at(1, 0), at(2, 0), at(3, 0)), c1 = timesB(at(0, 1), at(1, 1), at(2, 1), at(3, 1))
    let c2 = timesB(at(0, 2), at(1, 2), at(2, 2), at(3, 2)), c3 = timesB(at(0, 3), at(1, 3), at(2, 3), at(3, 3))
    func add(_ i: Int, _ v: (L, L, L, L)) {
        (L(d.at(i, 0) + c) + v.0).store(d.at(i, 0) + c)
        (L(d.at(i, 1) + c) + v.1).store(d.at(i, 1) + c)
        (L(d.at(i, 2) + c) + v.2).store(d.at(i, 2) + c)
        (L(d.at(i, 3) + c) + v.3).store(d.at(i, 3) + c)
    }
    add(0, timesB(c0.0, c1.0, c2.0, c3.0))
    add(1, timesB(c0.1, c1.1, c2.1, c3.1))
    add(2, timesB(c0.2, c1.2, c2.2, c3.2))
    add(3, timesB(c0.3, c1.3, c2.3, c3.3))
}

/// 16 products M → 2×2 output pixels y = Aᵀ M A.
@inline(__always)
private func outputTile<L: WinogradLane>(_: L.Type, _ s: TileView, _ d: TileView, _ c: Int) {
    func at(_ i: Int, _ j: Int) -> L { L(s.at(i, j) + c) }
    // Columns of Aᵀ M (each: 4 → 2).
    let c0 = timesAT(at(0, 0), at(1, 0), at(2, 0), at(3, 0)), c1 = timesAT(at(0, 1), at(1, 1), at(2, 1), at(3, 1))
    let c2 = timesAT(at(0, 2), at(1, 2), at(2, 2), at(3, 2)), c3 = timesAT(at(0, 3), at(1, 3), at(2, 3), at(3, 3))
    let row0 = timesAT(c0.0, c1.0, c2.0, c3.0), row1 = timesAT(c0.1, c1.1, c2.1, c3.1)
    row0.0.store(d.at(0, 0) + c); row0.1.store(d.at(0, 1) + c)
    row1.0.store(d.at(1, 0) + c); row1.1.store(d.at(1, 1) + c)
}

/// 2×2 output gradients dy → 16 values dM = A dy Aᵀ.
@inline(__always)
private func outputAdjointTile<L: WinogradLane>(_: L.Type, _ s: TileView, _ d: TileView, _ c: Int) {
    func at(_ i: Int, _ j: Int) -> L { L(s.at(i, j) + c) }
    // Columns of A dy (each: 2 → 4).
    let c0 = timesA(at(0, 0), at(1, 0)), c1 = timesA(at(0, 1), at(1, 1))
    func store(_ i: Int, _ v: (L, L, L, L)) {
        v.0.store(d.at(i, 0) + c); v.1.store(d.at(i, 1) + c); v.2.store(d.at(i, 2) + c); v.3.store(d.at(i, 3) + c)
    }
    store(0, timesA(c0.0, c1.0))
    store(1, timesA(c0.1, c1.1))
    store(2, timesA(c0.2, c1.2))
    store(3, timesA(c0.3, c1.3))
}
