// --profile: where a step's time goes, for the engine's authors. Three views, coarse to fine:
//
//   phases    the step's parts (encoder forward, projector, loss, backward, update), timed inside
//             the timed steps themselves
//   blocks    the encoder's top-level layers (stem, residual blocks, pool), forward and backward,
//             also inside the timed steps: the bench walks encoder.network.layers itself, which is
//             what the encoder's Sequential does
//   layers    every leaf layer (convolution, batch norm, linear, ...) run alone on its own input
//             after the timed steps, best of 3, next to the sgemm calls of the same shapes timed
//             alone: the difference is what the layer spends outside BLAS (im2col, col2im, copies)
//
// Layers run alone skip the residual additions; what no leaf accounts for is printed as the rest.
import Foundation
import Neural

/// Accumulates seconds per phase and per encoder top-level layer over the timed steps.
final class StepProfiler {
    let isRecording: Bool
    private(set) var steps = 0
    private(set) var phaseNames: [String] = []
    private var phaseSeconds: [String: Double] = [:]
    private(set) var encoderLayers: [Layer] = []
    private(set) var layerForwardSeconds: [Double] = []
    private(set) var layerBackwardSeconds: [Double] = []
    /// Images (rows of the encoder's input) in the profiled steps.
    private(set) var encoderImages = 0

    init(recording: Bool = true) { isRecording = recording }

    @discardableResult
    func phase<T>(_ name: String, _ body: () -> T) -> T {
        guard isRecording else { return body() }
        let start = ContinuousClock.now
        let result = body()
        if phaseSeconds[name] == nil { phaseNames.append(name) }
        phaseSeconds[name, default: 0] += seconds(since: start)
        return result
    }

    func meanPhaseSeconds(_ name: String) -> Double { (phaseSeconds[name] ?? 0) / Double(max(steps, 1)) }

    /// encoder.forward, one top-level layer at a time when recording (the encoder is that Sequential).
    func forward(_ encoder: ResNetEncoder, _ images: Tensor, mode: ForwardMode) -> Tensor {
        guard isRecording else { return encoder.forward(images, mode: mode) }
        prepare(encoder)
        encoderImages = images.shape[0]
        var x = images
        for (i, layer) in encoder.network.layers.enumerated() {
            let start = ContinuousClock.now
            x = layer.forward(x, mode: mode)
            layerForwardSeconds[i] += seconds(since: start)
        }
        return x
    }

    /// encoder.backward, one top-level layer at a time when recording.
    func backward(_ encoder: ResNetEncoder, _ outputGradient: Tensor) -> Tensor {
        guard isRecording else { return encoder.backward(outputGradient) }
        prepare(encoder)
        var dy = outputGradient
        for (i, layer) in encoder.network.layers.enumerated().reversed() {
            let start = ContinuousClock.now
            dy = layer.backward(dy)
            layerBackwardSeconds[i] += seconds(since: start)
        }
        return dy
    }

    func endStep() { if isRecording { steps += 1 } }

    private func prepare(_ encoder: ResNetEncoder) {
        guard encoderLayers.isEmpty else { return }
        encoderLayers = encoder.network.layers
        layerForwardSeconds = Array(repeating: 0, count: encoderLayers.count)
        layerBackwardSeconds = Array(repeating: 0, count: encoderLayers.count)
    }
}

// MARK: - The report

struct BenchProfileReport: Encodable {
    struct Phase: Encodable { var name: String; var milliseconds: Double }
    struct Block: Encodable {
        var name: String
        var multiplyAddsPerImage: Int
        var forwardMilliseconds: Double
        var backwardMilliseconds: Double?
        var forwardGflopPerSecond: Double
        var backwardGflopPerSecond: Double?
    }
    struct Leaf: Encodable {
        var name: String
        var kind: String
        var shape: String
        var forwardMilliseconds: Double
        var backwardMilliseconds: Double?
        var forwardGflop: Double
        var backwardGflop: Double
        /// The layer's sgemm calls with the same shapes, timed alone (convolutions and linear layers).
        var sgemmForwardMilliseconds: Double?
        var sgemmBackwardMilliseconds: Double?
    }
    struct Kind: Encodable {
        var kind: String
        var layers: Int
        var forwardMilliseconds: Double
        var backwardMilliseconds: Double
        var sgemmMilliseconds: Double
        var gflop: Double
    }

    /// Mean per step over the profiled steps.
    var phases: [Phase]
    var blocks: [Block]
    /// Each leaf alone, best of `repeats`.
    var layers: [Leaf]
    var kinds: [Kind]
    var repeats: Int

    /// Summarises the steps a profiler recorded, then runs each leaf of `network` (applied in order
    /// to `input`) alone.
    /// `phases` recorded the timed steps' phases, `blocks` the encoder's top-level layers.
    init(phases: StepProfiler?, blocks profiler: StepProfiler?, network: [Layer], input: Tensor, mode: ForwardMode,
         backward: Bool, repeats: Int = 3) {
        self.repeats = repeats
        self.phases = (phases?.phaseNames ?? []).map { Phase(name: $0, milliseconds: phases!.meanPhaseSeconds($0) * 1e3) }
        blocks = []
        if let profiler, profiler.steps > 0, let encoder = network.first as? ResNetEncoder {
            let perStep = 1e3 / Double(profiler.steps)
            var (height, width) = (encoder.config.imageSize, encoder.config.imageSize)
            for (i, layer) in profiler.encoderLayers.enumerated() {
                let count = multiplyAdds(layer, height: height, width: width)
                (height, width) = (count.height, count.width)
                let forwardFlop = 2 * Double(count.multiplyAdds * profiler.encoderImages)
                let skipsInputGradient = (layer as? Conv2D)?.computesInputGradient == false
                let backwardFlop = forwardFlop * (skipsInputGradient ? 1 : 2)
                let (f, b) = (profiler.layerForwardSeconds[i], profiler.layerBackwardSeconds[i])
                let hasBackward = mode.isTraining && b > 0
                blocks.append(Block(
                    name: layerName(layer), multiplyAddsPerImage: count.multiplyAdds,
                    forwardMilliseconds: f * perStep, backwardMilliseconds: hasBackward ? b * perStep : nil,
                    forwardGflopPerSecond: forwardFlop * Double(profiler.steps) / f / 1e9,
                    backwardGflopPerSecond: hasBackward ? backwardFlop * Double(profiler.steps) / b / 1e9 : nil))
            }
        }
        layers = LeafProfiler(mode: mode, repeats: repeats).run(network, input: input, backward: backward)
        var kindOrder: [String] = [], byKind: [String: Kind] = [:]
        for leaf in layers {
            if byKind[leaf.kind] == nil {
                kindOrder.append(leaf.kind)
                byKind[leaf.kind] = Kind(kind: leaf.kind, layers: 0, forwardMilliseconds: 0, backwardMilliseconds: 0,
                                         sgemmMilliseconds: 0, gflop: 0)
            }
            byKind[leaf.kind]!.layers += 1
            byKind[leaf.kind]!.forwardMilliseconds += leaf.forwardMilliseconds
            byKind[leaf.kind]!.backwardMilliseconds += leaf.backwardMilliseconds ?? 0
            byKind[leaf.kind]!.sgemmMilliseconds += (leaf.sgemmForwardMilliseconds ?? 0) + (leaf.sgemmBackwardMilliseconds ?? 0)
            byKind[leaf.kind]!.gflop += leaf.forwardGflop + (backward ? leaf.backwardGflop : 0)
        }
        kinds = kindOrder.map { byKind[$0]! }
    }

    func printText(stepMilliseconds: Double) {
        print("\nwhere the time goes")
        if !phases.isEmpty {
            print("  phases of the timed steps (mean ms per step; share of the mean step)")
            for p in phases {
                print("    \(padded(p.name, 44)) \(padded(format(p.milliseconds, 1), 9, right: true)) \(padded(format(100 * p.milliseconds / stepMilliseconds, 1), 6, right: true)) %")
            }
        }
        if !blocks.isEmpty {
            print("  encoder top-level layers (train-step: one view on one worker): ms per pass (GFLOP/s)")
            print("    \(padded("layer", 30)) \(padded("MMAC/img", 9, right: true)) \(padded("forward", 20, right: true)) \(padded("backward", 20, right: true))")
            for b in blocks {
                func cell(_ ms: Double?, _ rate: Double?) -> String {
                    guard let ms else { return "-" }
                    return format(ms, 1) + (b.multiplyAddsPerImage > 0 ? " (\(format(rate ?? 0, 1)))" : "")
                }
                print("    \(padded(b.name, 30)) \(padded(format(Double(b.multiplyAddsPerImage) / 1e6, 2), 9, right: true)) \(padded(cell(b.forwardMilliseconds, b.forwardGflopPerSecond), 20, right: true)) \(padded(cell(b.backwardMilliseconds, b.backwardGflopPerSecond), 20, right: true))")
            }
        }
        print("  each layer alone on its own input, best of \(repeats): ms (GFLOP/s) [its sgemm calls alone, ms]")
        print("    \(padded("layer", 38)) \(padded("shape", 26)) \(padded("forward", 26, right: true)) \(padded("backward", 26, right: true))")
        for l in layers {
            func cell(_ ms: Double?, _ gflop: Double, _ sgemm: Double?) -> String {
                guard let ms else { return "-" }
                let rate = gflop > 0 ? " (\(format(gflop / ms * 1e3, 1)))" : ""
                return format(ms, 2) + rate + (sgemm.map { " [\(format($0, 2))]" } ?? "")
            }
            print("    \(padded(l.name, 38)) \(padded(l.shape, 26)) \(padded(cell(l.forwardMilliseconds, l.forwardGflop, l.sgemmForwardMilliseconds), 26, right: true)) \(padded(cell(l.backwardMilliseconds, l.backwardGflop, l.sgemmBackwardMilliseconds), 26, right: true))")
        }
        print("  per kind of layer (alone): ms forward + backward, of which in sgemm")
        var total = 0.0
        for k in kinds {
            let ms = k.forwardMilliseconds + k.backwardMilliseconds
            total += ms
            let rate = k.gflop > 0 ? ", \(format(k.gflop / ms * 1e3, 1)) GFLOP/s" : ""
            print("    \(padded("\(k.kind) ×\(k.layers)", 38)) \(padded(format(k.forwardMilliseconds, 1), 8, right: true)) + \(padded(format(k.backwardMilliseconds, 1), 8, right: true)) = \(padded(format(ms, 1), 8, right: true)) ms  (sgemm \(format(k.sgemmMilliseconds, 1)) ms\(rate))")
        }
        print("    \(padded("all layers alone", 38)) \(padded(format(total, 1), 30, right: true)) ms of a \(format(stepMilliseconds, 1)) ms step; the rest (\(format(stepMilliseconds - total, 1)) ms) is residual add + ReLU, loss, update, zeroing and noise")
    }
}

// MARK: - Leaves alone

/// Runs every leaf layer of a network alone: forward in network order (each on the output of the
/// previous leaf, residual additions skipped), then backward in reverse on random gradients.
final class LeafProfiler {
    let mode: ForwardMode
    let repeats: Int
    private var leaves: [(layer: Layer, input: [Int], output: [Int], forward: Double)] = []
    private let scratch = (a: Tensor(zeros: [0]), b: Tensor(zeros: [0]), c: Tensor(zeros: [0]))

    init(mode: ForwardMode, repeats: Int) {
        self.mode = mode
        self.repeats = repeats
    }

    func run(_ network: [Layer], input: Tensor, backward: Bool) -> [BenchProfileReport.Leaf] {
        leaves = []
        _ = network.reduce(input) { x, layer in walk(layer, x) }
        var backwardSeconds = [Double?](repeating: nil, count: leaves.count)
        if backward {
            var rng = SeededGenerator(seed: 3)
            for (i, leaf) in leaves.enumerated().reversed() {
                let dy = Tensor(zeros: leaf.output)
                dy.fillNormal(std: 1, using: &rng)
                backwardSeconds[i] = best { _ = leaf.layer.backward(dy) }
            }
        }
        return leaves.enumerated().map { i, leaf in
            var row = BenchProfileReport.Leaf(
                name: layerName(leaf.layer), kind: layerKind(leaf.layer), shape: shapeText(leaf.layer, leaf.input, leaf.output),
                forwardMilliseconds: leaf.forward * 1e3, backwardMilliseconds: backwardSeconds[i].map { $0 * 1e3 },
                forwardGflop: 0, backwardGflop: 0)
            if let product = gemmShape(leaf.layer, input: leaf.input, output: leaf.output) {
                let flop = 2 * Double(product.rows * product.outputs * product.inner) / 1e9
                row.forwardGflop = flop
                row.backwardGflop = flop * (product.inputGradient ? 2 : 1)
                row.sgemmForwardMilliseconds = timeForwardGemm(product) * 1e3
                if backward { row.sgemmBackwardMilliseconds = timeBackwardGemms(product) * 1e3 }
            }
            return row
        }
    }

    private func walk(_ layer: Layer, _ x: Tensor) -> Tensor {
        switch layer {
        case let encoder as ResNetEncoder: return walk(encoder.network, x)
        case let head as MLPHead: return walk(head.network, x)
        case let sequence as Sequential: return sequence.layers.reduce(x) { y, next in walk(next, y) }
        case let block as ResidualBlock:
            let y = walk(block.main, x)
            if let shortcut = block.shortcut { _ = walk(shortcut, x) }
            return y
        default:
            var y = x
            let seconds = best { y = layer.forward(x, mode: mode) }
            leaves.append((layer, x.shape, y.shape, seconds))
            return y
        }
    }

    private func best(_ body: () -> Void) -> Double { (0..<repeats).map { _ in timed(body) }.min()! }

    // y[rows, outputs] = x[rows, inner] · wᵀ: the product of a convolution (after im2col) or a linear layer.
    private struct GemmShape { var rows: Int; var outputs: Int; var inner: Int; var inputGradient: Bool }

    private func gemmShape(_ layer: Layer, input: [Int], output: [Int]) -> GemmShape? {
        let rows = output.dropLast().reduce(1, *)
        if let conv = layer as? Conv2D {
            return GemmShape(rows: rows, outputs: conv.outChannels, inner: conv.kernel * conv.kernel * conv.inChannels,
                             inputGradient: conv.computesInputGradient)
        }
        if let linear = layer as? Linear {
            return GemmShape(rows: rows, outputs: linear.outFeatures, inner: linear.inFeatures, inputGradient: true)
        }
        return nil
    }

    private func prepareScratch(_ s: GemmShape) {
        let largest = max(s.rows * s.inner, s.rows * s.outputs, s.outputs * s.inner)
        for t in [scratch.a, scratch.b, scratch.c] { t.reshape(to: [largest]) }
    }

    /// The forward product alone: y = cols · wᵀ.
    private func timeForwardGemm(_ s: GemmShape) -> Double {
        prepareScratch(s)
        let (a, b, c) = (scratch.a.data, scratch.b.data, scratch.c.data)
        return best {
            BLAS.gemm(transposeB: true, m: s.rows, n: s.outputs, k: s.inner,
                      a: a, lda: s.inner, b: b, ldb: s.inner, c: c, ldc: s.outputs)
        }
    }

    /// The backward products alone: dW += dyᵀ · cols and (unless skipped) dcols = dy · W.
    private func timeBackwardGemms(_ s: GemmShape) -> Double {
        prepareScratch(s)
        let (a, b, c) = (scratch.a.data, scratch.b.data, scratch.c.data)
        return best {
            BLAS.gemm(transposeA: true, m: s.outputs, n: s.inner, k: s.rows,
                      a: a, lda: s.outputs, b: b, ldb: s.inner, beta: 1, c: c, ldc: s.inner)
            if s.inputGradient {
                BLAS.gemm(m: s.rows, n: s.inner, k: s.outputs, a: a, lda: s.outputs, b: b, ldb: s.inner, c: c, ldc: s.inner)
            }
        }
    }
}

// MARK: - Naming and counting layers

/// A layer's name from its parameters (`encoder.stage2.block1.conv1`), or its kind.
func layerName(_ layer: Layer) -> String {
    func strip(_ name: String, _ suffix: String) -> String { name.hasSuffix(suffix) ? String(name.dropLast(suffix.count)) : name }
    switch layer {
    case let conv as Conv2D: return strip(conv.weight.name, ".weight")
    case let norm as BatchNorm: return strip(norm.runningMean.name, ".running_mean")
    case let linear as Linear: return strip(linear.weight.name, ".weight")
    case let block as ResidualBlock:
        if let first = block.main.layers.first as? Conv2D { return strip(first.weight.name, ".conv1.weight") }
        return "residual block"
    default: return layerKind(layer)
    }
}

func layerKind(_ layer: Layer) -> String {
    switch layer {
    case let conv as Conv2D: return "conv \(conv.kernel)×\(conv.kernel)"
    case let norm as BatchNorm: return norm.fusedReLU ? "batch norm + ReLU" : "batch norm"
    case is Linear: return "linear"
    case is GlobalAveragePool: return "global average pool"
    case is L2Normalize: return "L2 normalise"
    case is ReLU: return "ReLU"
    case is ResidualBlock: return "residual block"
    default: return String(describing: type(of: layer))
    }
}

private func shapeText(_ layer: Layer, _ input: [Int], _ output: [Int]) -> String {
    if let conv = layer as? Conv2D, output.count == 4 {
        return "\(conv.inChannels)→\(conv.outChannels) /\(conv.stride) at \(output[0])×\(output[1])×\(output[2])"
    }
    if let linear = layer as? Linear { return "\(linear.inFeatures)→\(linear.outFeatures) at \(output[0])" }
    return input.map(String.init).joined(separator: "×")
}

/// Multiply–adds per image of the convolutions and linear layers in `layer`, for an input of
/// height × width, and the output's height and width.
func multiplyAdds(_ layer: Layer, height: Int, width: Int) -> (multiplyAdds: Int, height: Int, width: Int) {
    switch layer {
    case let conv as Conv2D:
        let out = conv.outputSize(height: height, width: width)
        return (out.height * out.width * conv.kernel * conv.kernel * conv.inChannels * conv.outChannels, out.height, out.width)
    case let linear as Linear: return (linear.inFeatures * linear.outFeatures, height, width)
    case let sequence as Sequential:
        return sequence.layers.reduce((0, height, width)) { total, next in
            let part = multiplyAdds(next, height: total.1, width: total.2)
            return (total.0 + part.multiplyAdds, part.height, part.width)
        }
    case let block as ResidualBlock:
        let main = multiplyAdds(block.main, height: height, width: width)
        let shortcut = block.shortcut.map { multiplyAdds($0, height: height, width: width).multiplyAdds } ?? 0
        return (main.multiplyAdds + shortcut, main.height, main.width)
    case let encoder as ResNetEncoder: return multiplyAdds(encoder.network, height: height, width: width)
    case let head as MLPHead: return multiplyAdds(head.network, height: height, width: width)
    default: return (0, height, width)
    }
}
