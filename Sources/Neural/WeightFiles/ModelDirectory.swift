// A model directory: what glfd saves and tools/python/glf_torch.py's `load_glf_model` loads.
//
//   DIR/model.safetensors   every parameter of the model's arena (see WeightFile), names prefixed
//                           by the part they belong to: encoder.*, projector.*, predictor.*
//   DIR/config.json         what to build before loading the weights:
//     {"format": "glfd-model", "formatVersion": 1, "layout": "NHWC, convolution weights OHWI",
//      "encoder": EncoderConfig, "projector": HeadConfig (optional), "predictor": HeadConfig (optional)}
//
// Growing the format: a new field is added to ModelConfig as an Optional (older files decode with
// nil, older readers ignore keys they do not know). `formatVersion` only goes up when an old reader
// would misread a new file (a changed layout, a renamed parameter); readers refuse newer versions.
//
// Saving writes the weights first and config.json second, each atomically, so a directory with a
// config.json always has complete weights (from this save, or the previous one if a save of a
// *different* model was interrupted between the two renames).
import Foundation

public struct ModelConfig: Codable, Sendable, Equatable {
    public static let formatName = "glfd-model"
    public static let currentFormatVersion = 1
    public static let currentLayout = "NHWC, convolution weights OHWI"

    public var format: String
    public var formatVersion: Int
    /// How tensors are laid out in model.safetensors; readers check it rather than assume it.
    public var layout: String
    public var encoder: EncoderConfig
    /// The head between encoder features and the loss (input: encoder.featureDimension).
    public var projector: HeadConfig?
    /// The extra head of asymmetric methods (BYOL, SimSiam), applied after the projector.
    public var predictor: HeadConfig?

    public init(encoder: EncoderConfig, projector: HeadConfig? = nil, predictor: HeadConfig? = nil) {
        self.format = Self.formatName
        self.formatVersion = Self.currentFormatVersion
        self.layout = Self.currentLayout
        self.encoder = encoder
        self.projector = projector
        self.predictor = predictor
    }

    /// Checks what would otherwise trip a precondition when the model is built, or make a reader
    /// misinterpret the weights.
    public func validate() throws(WeightFileError) {
        func invalid(_ message: String) -> WeightFileError { WeightFileError(.invalidConfig, message) }
        guard format == Self.formatName else { throw invalid("format is \"\(format)\", expected \"\(Self.formatName)\"") }
        guard formatVersion >= 1 else { throw invalid("formatVersion \(formatVersion) is not a valid version") }
        guard formatVersion <= Self.currentFormatVersion else {
            throw invalid("formatVersion \(formatVersion) was written by a newer glfd; this build reads up to \(Self.currentFormatVersion)")
        }
        guard layout == Self.currentLayout else { throw invalid("layout is \"\(layout)\"; this build reads \"\(Self.currentLayout)\"") }
        let e = encoder
        guard (1...64).contains(e.inputChannels) else { throw invalid("encoder.inputChannels is \(e.inputChannels); expected 1...64") }
        guard (1...4096).contains(e.imageSize) else { throw invalid("encoder.imageSize is \(e.imageSize); expected 1...4096") }
        guard (1...8).contains(e.blocksPerStage.count), e.blocksPerStage.allSatisfy({ (1...64).contains($0) }) else {
            throw invalid("encoder.blocksPerStage is \(e.blocksPerStage); expected 1 to 8 stages of 1...64 blocks")
        }
        guard (1...4096).contains(e.width), e.width << (e.blocksPerStage.count - 1) <= 65536 else {
            throw invalid("encoder.width is \(e.width); expected 1...4096 with at most 65536 channels in the last stage")
        }
        for (name, head) in [("projector", projector), ("predictor", predictor)] {
            guard let head else { continue }
            for (field, value) in [("inputDimension", head.inputDimension), ("hiddenDimension", head.hiddenDimension),
                                   ("outputDimension", head.outputDimension)] where !(1...65536).contains(value) {
                throw invalid("\(name).\(field) is \(value); expected 1...65536")
            }
        }
        if let projector, projector.inputDimension != e.featureDimension {
            throw invalid("projector.inputDimension is \(projector.inputDimension) but the encoder gives \(e.featureDimension) features")
        }
    }
}

/// An encoder and its optional heads, built from a ModelConfig into one sealed arena.
public final class EncoderModel {
    public let config: ModelConfig
    public let arena: ParameterArena
    public let encoder: ResNetEncoder
    public let projector: MLPHead?
    public let predictor: MLPHead?

    /// Fresh parameters (initialised from `seed`), arena sealed.
    public init(_ config: ModelConfig, seed: UInt64) throws(WeightFileError) {
        try config.validate()
        self.config = config
        let arena = ParameterArena()
        var rng = SeededGenerator(seed: seed)
        encoder = ResNetEncoder(config.encoder, name: "encoder", in: arena, rng: &rng)
        projector = config.projector.map { MLPHead($0, name: "projector", in: arena, rng: &rng) }
        predictor = config.predictor.map { MLPHead($0, name: "predictor", in: arena, rng: &rng) }
        arena.seal()
        self.arena = arena
    }
}

public enum ModelDirectory {
    public static let weightsFileName = "model.safetensors"
    public static let configFileName = "config.json"

    /// Writes DIR/model.safetensors then DIR/config.json, creating DIR if needed.
    public static func save(_ config: ModelConfig, arena: ParameterArena, to directory: URL,
                            metadata: [String: String] = [:]) throws(WeightFileError) {
        try config.validate()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw WeightFileError(.unwritable, "cannot create the model directory (\(error.localizedDescription))", path: directory.path)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json: Data
        do {
            json = try encoder.encode(config)
        } catch {
            throw WeightFileError(.invalidConfig, "cannot encode config.json (\(error))")
        }
        try WeightFile.save(arena, to: directory.appendingPathComponent(weightsFileName), metadata: metadata)
        try FileBytes.writeAtomically([UInt8](json) + [UInt8(ascii: "\n")], to: directory.appendingPathComponent(configFileName))
    }

    public static func save(_ model: EncoderModel, to directory: URL, metadata: [String: String] = [:]) throws(WeightFileError) {
        try save(model.config, arena: model.arena, to: directory, metadata: metadata)
    }

    public static func readConfig(from directory: URL) throws(WeightFileError) -> ModelConfig {
        let url = directory.appendingPathComponent(configFileName)
        let bytes = try FileBytes.read(url)
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw WeightFileError(.invalidConfig, "not a glfd model config: \(SafeTensors.describe(error))", path: url.path)
        } catch {
            throw WeightFileError(.invalidConfig, "not a glfd model config: \(error)", path: url.path)
        }
        do {
            try config.validate()
        } catch {
            throw error.at(url.path)
        }
        return config
    }

    /// Builds the model config.json describes and loads its weights; returns it with the weight
    /// file's metadata.
    public static func load(from directory: URL) throws(WeightFileError) -> (model: EncoderModel, metadata: [String: String]) {
        let model = try EncoderModel(readConfig(from: directory), seed: 0)
        let metadata = try WeightFile.load(into: model.arena, from: directory.appendingPathComponent(weightsFileName))
        return (model, metadata)
    }
}
