// A training run on disk, resumable bit for bit (a run stopped after step n and resumed gives the
// parameters of an uninterrupted run of the same data):
//
//   DIR/model.safetensors, DIR/config.json    encoder + projector: a model directory that
//                                             `glf eval`, `glf embed` and tools/python load
//                                             (the weights' moving average when the run keeps one)
//   DIR/online.safetensors                    the online weights, when the model is their average
//   DIR/training.json                         TrainingConfig and the step count
//   DIR/<network>.safetensors                 the other networks: the method's heads (predictor,
//                                             prototypes), the target
//   DIR/optimiser-<network>.safetensors       each optimiser's state (kind and step in metadata)
//   DIR/<state>.safetensors                   what the method keeps between steps (SwAV's queue)
//
// Every file is written atomically; training.json is written last, so a directory whose
// training.json exists holds a complete checkpoint (of this save or, if it was interrupted, the
// files of two saves mixed only where both are complete files).
import Foundation
import Neural

public struct TrainingState: Codable, Sendable {
    public var config: TrainingConfig
    public var step: Int
}

extension Trainer {
    public static let stateFileName = "training.json"

    /// The network whose weights are the model directory's: the average when the run keeps one.
    private var modelNetwork: ReplicatedModel { averaged ?? online }

    /// The networks besides the model directory's, by the name their files use.
    private var companions: [(name: String, model: ReplicatedModel)] {
        ([("online", averaged == nil ? nil : online)] + heads.map { ($0.name, $0.model) } + [("target", target)])
            .compactMap { name, model in model.map { (name, $0) } }
    }

    /// The model directory alone (encoder + projector weights and config): what `glf eval` and glfd load.
    public func saveModel(to directory: URL) throws(WeightFileError) {
        let projector = method.projector(featureDimension: config.encoder.featureDimension)
        try ModelDirectory.save(ModelConfig(encoder: config.encoder, projector: projector), arena: modelNetwork.arena, to: directory,
                                metadata: ["method": config.method.rawValue, "step": String(stepCount)])
    }

    public func save(to directory: URL) throws(WeightFileError) {
        try saveModel(to: directory)
        for (name, model) in companions {
            try WeightFile.save(model.arena, to: directory.appendingPathComponent("\(name).safetensors"))
        }
        for (name, model, optimiser) in optimisers {
            let state = optimiser.saveState(for: model.arena)
            try SafeTensors.write(state.entries, metadata: ["kind": state.kind, "step": String(state.stepCount)],
                                  to: directory.appendingPathComponent("optimiser-\(name).safetensors"))
        }
        if let state, let saved = state.saved() {
            try SafeTensors.write(saved.tensors, metadata: saved.metadata,
                                  to: directory.appendingPathComponent("\(state.fileName).safetensors"))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let json = try? encoder.encode(TrainingState(config: config, step: stepCount)) else {
            throw WeightFileError(.invalidConfig, "cannot encode \(Self.stateFileName)")
        }
        do {
            try json.write(to: directory.appendingPathComponent(Self.stateFileName), options: .atomic)
        } catch {
            throw WeightFileError(.unwritable, "cannot write \(Self.stateFileName): \(error.localizedDescription)", path: directory.path)
        }
    }

    /// The configuration and step of the checkpoint in `directory`.
    public static func savedState(in directory: URL) throws(WeightFileError) -> TrainingState {
        let stateURL = directory.appendingPathComponent(stateFileName)
        guard let data = try? Data(contentsOf: stateURL) else {
            throw WeightFileError(.unreadable, "no \(stateFileName): not a training checkpoint", path: directory.path)
        }
        do {
            return try JSONDecoder().decode(TrainingState.self, from: data)
        } catch {
            throw WeightFileError(.invalidConfig, "\(stateFileName) is not a training state: \(error)", path: stateURL.path)
        }
    }

    /// Rebuilds the trainer saved in `directory`, with `workers` cores. With `config`, the run goes
    /// on under it: what `TrainingConfig.changes(toResume:)` allows to change is taken from it (the
    /// learning rate, ADC, …); a change of the saved run's structure is an error.
    public static func resume(from directory: URL, workers: Int? = nil, as wanted: TrainingConfig? = nil) throws(WeightFileError) -> Trainer {
        let state = try savedState(in: directory)
        var config = state.config
        if let wanted {
            let fixed = wanted.changes(toResume: state.config).filter { !$0.canChangeOnResume }
            guard fixed.isEmpty else {
                throw WeightFileError(.invalidConfig, "the saved run differs in what cannot change on resume: "
                                      + fixed.map(\.description).joined(separator: "; "), path: directory.path)
            }
            config = wanted
        }
        if let workers { config.workers = workers }
        let trainer = Trainer(config)
        _ = try WeightFile.load(into: trainer.modelNetwork.arena, from: directory.appendingPathComponent(ModelDirectory.weightsFileName))
        for (name, model) in trainer.companions {
            _ = try WeightFile.load(into: model.arena, from: directory.appendingPathComponent("\(name).safetensors"))
        }
        for (name, model, optimiser) in trainer.optimisers {
            let url = directory.appendingPathComponent("optimiser-\(name).safetensors")
            let contents = try SafeTensors.read(from: url)
            let saved = OptimiserState(kind: contents.metadata["kind"] ?? "", stepCount: Int(contents.metadata["step"] ?? "") ?? -1,
                                       entries: contents.tensors)
            do {
                try optimiser.restoreState(saved, for: model.arena)
            } catch {
                throw WeightFileError(.invalidConfig, "optimiser state does not fit: \(error.message)", path: url.path)
            }
        }
        if let state = trainer.state {
            let url = directory.appendingPathComponent("\(state.fileName).safetensors")
            if FileManager.default.fileExists(atPath: url.path) {
                let contents = try SafeTensors.read(from: url)
                do {
                    try state.restore(tensors: contents.tensors, metadata: contents.metadata)
                } catch {
                    throw error.at(url.path)
                }
            }
        }
        trainer.resumeAt(step: state.step)
        return trainer
    }
}
