// The MLP head used as projector and predictor: Linear → BN+ReLU → Linear (→ BN).
//   input [N, inputDimension] → [N, hiddenDimension] → [N, outputDimension]
import Foundation

public struct HeadConfig: Codable, Sendable, Equatable {
    public var inputDimension: Int
    public var hiddenDimension: Int
    public var outputDimension: Int
    /// A batch norm after the last linear layer (Barlow Twins and SimSiam projectors use one).
    public var finalBatchNorm: Bool

    public init(inputDimension: Int, hiddenDimension: Int, outputDimension: Int, finalBatchNorm: Bool = false) {
        self.inputDimension = inputDimension
        self.hiddenDimension = hiddenDimension
        self.outputDimension = outputDimension
        self.finalBatchNorm = finalBatchNorm
    }

    public var forwardMultiplyAdds: Int { inputDimension * hiddenDimension + hiddenDimension * outputDimension }
}

public final class MLPHead: Layer {
    public let config: HeadConfig
    public let network: Sequential

    public init(_ config: HeadConfig, name: String, in arena: ParameterArena, rng: inout SeededGenerator) {
        self.config = config
        var layers: [Layer] = [
            Linear("\(name).linear1", in: arena, inFeatures: config.inputDimension, outFeatures: config.hiddenDimension, rng: &rng),
            BatchNorm("\(name).bn1", in: arena, channels: config.hiddenDimension, fusedReLU: true),
            Linear("\(name).linear2", in: arena, inFeatures: config.hiddenDimension, outFeatures: config.outputDimension, rng: &rng),
        ]
        if config.finalBatchNorm {
            layers.append(BatchNorm("\(name).bn2", in: arena, channels: config.outputDimension))
        }
        network = Sequential(layers)
    }

    public func forward(_ input: Tensor, mode: ForwardMode) -> Tensor { network.forward(input, mode: mode) }
    public func backward(_ outputGradient: Tensor) -> Tensor { network.backward(outputGradient) }
}
