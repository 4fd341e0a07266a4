// Optimisers update a whole sealed ParameterArena in place from its gradients: one loop per
// parameter tensor, over raw pointers into the arena (llm.c's one-buffer layout).
//
// Which parameters get what (solo-learn's exclude_bias_n_norm for LARS and weight decay):
//   role .weight                        : weight decay and LARS scaling apply
//   role .bias, .normScale, .normShift  : plain update, no weight decay, no LARS scaling
//   role .statistic (batch-norm running mean/var): never touched, whatever its gradient holds
//
// State (momentum buffers, Adam moments) is owned by the optimiser: one flat buffer per slot,
// `arena.count` floats laid out exactly like the arena, allocated on the first step (or restore)
// and reused. It is saved and restored as an arena-like named list (`OptimiserState`): one entry
// per slot and trainable parameter, named "<slot>/<parameter name>" with the parameter's shape, so
// a weight file can store it next to the parameters and a restored optimiser continues bit for bit.
//
// The learning rate is not state: the trainer sets `learningRate` from its schedule before each
// step.

public protocol Optimiser: AnyObject {
    /// The step size of the next `step`; set it from a `LearningRateSchedule` before each step.
    var learningRate: Float { get set }
    /// Steps taken so far (restored with the state; AdamW's bias correction depends on it).
    var stepCount: Int { get }
    /// Updates the arena's values from its gradients. The gradients are read, not modified.
    func step(_ arena: ParameterArena)
    /// The optimiser's state, named after the arena's parameters.
    func saveState(for arena: ParameterArena) -> OptimiserState
    /// Replaces the optimiser's state by a saved one; the arena gives the layout to map names to.
    func restoreState(_ state: OptimiserState, for arena: ParameterArena) throws(OptimiserStateError)
}

/// Everything an optimiser needs to continue where it stopped (hyperparameters are configuration).
public struct OptimiserState: Sendable, Equatable {
    /// Which optimiser wrote it: "SGD", "LARS" or "AdamW".
    public var kind: String
    public var stepCount: Int
    /// One tensor per slot and parameter, named "<slot>/<parameter>" (e.g.
    /// "momentum_buffer/encoder.stem.conv.weight"), slot-major, parameters in arena order;
    /// statistics have no entries. Ready to be written with SafeTensors.
    public var entries: [NamedTensor]

    public init(kind: String, stepCount: Int, entries: [NamedTensor]) {
        self.kind = kind
        self.stepCount = stepCount
        self.entries = entries
    }
}

public struct OptimiserStateError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The state was written by another kind of optimiser.
        case kindMismatch
        /// A trainable parameter has no entry for one of the optimiser's slots.
        case missingEntry
        /// An entry names no slot/parameter of this optimiser and arena (e.g. momentum state given
        /// to an SGD without momentum).
        case unexpectedEntry
        /// Same name, different shape or value count.
        case shapeMismatch
        /// A negative step count.
        case invalidStepCount
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// Per-element state of an optimiser: one buffer of `arena.count` floats per named slot.
final class OptimiserSlots {
    let kind: String
    let names: [String]
    private(set) var buffers: [UnsafeMutablePointer<Float>] = []
    private(set) var count = -1

    init(kind: String, names: [String]) {
        self.kind = kind
        self.names = names
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
        NeuralMemory.released(floats: buffers.count * max(count, 1))
    }

    /// Allocates zeroed buffers on first use; afterwards the arena must keep its size.
    func bind(_ arena: ParameterArena) {
        precondition(arena.isSealed, "\(kind): the arena must be sealed before the optimiser uses it")
        if count < 0 {
            count = arena.count
            buffers = names.map { _ in
                let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
                buffer.initialize(repeating: 0, count: max(count, 1))
                return buffer
            }
            NeuralMemory.allocated(floats: buffers.count * max(count, 1))
        }
        precondition(count == arena.count,
                     "\(kind): state was allocated for an arena of \(count) floats, this one has \(arena.count)")
    }

    func save(for arena: ParameterArena, stepCount: Int) -> OptimiserState {
        bind(arena)
        var entries: [NamedTensor] = []
        for (slot, buffer) in zip(names, buffers) {
            for p in arena.parameters where p.role != .statistic {
                entries.append(NamedTensor(
                    name: "\(slot)/\(p.name)", shape: p.shape,
                    values: Array(UnsafeBufferPointer(start: buffer + p.offset, count: p.count))))
            }
        }
        return OptimiserState(kind: kind, stepCount: stepCount, entries: entries)
    }

    /// Validates the whole state before changing anything; returns its step count.
    func restore(_ state: OptimiserState, for arena: ParameterArena) throws(OptimiserStateError) -> Int {
        guard state.kind == kind else {
            throw OptimiserStateError(.kindMismatch, "optimiser state was written by \(state.kind), not \(kind)")
        }
        guard state.stepCount >= 0 else {
            throw OptimiserStateError(.invalidStepCount, "\(kind) state has step count \(state.stepCount)")
        }
        precondition(arena.isSealed, "\(kind): the arena must be sealed before the optimiser uses it")
        var byName: [String: NamedTensor] = [:]
        for entry in state.entries { byName[entry.name] = entry }
        var expected: [(buffer: Int, parameter: Parameter, entry: NamedTensor)] = []
        for (slotIndex, slot) in names.enumerated() {
            for p in arena.parameters where p.role != .statistic {
                let name = "\(slot)/\(p.name)"
                guard let entry = byName.removeValue(forKey: name) else {
                    throw OptimiserStateError(.missingEntry, "\(kind) state has no entry \(name)")
                }
                guard entry.shape == p.shape, entry.values.count == p.count else {
                    throw OptimiserStateError(
                        .shapeMismatch,
                        "\(kind) state entry \(name) has shape \(entry.shape) with \(entry.values.count) values; the parameter has shape \(p.shape)")
                }
                expected.append((slotIndex, p, entry))
            }
        }
        if let extra = byName.keys.sorted().first {
            throw OptimiserStateError(.unexpectedEntry, "\(kind) state has entry \(extra), which this optimiser and model do not have")
        }
        bind(arena)
        for buffer in buffers { buffer.update(repeating: 0, count: count) }
        for (slotIndex, p, entry) in expected {
            entry.values.withUnsafeBufferPointer { (buffers[slotIndex] + p.offset).update(from: $0.baseAddress!, count: p.count) }
        }
        return state.stepCount
    }
}

/// PyTorch's SGD update of one tensor (dampening 0), shared by SGD and LARS:
///   d = s·(g + wd·w);  first step: buf = d, later: buf = μ·buf + d;
///   w −= lr·(d + μ·buf) with Nesterov, w −= lr·buf without; with μ = 0: w −= lr·d.
/// `momentumBuffer` is nil when μ = 0.
@inline(__always)
func momentumUpdate(
    count n: Int, values w: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
    momentumBuffer: UnsafeMutablePointer<Float>?, gradientScale s: Float, weightDecay wd: Float,
    learningRate lr: Float, momentum mu: Float, nesterov: Bool, isFirstStep: Bool
) {
    guard let b = momentumBuffer, mu != 0 else {
        for i in 0..<n { w[i] -= lr * (s * (g[i] + wd * w[i])) }
        return
    }
    switch (isFirstStep, nesterov) {
    case (true, false):
        for i in 0..<n {
            let d = s * (g[i] + wd * w[i])
            b[i] = d
            w[i] -= lr * d
        }
    case (true, true):
        for i in 0..<n {
            let d = s * (g[i] + wd * w[i])
            b[i] = d
            w[i] -= lr * (d + mu * d)
        }
    case (false, false):
        for i in 0..<n {
            let d = s * (g[i] + wd * w[i])
            let v = mu * b[i] + d
            b[i] = v
            w[i] -= lr * v
        }
    case (false, true):
        for i in 0..<n {
            let d = s * (g[i] + wd * w[i])
            let v = mu * b[i] + d
            b[i] = v
            w[i] -= lr * (d + mu * v)
        }
    }
}
