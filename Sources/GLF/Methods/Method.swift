// A self-supervised method in GLF terms: its aligning part, its constraining parts, and the heads
// that produce what those parts read. Adding a method is adding one file in this folder with a
// value conforming to `Method` and a case in `MethodName`.
//
// Heads after the encoder (each one a network of its own, replicated per view like the encoder):
//   projector    always: encoder features → z
//   predictor    BYOL: z → p, trained; the aligning part compares p with the target network's z
//   prototypes   SwAV: ẑ → s = Cᵀẑ with unit-norm prototypes C
//   target       BYOL: an EMA copy of encoder + projector, run without gradient
import Neural

public protocol Method: Sendable {
    var name: MethodName { get }
    /// Projector shape for encoder features of `featureDimension`.
    func projector(featureDimension: Int) -> HeadConfig
    var predictor: HeadConfig? { get }
    var prototypes: PrototypesConfig? { get }
    /// Decay of the EMA target network (BYOL's τ), or nil for methods without one.
    var targetDecay: Float? { get }
    /// The aligning part and the method's own constraining parts, weighted.
    var parts: [WeightedPart] { get }
}

extension Method {
    public var predictor: HeadConfig? { nil }
    public var prototypes: PrototypesConfig? { nil }
    public var targetDecay: Float? { nil }
}

public enum MethodName: String, Sendable, Codable, CaseIterable {
    case byol, barlowTwins = "barlow-twins", swav, simclr
}

public struct PrototypesConfig: Sendable, Codable, Equatable {
    public var count: Int
    /// Prototypes are not updated for the first steps (SwAV's freeze_prototypes_epochs).
    public var frozenSteps: Int
    /// Past unit projections kept per view (0: none). Once full, Sinkhorn-Knopp computes the codes
    /// over [batch; queue], scored by the current prototypes: equipartition over more samples than
    /// a small batch has (SwAV's queue).
    public var queueLength: Int

    public init(count: Int, frozenSteps: Int, queueLength: Int = 0) {
        self.count = count
        self.frozenSteps = frozenSteps
        self.queueLength = queueLength
    }
}
