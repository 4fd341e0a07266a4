// WeightFile: a ParameterArena to and from a safetensors file.
//
// The file holds every parameter of the arena under its name (e.g. encoder.stage2.block1.conv1.weight),
// in arena order, F32, with the arena's shapes: convolution weights are OHWI ([out, kh, kw, in]),
// linear weights [out, in], batch-norm running statistics included. Roles are not stored: they
// belong to the model that reads the file.
//
// Loading is all or nothing: the file must have exactly the arena's names with exactly its shapes,
// and the arena is only written once that has been checked, so a failed load leaves it untouched.
import Foundation

public enum WeightFile {
    /// Writes every parameter of `arena` (atomically: readers see the old file or the new one).
    public static func save(_ arena: ParameterArena, to url: URL, metadata: [String: String] = [:]) throws(WeightFileError) {
        let bytes = try encode(arena, metadata: metadata)
        try FileBytes.writeAtomically(bytes, to: url)
    }

    public static func encode(_ arena: ParameterArena, metadata: [String: String] = [:]) throws(WeightFileError) -> [UInt8] {
        let parameters = arena.parameters
        return try SafeTensors.encode(names: parameters.map(\.name), shapes: parameters.map(\.shape), metadata: metadata) { index, destination in
            copyLittleEndian(from: parameters[index].values, count: parameters[index].count, to: destination)
        }
    }

    /// Replaces the arena's values with the file's; returns the file's metadata.
    @discardableResult
    public static func load(into arena: ParameterArena, from url: URL) throws(WeightFileError) -> [String: String] {
        let bytes = try FileBytes.read(url)
        do {
            return try load(into: arena, fromBytes: bytes)
        } catch {
            throw error.at(url.path)
        }
    }

    @discardableResult
    public static func load(into arena: ParameterArena, fromBytes bytes: [UInt8]) throws(WeightFileError) -> [String: String] {
        let header = try SafeTensors.parseHeader(bytes)
        var entries: [String: SafeTensors.Entry] = [:]
        for entry in header.entries { entries[entry.name] = entry }
        try checkMatch(arena: arena, fileShapes: entries.mapValues(\.shape))
        bytes.withUnsafeBytes { buffer in
            for parameter in arena.parameters {
                let entry = entries[parameter.name]!
                copyFromLittleEndian(buffer.baseAddress! + header.dataStart + entry.begin, count: entry.count, to: parameter.values)
            }
        }
        return header.metadata
    }

    /// Replaces the arena's values with tensors already in memory (e.g. read by `SafeTensors.read`).
    public static func load(into arena: ParameterArena, from contents: SafeTensorsContents) throws(WeightFileError) {
        var tensors: [String: NamedTensor] = [:]
        for tensor in contents.tensors {
            guard tensors[tensor.name] == nil else { throw WeightFileError(.invalidHeader, "two tensors are named \(tensor.name)") }
            guard tensor.values.count == checkedElementCount(tensor.shape, bytesPerElement: 4) else {
                throw WeightFileError(.invalidShape, "tensor \(tensor.name): \(tensor.values.count) values do not fill shape \(tensor.shape)")
            }
            tensors[tensor.name] = tensor
        }
        try checkMatch(arena: arena, fileShapes: tensors.mapValues(\.shape))
        for parameter in arena.parameters {
            tensors[parameter.name]!.values.withUnsafeBufferPointer { parameter.values.update(from: $0.baseAddress!, count: parameter.count) }
        }
    }

    /// Same names, same shapes; otherwise an error that says which and how they differ. Shape
    /// mismatches come first: they are what a file for another width of the same model shows.
    static func checkMatch(arena: ParameterArena, fileShapes: [String: [Int]]) throws(WeightFileError) {
        let parameters = arena.parameters
        let mismatched = parameters.filter { fileShapes[$0.name] != nil && fileShapes[$0.name]! != $0.shape }
        if let first = mismatched.first {
            let more = mismatched.count > 1 ? " (and \(mismatched.count - 1) more parameters differ in shape)" : ""
            throw WeightFileError(.shapeMismatch,
                "\(first.name): the model expects shape \(first.shape) but the file has \(fileShapes[first.name]!)\(more); was the file written for another model configuration?")
        }
        let missing = parameters.filter { fileShapes[$0.name] == nil }
        if !missing.isEmpty {
            throw WeightFileError(.missingTensor,
                "\(missing.count) of the model's \(parameters.count) parameters are not in the file: \(list(missing.map(\.name))); was the file written for another model configuration?")
        }
        let known = Set(parameters.map(\.name))
        let unexpected = fileShapes.keys.filter { !known.contains($0) }.sorted()
        if !unexpected.isEmpty {
            throw WeightFileError(.unexpectedTensor,
                "the file has \(unexpected.count) tensors the model does not: \(list(unexpected)); was the file written for another model configuration?")
        }
    }

    private static func list(_ names: [String], limit: Int = 5) -> String {
        names.count <= limit ? names.joined(separator: ", ") : names.prefix(limit).joined(separator: ", ") + ", ..."
    }
}
