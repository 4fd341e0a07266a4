// glf-bench train-step: one self-supervised training step of the default model, timed.
//
// Model: ResNetEncoder(EncoderConfig(width, imageSize)) and a projector
// MLPHead(features → 512 → 128, final batch norm), every parameter in one arena.
// One step, for a batch of B images (tools/bench/train_step.py is the same step in PyTorch):
//   views     [2B, S, S, 3]: view 1 of every image, then view 2 (N(0,1) data made once:
//             augmentation is not what this measures)
//   forward   encoder → projector → L2Normalize, ForwardMode.training(views: 2), so batch norm
//             keeps statistics per view, as if each view had gone through the network alone
//   loss      L = −(1/B) Σ_b cos(z1_b, z2_b); both views get gradients
//   backward  L2Normalize → projector → encoder (the stem skips dL/dimage)
//   update    SGD, momentum 0.9, weight decay 5e-4 (weights only: biases and batch-norm
//             parameters are not decayed, as in solo-learn; torch's peer decays all, which costs
//             the same)
// The encoder and projector run as a ReplicatedModel: one replica per view, one view per worker
// (--threads workers), OpenBLAS single-threaded inside each.
//
// FLOPs are counted, not measured: 2 FLOP per multiply–add (MAC) of the convolutions and linear
// layers; batch norm, ReLU, pooling, im2col, the loss and the update are not counted. A layer's
// backward is two products the size of its forward (dL/dW and dL/dx), so nominally an image costs
// 2 views × 3 × 2 × (encoder + projector forward MACs); the stem's dL/dx is never computed (the image
// needs no gradient; PyTorch skips it too), so the count used is 2 views × 2 × (3·MACs − stem MACs).
import ArgumentParser
import Foundation
import Neural

struct BenchTrainStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-step",
        abstract: "Time a two-view training step of the default encoder + projector.",
        discussion: """
            One step: B images as two views ([2B, S, S, 3], random data made once), encoder → projector \
            (→512→128, final BN) → L2 normalisation, loss −mean cos(z1, z2), backward through all of it, \
            SGD with momentum 0.9 and weight decay 5e-4.

            images/s counts an image once although both of its views go forward and backward. \
            FLOPs: 2 per multiply–add of convolutions and linear layers only; per image \
            2 views × 2 × (3 × forward MACs − stem MACs): forward plus two backward products \
            (dL/dW, dL/dx) per layer, less the stem's dL/dx, which is never computed. \
            The nominal 2 × 3 × 2 × forward MACs is slightly higher.

            Share of peak: GFLOP/s over the best OpenBLAS sgemm GFLOP/s measured in the same run \
            with the same thread count.
            """)

    @OptionGroup var options: BenchModelOptions

    @Option(help: "Images per step (each goes through the network as two views).")
    var batch = 128

    func validate() throws { try options.validate(batch: batch) }

    func run() throws {
        let peak = options.measurePeakThenUseReplicas()
        let model = TrainStepModel(width: options.width, size: options.size, batch: batch, workers: options.threads)
        let phases = options.profile ? StepProfiler() : nil
        for _ in 0..<options.warmup { model.step(profiler: nil) }
        var stepSeconds: [Double] = []
        var loss: Float = 0
        for _ in 0..<options.steps {
            let start = ContinuousClock.now
            loss = model.step(profiler: phases)
            stepSeconds.append(seconds(since: start))
        }
        var report = BenchReport(
            benchmark: "train-step", options: options, batch: batch, stepSeconds: stepSeconds,
            gflopPerImage: model.flopPerImage / 1e9, peak: peak,
            imageCounting: "an image counts once; both of its views go forward and backward",
            flopCounting: "2 views × 2 FLOP/MAC × (3 × forward MACs − stem MACs), convolutions and linear layers only, "
                + "as direct convolutions (Winograd's 3×3 stride-1 ones do 2.25× fewer)")
        report.loss = Double(loss)
        if let phases {
            let blocks = StepProfiler()
            for _ in 0..<3 { model.profileOneView(blocks) }
            report.profile = BenchProfileReport(
                phases: phases, blocks: blocks, network: [model.encoder, model.projector, model.normalize],
                input: model.firstView, mode: .training, backward: true)
        }
        report.print(json: options.json)
    }
}

/// The benchmarked model and its step.
final class TrainStepModel {
    let batch: Int
    let model: ReplicatedModel
    /// Replica 0's parts, for FLOP counts and the profile.
    let encoder: ResNetEncoder
    let projector: MLPHead
    let normalize = L2Normalize()
    let optimiser = SGD(learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4)
    /// [2B, S, S, C]: rows 0..<B are view 1, rows B..<2B view 2.
    let views: Tensor
    private let projectionGradient = Tensor(zeros: [0])
    private let unprofiled = StepProfiler(recording: false)

    init(width: Int, size: Int, batch: Int, workers: Int, seed: UInt64 = 1) {
        self.batch = batch
        model = ReplicatedModel(replicas: 2, workers: workers) { arena in
            var rng = SeededGenerator(seed: seed)
            let encoder = ResNetEncoder(EncoderConfig(imageSize: size, width: width), in: arena, rng: &rng)
            let projector = MLPHead(
                HeadConfig(inputDimension: encoder.config.featureDimension, hiddenDimension: 512, outputDimension: 128,
                           finalBatchNorm: true),
                name: "projector", in: arena, rng: &rng)
            return Sequential([encoder, projector])
        }
        let parts = (model.replicas[0] as! Sequential).layers
        encoder = parts[0] as! ResNetEncoder
        projector = parts[1] as! MLPHead
        var rng = SeededGenerator(seed: seed + 1)
        views = Tensor(zeros: [2 * batch, size, size, encoder.config.inputChannels])
        views.fillNormal(std: 1, using: &rng)
    }

    /// View 1 alone.
    var firstView: Tensor { Tensor(viewing: views.data, shape: [batch] + views.shape.dropFirst()) }

    /// FLOPs of one image's step (both views), as counted in the file comment.
    var flopPerImage: Double {
        let config = encoder.config
        let stem = config.imageSize * config.imageSize * 9 * config.inputChannels * config.width
        let forward = config.forwardMultiplyAdds + projector.config.forwardMultiplyAdds
        return Double(2 * 2 * (3 * forward - stem))
    }

    /// One training step; returns the loss. With a profiler, the parts are timed one by one.
    @discardableResult
    func step(profiler: StepProfiler?) -> Float {
        let mode = ForwardMode.training(views: 2)
        let p = profiler ?? unprofiled
        p.phase("zero gradients") { model.zeroGradients() }
        let projections = p.phase("forward: encoder + projector, a view per worker") { model.forward(views, mode: mode) }
        let loss = p.phase("L2 normalise + loss (forward and gradient)") {
            negativeCosineLoss(normalize.forward(projections, mode: mode), gradient: projectionGradient)
        }
        let projectionInputGradient = p.phase("L2 normalise backward") { normalize.backward(projectionGradient) }
        p.phase("backward: projector + encoder, a view per worker") { model.backward(projectionInputGradient) }
        p.phase("SGD update") { optimiser.step(model.arena) }
        p.endStep()
        return loss
    }

    /// View 1 through replica 0 on this thread, the encoder one top-level layer at a time: where a
    /// worker's time goes inside the encoder.
    func profileOneView(_ profiler: StepProfiler) {
        let features = profiler.forward(encoder, firstView, mode: .training)
        let projections = projector.forward(features, mode: .training)
        let gradient = Tensor(zeros: projections.shape)
        gradient.fill(1 / Float(projections.count))
        _ = profiler.backward(encoder, projector.backward(gradient))
        profiler.endStep()
    }
}

/// L = −(1/B) Σ_b z1_b · z2_b for unit rows z = [z1; z2] ([2B, D]), i.e. minus the mean cosine
/// similarity of the two views. Writes dL/dz into `gradient`: dL/dz1_b = −z2_b / B, dL/dz2_b = −z1_b / B.
func negativeCosineLoss(_ z: Tensor, gradient: Tensor) -> Float {
    let (rows, d) = (z.rows / 2, z.lastDimension)
    gradient.reshape(to: z.shape)
    let scale = -1 / Float(rows)
    var total: Float = 0
    for b in 0..<rows {
        let (z1, z2) = (z.data + b * d, z.data + (rows + b) * d)
        let (g1, g2) = (gradient.data + b * d, gradient.data + (rows + b) * d)
        total += BLAS.dot(count: d, z1, z2)
        for j in 0..<d {
            g1[j] = scale * z2[j]
            g2[j] = scale * z1[j]
        }
    }
    return scale * total
}
