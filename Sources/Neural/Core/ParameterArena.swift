// ParameterArena: every parameter of a model in one contiguous buffer, gradients in a second one
// with the same layout (as llm.c does). One allocation, one place to zero gradients, one loop for
// an optimiser or an EMA, one table of names and shapes for the weight file.
//
// Building a model is two phases: layers `register` their parameters (with their initial values),
// then `seal()` lays them out contiguously. After sealing, each Parameter's pointers point into
// the arena.

/// What a parameter is for: optimisers treat weights differently from biases and norm
/// parameters (LARS and weight decay skip the latter, as in solo-learn).
public enum ParameterRole: String, Sendable, Codable {
    case weight, bias, normScale, normShift, statistic
    /// Whether weight decay and LARS scaling apply.
    public var isScaledAndDecayed: Bool { self == .weight }
}

public final class Parameter: @unchecked Sendable {
    public let name: String
    public let shape: [Int]
    public let role: ParameterRole
    public let count: Int
    /// Offset of this parameter inside the arena, in floats.
    public fileprivate(set) var offset: Int = 0
    public fileprivate(set) var values: UnsafeMutablePointer<Float>
    public fileprivate(set) var gradients: UnsafeMutablePointer<Float>
    /// Keeps the arena's memory alive for as long as a layer holds this parameter.
    fileprivate var storage: ArenaStorage?

    fileprivate init(name: String, shape: [Int], role: ParameterRole, initial: [Float]) {
        self.name = name
        self.shape = shape
        self.role = role
        self.count = shape.reduce(1, *)
        precondition(initial.count == count, "\(name): \(initial.count) initial values for shape \(shape)")
        values = .allocate(capacity: max(count, 1))
        values.initialize(from: initial, count: count)
        gradients = .allocate(capacity: max(count, 1))
        gradients.initialize(repeating: 0, count: max(count, 1))
    }

    /// The values as a tensor view (valid while the arena lives).
    public var valueTensor: Tensor { Tensor(viewing: values, shape: shape) }
    public var gradientTensor: Tensor { Tensor(viewing: gradients, shape: shape) }
}

/// The two buffers, owned jointly by the arena and its parameters: a layer that outlives the
/// arena object it was built with still points at live memory.
fileprivate final class ArenaStorage {
    let values: UnsafeMutablePointer<Float>
    let gradients: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        NeuralMemory.allocated(floats: 2 * max(count, 1))
        values = .allocate(capacity: max(count, 1))
        values.initialize(repeating: 0, count: max(count, 1))
        gradients = .allocate(capacity: max(count, 1))
        gradients.initialize(repeating: 0, count: max(count, 1))
    }

    deinit {
        values.deallocate()
        gradients.deallocate()
        NeuralMemory.released(floats: 2 * max(count, 1))
    }
}

public final class ParameterArena: @unchecked Sendable {
    public private(set) var parameters: [Parameter] = []
    public private(set) var isSealed = false
    private var storage = ArenaStorage(count: 0)
    /// All values (and all gradients) of the arena, `count` floats, in registration order.
    public var values: UnsafeMutablePointer<Float> { storage.values }
    public var gradients: UnsafeMutablePointer<Float> { storage.gradients }
    public private(set) var count = 0

    public init() {}

    /// Registers a parameter with its initial values. Names must be unique.
    @discardableResult
    public func register(_ name: String, shape: [Int], role: ParameterRole, initial: [Float]) -> Parameter {
        precondition(!isSealed, "register \(name) after seal()")
        precondition(!parameters.contains { $0.name == name }, "duplicate parameter name \(name)")
        let parameter = Parameter(name: name, shape: shape, role: role, initial: initial)
        parameters.append(parameter)
        return parameter
    }

    /// Lays the registered parameters out contiguously; call once, after the model is built.
    public func seal() {
        precondition(!isSealed, "seal() called twice")
        count = parameters.reduce(0) { $0 + $1.count }
        storage = ArenaStorage(count: count)
        var offset = 0
        for p in parameters {
            (values + offset).update(from: p.values, count: p.count)
            p.values.deallocate()
            p.gradients.deallocate()
            p.offset = offset
            p.values = values + offset
            p.gradients = gradients + offset
            p.storage = storage
            offset += p.count
        }
        isSealed = true
    }

    public func zeroGradients() { gradients.update(repeating: 0, count: count) }

    public subscript(name: String) -> Parameter? { parameters.first { $0.name == name } }

    /// Copies every value from an arena with the same layout (a target network from its online twin).
    public func copyValues(from other: ParameterArena) {
        precondition(count == other.count && parameters.count == other.parameters.count, "arena layouts differ")
        values.update(from: other.values, count: count)
    }
}
