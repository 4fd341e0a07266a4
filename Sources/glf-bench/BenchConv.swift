// glf-bench conv: the two convolution algorithms side by side on the encoder's 3×3 stride-1
// shapes, one core, one BLAS thread. This is the measurement behind Conv2D's choice of algorithm
// (Conv2D.winogradMinimumChannels).
import ArgumentParser
import Foundation
import Neural

struct BenchConv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "Time im2col and Winograd convolutions, forward and backward, on the encoder's 3×3 stride-1 shapes.",
        discussion: "Best of --repeats rounds; each round times the four calls in turn, so a busy machine slows both alike.")

    @Option(help: "Encoder width: the shapes are the stem (3→w) and w→w, 2w→2w, 4w→4w, 8w→8w.")
    var width = 32

    @Option(help: "Image side of the first stage; each stage halves it.")
    var size = 32

    @Option(help: "Images per call.")
    var batch = 128

    @Option(help: "Timed rounds (after one warm-up round).")
    var repeats = 10

    func run() throws {
        BLAS.setThreads(1)
        warnAboutOpenBLASCore()
        print("glf-bench conv: batch \(batch), 1 BLAS thread (\(BLAS.coreName)), best of \(repeats), ms")
        print("  shape                 im2col fwd    bwd   winograd fwd    bwd   speed-up fwd   bwd  total")
        var shapes = [(name: "stem 3→\(width) @\(size)", side: size, inChannels: 3, outChannels: width, inputGradient: false)]
        for stage in 0..<4 {
            let c = width << stage, side = max(1, size >> stage)
            shapes.append(("\(c)→\(c) @\(side)", side, c, c, true))
        }
        for shape in shapes {
            var rng = SeededGenerator(seed: 1)
            let arena = ParameterArena()
            let conv = Conv2D("conv", in: arena, inChannels: shape.inChannels, outChannels: shape.outChannels,
                              kernel: 3, stride: 1, padding: 1, rng: &rng)
            arena.seal()
            conv.computesInputGradient = shape.inputGradient
            let x = Tensor(zeros: [batch, shape.side, shape.side, shape.inChannels])
            let dy = Tensor(zeros: [batch, shape.side, shape.side, shape.outChannels])
            x.fillNormal(std: 1, using: &rng)
            dy.fillNormal(std: 1, using: &rng)
            var best = [Double](repeating: .infinity, count: 4)
            for round in 0...repeats {
                var times: [Double] = []
                for algorithm in [Conv2D.Algorithm.im2col, .winograd] {
                    conv.algorithm = algorithm
                    times.append(timed { _ = conv.forward(x, mode: .training) })
                    times.append(timed { _ = conv.backward(dy) })
                }
                if round > 0 { best = zip(best, times).map { min($0, $1 * 1e3) } }
            }
            func f(_ v: Double, _ width: Int) -> String { padded(format(v, 1), width, right: true) }
            func r(_ v: Double) -> String { padded(format(v, 2) + "×", 7, right: true) }
            print("  \(padded(shape.name, 20)) \(f(best[0], 11)) \(f(best[1], 6)) \(f(best[2], 14)) \(f(best[3], 6))"
                  + "  \(r(best[0] / best[2])) \(r(best[1] / best[3])) \(r((best[0] + best[1]) / (best[2] + best[3])))")
        }
    }
}
