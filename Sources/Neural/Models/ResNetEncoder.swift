// The image encoder: a small ResNet for low-resolution images (CIFAR-style stem, no max-pool).
//
//   image [N, S, S, inputChannels]
//   stem:     conv3×3 (inputChannels → width) → BN+ReLU
//   stage s:  blocksPerStage[s] residual blocks of width·2^s channels; the first block of every
//             stage after the first halves the resolution (stride 2)
//   features: global average pool → [N, width·2^(stages−1)]
//
// The default (width 32, one block per stage, 32×32 RGB) costs about 0.13 GFLOP per image forward.
import Foundation

public struct EncoderConfig: Codable, Sendable, Equatable {
    public var inputChannels: Int
    public var imageSize: Int
    public var width: Int
    public var blocksPerStage: [Int]

    public init(inputChannels: Int = 3, imageSize: Int = 32, width: Int = 32, blocksPerStage: [Int] = [1, 1, 1, 1]) {
        self.inputChannels = inputChannels
        self.imageSize = imageSize
        self.width = width
        self.blocksPerStage = blocksPerStage
    }

    public func channels(ofStage stage: Int) -> Int { width << stage }
    public var featureDimension: Int { channels(ofStage: blocksPerStage.count - 1) }

    /// Multiply–adds of one forward pass for one image (convolutions and the shortcut projections).
    public var forwardMultiplyAdds: Int {
        var size = imageSize
        var total = size * size * 9 * inputChannels * width
        var inChannels = width
        for (stage, blocks) in blocksPerStage.enumerated() {
            let channels = channels(ofStage: stage)
            for block in 0..<blocks {
                let stride = (stage > 0 && block == 0) ? 2 : 1
                size = (size - 1) / stride + 1
                total += size * size * 9 * inChannels * channels + size * size * 9 * channels * channels
                if stride != 1 || inChannels != channels { total += size * size * inChannels * channels }
                inChannels = channels
            }
        }
        return total
    }
}

public final class ResNetEncoder: Layer {
    public let config: EncoderConfig
    public let network: Sequential
    public let stem: Conv2D

    public init(_ config: EncoderConfig, name: String = "encoder", in arena: ParameterArena, rng: inout SeededGenerator) {
        precondition(!config.blocksPerStage.isEmpty && config.blocksPerStage.allSatisfy { $0 >= 1 })
        self.config = config
        stem = Conv2D("\(name).stem.conv", in: arena, inChannels: config.inputChannels, outChannels: config.width,
                      kernel: 3, stride: 1, padding: 1, rng: &rng)
        stem.computesInputGradient = false
        var layers: [Layer] = [stem, BatchNorm("\(name).stem.bn", in: arena, channels: config.width, fusedReLU: true)]
        var inChannels = config.width
        for (stage, blocks) in config.blocksPerStage.enumerated() {
            let channels = config.channels(ofStage: stage)
            for block in 0..<blocks {
                layers.append(ResidualBlock("\(name).stage\(stage + 1).block\(block + 1)", in: arena,
                                            inChannels: inChannels, outChannels: channels,
                                            stride: (stage > 0 && block == 0) ? 2 : 1, rng: &rng))
                inChannels = channels
            }
        }
        layers.append(GlobalAveragePool())
        network = Sequential(layers)
    }

    /// [N, S, S, C] images → [N, featureDimension] features.
    public func forward(_ images: Tensor, mode: ForwardMode) -> Tensor {
        precondition(images.shape.count == 4 && images.shape[3] == config.inputChannels,
                     "encoder expects [N, H, W, \(config.inputChannels)], got \(images.shape)")
        return network.forward(images, mode: mode)
    }

    /// The returned gradient is not computed (the stem does not need dL/dimage) and must not be read.
    public func backward(_ outputGradient: Tensor) -> Tensor { network.backward(outputGradient) }
}
