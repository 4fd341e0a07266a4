// ReplicatedModel: one model on several cores, each replica working on one slice of the batch.
//
// The views of a training batch are independent until the loss: each view keeps batch-norm
// statistics of its own (as if it went through the network alone, as solo-learn forwards them),
// so each view can go through its own copy of the network on its own core. A replica is a full
// copy of the layers, with its own activations, gradients and running statistics:
//
//   forward   replicas take the primary's parameter values; replica r runs slice r;
//             their running statistics are averaged into the primary's
//   backward  replica r runs slice r's gradient; all gradients are summed into the primary's,
//             and the other replicas' are zeroed, so that passes accumulate: several
//             forward/backward pairs between two `zeroGradients()` add up in the primary (a
//             step's large views, then its small crops)
//   update    the optimiser steps the primary arena only
//
// With one worker the replicas run one after the other, so every result is the same whatever
// the number of workers. Inside a replica OpenBLAS runs single-threaded: for the tall, thin
// matrices of a small ResNet, two independent sgemms on two cores beat one sgemm split in two.
// The replicas run through `Parallel.perform`, so a niced caller (glfd's trainer) stays niced on
// every core it uses.
import Dispatch

public final class ReplicatedModel: @unchecked Sendable {
    /// The arena the optimiser steps (replica 0's).
    public var arena: ParameterArena { arenas[0] }
    public let replicas: [Layer]
    /// How many replicas run at once (1: one after the other).
    public var workers: Int
    private let arenas: [ParameterArena]
    private let output = Tensor(zeros: [0])
    private let inputGradient = Tensor(zeros: [0])

    /// Builds `count` replicas by calling `build` with a fresh arena each time; every call must
    /// register the same parameters. The replicas then all hold replica 0's values.
    public init(replicas count: Int, workers: Int, build: (ParameterArena) -> Layer) {
        precondition(count >= 1)
        var arenas: [ParameterArena] = [], replicas: [Layer] = []
        for _ in 0..<count {
            let arena = ParameterArena()
            replicas.append(build(arena))
            arena.seal()
            arenas.append(arena)
        }
        for other in arenas.dropFirst() {
            precondition(other.parameters.map(\.name) == arenas[0].parameters.map(\.name)
                         && other.parameters.map(\.shape) == arenas[0].parameters.map(\.shape),
                         "every replica must register the same parameters")
        }
        self.arenas = arenas
        self.replicas = replicas
        self.workers = max(1, workers)
    }

    /// Zeroes the primary's gradients. The other replicas' are zero between passes already:
    /// `backward` hands them to the primary and zeroes them.
    public func zeroGradients() { arenas[0].zeroGradients() }

    /// x: [N, ...], N divisible by the number of replicas; in training, one slice per view.
    /// Returns the replicas' outputs stacked in slice order.
    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        let count = replicas.count
        precondition(x.shape[0] % count == 0, "\(x.shape[0]) rows do not split over \(count) replicas")
        precondition(!mode.isTraining || mode.views == count, "training needs one replica per view")
        let primary = arenas[0]
        for arena in arenas.dropFirst() { arena.values.update(from: primary.values, count: primary.count) }
        let slices = slicesOf(x)
        let replicaMode = mode.isTraining ? ForwardMode.training : .inference
        var outputs = [Tensor?](repeating: nil, count: count)
        outputs.withUnsafeMutableBufferPointer { outputs in
            let results = UnsafeSendable(outputs)
            run { r in results.value[r] = self.replicas[r].forward(slices[r], mode: replicaMode) }
        }
        if mode.isTraining && count > 1 { averageStatistics() }
        let first = outputs[0]!
        output.reshape(to: [first.shape[0] * count] + first.shape.dropFirst())
        for (r, slice) in outputs.enumerated() { (output.data + r * first.count).update(from: slice!.data, count: first.count) }
        return output
    }

    /// dy: the gradient of the stacked output. Adds every replica's parameter gradients into the
    /// primary arena (the others start the next pass from zero) and returns the stacked gradient
    /// with respect to the input (a head's input gradient feeds the network before it; an
    /// encoder's is not computed and must not be read).
    @discardableResult
    public func backward(_ dy: Tensor) -> Tensor {
        let slices = slicesOf(dy)
        var inputGradients = [Tensor?](repeating: nil, count: replicas.count)
        inputGradients.withUnsafeMutableBufferPointer { gradients in
            let results = UnsafeSendable(gradients)
            run { r in results.value[r] = self.replicas[r].backward(slices[r]) }
        }
        let primary = arenas[0]
        for arena in arenas.dropFirst() {
            BLAS.axpy(count: primary.count, alpha: 1, x: arena.gradients, y: primary.gradients)
            arena.zeroGradients()
        }
        let first = inputGradients[0]!
        guard first.count > 0 else { return first }
        inputGradient.reshape(to: [first.shape[0] * replicas.count] + first.shape.dropFirst())
        for (r, slice) in inputGradients.enumerated() {
            (inputGradient.data + r * first.count).update(from: slice!.data, count: first.count)
        }
        return inputGradient
    }

    /// Views of the `count` equal slices of x along its first dimension.
    private func slicesOf(_ x: Tensor) -> [Tensor] {
        let rows = x.shape[0] / replicas.count, stride = x.count / replicas.count
        return (0..<replicas.count).map { Tensor(viewing: x.data + $0 * stride, shape: [rows] + x.shape.dropFirst()) }
    }

    private func averageStatistics() {
        let scale = 1 / Float(replicas.count)
        for (index, parameter) in arenas[0].parameters.enumerated() where parameter.role == .statistic {
            let mean = parameter.values
            for arena in arenas.dropFirst() {
                BLAS.axpy(count: parameter.count, alpha: 1, x: arena.parameters[index].values, y: mean)
            }
            BLAS.scale(count: parameter.count, alpha: scale, x: mean)
        }
    }

    private func run(_ body: @escaping (Int) -> Void) {
        if workers == 1 || replicas.count == 1 {
            for r in 0..<replicas.count { body(r) }
        } else {
            Parallel.perform(iterations: replicas.count, body)
        }
    }
}

/// Hands a value to worker threads that touch disjoint parts of it (one replica each).
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
