// A self-supervised method in GLF terms: its aligning part, its constraining parts, the heads that
// produce what those parts read, and whatever it keeps from one step to the next. Adding a method
// is two files (its loss terms in Losses/, the method here) and one line in `MethodRegistry.shipped`
// (Tests/MethodRegistryTests does it with a method of its own).
//
// Heads after the encoder (each one a network of its own, replicated per view like the encoder):
//   projector    always: encoder features → z
//   predictor    BYOL: z → p, trained; the aligning part compares p with the target network's z
//   prototypes   SwAV: ẑ → s = Cᵀẑ with unit-norm prototypes C
//   target       BYOL: an EMA copy of encoder + projector, run without gradient
import Foundation
import Neural

public protocol Method: Sendable {
    /// The name the configuration, the command line and saved runs use.
    static var name: MethodName { get }
    /// The method with its recipe's constants (solo-learn's CIFAR recipes), replaced by those
    /// `constants` gives (a constant the method does not have is ignored).
    init(constants: MethodConstants)
    /// Projector shape for encoder features of `featureDimension`.
    func projector(featureDimension: Int) -> HeadConfig
    /// Decay of the EMA target network (BYOL's τ), or nil for methods without one.
    var targetDecay: Float? { get }
    /// The aligning part and the method's own constraining parts, weighted.
    var parts: [WeightedPart] { get }
    /// The networks after the projector that the parts read (BYOL's predictor, SwAV's prototypes),
    /// initialised from `seed`; trained with the encoder, each by an optimiser of its own.
    func makeHeads(projectionDimension: Int, workers: Int, seed: UInt64) -> [MethodHead]
    /// What the method keeps from step to step (SwAV's queue of past projections), or nil.
    func makeState(batch: Int, projectionDimension: Int) -> (any MethodState)?
}

extension Method {
    public var name: MethodName { Self.name }
    public var targetDecay: Float? { nil }
    public func makeHeads(projectionDimension: Int, workers: Int, seed: UInt64) -> [MethodHead] { [] }
    public func makeState(batch: Int, projectionDimension: Int) -> (any MethodState)? { nil }
}

/// A head after the projector: what it reads and writes in the step's tensors, and how it is
/// trained. The trainer runs it forward after the projector, backward after the parts (its input
/// gradient joins z's or ẑ's), and steps it with the others.
public struct MethodHead {
    /// Its name in checkpoints (`<name>.safetensors`, `optimiser-<name>.safetensors`).
    public var name: String
    public var model: ReplicatedModel
    /// What it reads (`projections` or `unitProjections`) and where that input's gradient goes.
    public var input: KeyPath<StepTensors, Tensor>
    public var inputGradient: KeyPath<StepTensors, Tensor>
    /// Where its output goes for the parts, and the gradient they leave for it.
    public var output: ReferenceWritableKeyPath<StepTensors, Tensor?>
    public var outputGradient: KeyPath<StepTensors, Tensor>
    /// It is not stepped at all for this many first steps (SwAV freezes its prototypes).
    public var frozenSteps: Int
    /// Runs after each step that updated it (SwAV renormalises its prototypes).
    public var afterUpdate: ((ReplicatedModel) -> Void)?

    public init(name: String, model: ReplicatedModel, input: KeyPath<StepTensors, Tensor>, inputGradient: KeyPath<StepTensors, Tensor>,
                output: ReferenceWritableKeyPath<StepTensors, Tensor?>, outputGradient: KeyPath<StepTensors, Tensor>,
                frozenSteps: Int = 0, afterUpdate: ((ReplicatedModel) -> Void)? = nil) {
        (self.name, self.model, self.input, self.inputGradient) = (name, model, input, inputGradient)
        (self.output, self.outputGradient, self.frozenSteps, self.afterUpdate) = (output, outputGradient, frozenSteps, afterUpdate)
    }
}

/// What a method keeps between steps. It is saved in checkpoints and restored on resume, so a
/// resumed run continues bit for bit.
public protocol MethodState: AnyObject {
    /// After the heads' forward, before the parts run (SwAV scores its queue with the current prototypes).
    func prepare(_ tensors: StepTensors, heads: [MethodHead])
    /// After the parts ran, before the update (SwAV queues this step's unit projections).
    func record(_ tensors: StepTensors)
    /// Its file in a checkpoint, `<fileName>.safetensors`.
    var fileName: String { get }
    /// What to save, or nil while there is nothing to save.
    func saved() -> (tensors: [NamedTensor], metadata: [String: String])?
    func restore(tensors: [NamedTensor], metadata: [String: String]) throws(WeightFileError)
}

/// A method's name: one of the registry's. Unknown names do not decode, so a saved run or a
/// configuration naming a method this build lacks is an error, never another method.
public struct MethodName: RawRepresentable, Hashable, Codable, Sendable, CaseIterable, CustomStringConvertible {
    public let rawValue: String

    public init?(rawValue: String) {
        guard MethodRegistry.methods.contains(where: { $0.name.rawValue == rawValue }) else { return nil }
        self.rawValue = rawValue
    }

    /// A method type's own name, which `MethodRegistry` lists (or `register` adds).
    public init(registering rawValue: String) { self.rawValue = rawValue }

    public static var allCases: [MethodName] { MethodRegistry.methods.map { $0.name } }
    public var description: String { rawValue }

    public static let byol = BYOL.name
    public static let barlowTwins = BarlowTwins.name
    public static let swav = SwAV.name
    public static let simclr = SimCLR.name

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let name = MethodName(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                "unknown method \"\(text)\" (this build has \(MethodName.allCases.map(\.rawValue).joined(separator: ", ")))"))
        }
        self = name
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// Every method this build can train, by name: the one list the configuration, the command line
/// and saved runs read. A method shipped with glfd is one line below; `register` adds one at run
/// time (a test's, or an embedder's own), before a configuration or a command line names it.
public enum MethodRegistry {
    /// The methods glfd ships: what its configuration's key table and `glfd.toml` list.
    public static let shipped: [any Method.Type] = [
        BYOL.self,
        BarlowTwins.self,
        SwAV.self,
        SimCLR.self,
    ]

    private static let lock = NSLock()
    nonisolated(unsafe) private static var registered = shipped

    /// The shipped methods, then those registered at run time.
    public static var methods: [any Method.Type] { lock.withLock { registered } }

    /// Adds `type` under its name (a name already taken keeps its method).
    public static func register(_ type: any Method.Type) {
        lock.withLock {
            if !registered.contains(where: { $0.name.rawValue == type.name.rawValue }) { registered.append(type) }
        }
    }

    /// The method named `name`, from its recipe with `constants` applied.
    public static func method(_ name: MethodName, constants: MethodConstants) -> any Method {
        guard let type = methods.first(where: { $0.name == name }) else { preconditionFailure("\(name) is not registered") }
        return type.init(constants: constants)
    }
}
