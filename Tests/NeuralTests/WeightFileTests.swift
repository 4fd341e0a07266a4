// Weight files as an executable spec: what a safetensors / .npy / model directory file holds, that
// saving and loading is bit-exact, and that no malformed file gets past the reader as anything but
// a WeightFileError.
import Foundation
import Neural
import Testing

private let smallEncoder = EncoderConfig(inputChannels: 3, imageSize: 8, width: 4, blocksPerStage: [1, 1])

/// A sealed arena holding a ResNetEncoder, with values perturbed away from the initialisation
/// (BN scales 1, shifts 0 and statistics 0/1 would hide a swapped tensor).
private func encoderArena(_ config: EncoderConfig = smallEncoder, seed: UInt64) -> (ParameterArena, ResNetEncoder) {
    let arena = ParameterArena()
    var rng = SeededGenerator(seed: seed)
    let encoder = ResNetEncoder(config, in: arena, rng: &rng)
    arena.seal()
    for i in 0..<arena.count { arena.values[i] += rng.nextNormal() * 0.1 }
    for parameter in arena.parameters where parameter.name.hasSuffix("running_var") {
        for j in 0..<parameter.count { parameter.values[j] = abs(parameter.values[j]) + 0.5 }
    }
    return (arena, encoder)
}

private func bitPatterns(_ arena: ParameterArena) -> [UInt32] {
    (0..<arena.count).map { arena.values[$0].bitPattern }
}

private func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("glfd-weightfile-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Runs `body`, expecting a WeightFileError with `code`.
private func expectError(
    _ code: WeightFileError.Code, _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws(WeightFileError) -> Void
) {
    do {
        try body()
        Issue.record("\(what): expected a \(code) error, got success", sourceLocation: sourceLocation)
    } catch {
        #expect(error.code == code, "\(what): \(error)", sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
    }
}

/// A safetensors file from a header written by hand and a data section.
private func safetensorsFile(header: String, data: [UInt8]) -> [UInt8] {
    safetensorsFile(headerBytes: Array(header.utf8), data: data)
}

private func safetensorsFile(headerBytes: [UInt8], data: [UInt8]) -> [UInt8] {
    let headerBytes = headerBytes + Array(repeating: UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8)
    var bytes: [UInt8] = []
    withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { bytes += $0 }
    return bytes + headerBytes + data
}

private func floatBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
}

@Suite("WeightFile")
struct WeightFileTests {
    // MARK: safetensors round trips

    @Test func saveThenLoadIsBitExact() throws {
        let (arena, encoder) = encoderArena(seed: 1)
        // Values whose bits a careless conversion would change.
        let special: [Float] = [-0.0, .infinity, -.infinity, Float(bitPattern: 0x7FC0_1234), Float(bitPattern: 0xFFA0_0001),
                                .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        for (i, value) in special.enumerated() { arena.values[i * 7] = value }

        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.safetensors")
        let metadata = ["step": "1200", "note": "quotes \" backslash \\ newline \n tab \t é ✓"]
        try WeightFile.save(arena, to: url, metadata: metadata)

        let (loaded, loadedEncoder) = encoderArena(seed: 2)
        #expect(bitPatterns(loaded) != bitPatterns(arena))
        let readMetadata = try WeightFile.load(into: loaded, from: url)
        #expect(bitPatterns(loaded) == bitPatterns(arena))
        #expect(readMetadata == metadata)

        // The low-level reader sees the same tensors, in arena order.
        let contents = try SafeTensors.read(from: url)
        #expect(contents.tensors.map(\.name) == arena.parameters.map(\.name))
        #expect(contents.tensors.map(\.shape) == arena.parameters.map(\.shape))
        #expect(contents.metadata == metadata)
        let stem = try #require(contents["encoder.stem.conv.weight"])
        #expect(stem.shape == [4, 3, 3, 3])
        #expect(stem.values.map(\.bitPattern) == (0..<108).map { arena["encoder.stem.conv.weight"]!.values[$0].bitPattern })

        // The loaded encoder computes what the saved one does (with finite weights).
        for (i, _) in special.enumerated() { arena.values[i * 7] = 0.5; loaded.values[i * 7] = 0.5 }
        var rng = SeededGenerator(seed: 3)
        let images = Tensor(zeros: [2, 8, 8, 3])
        images.fillNormal(std: 1, using: &rng)
        #expect(encoder.forward(images, mode: .inference).array == loadedEncoder.forward(images, mode: .inference).array)
    }

    @Test func writtenFileFollowsTheFormatRules() throws {
        let (arena, _) = encoderArena(seed: 4)
        let bytes = try WeightFile.encode(arena, metadata: ["format": "glfd"])

        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + headerLength) % 8 == 0, "data starts 8-aligned")
        let headerText = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        #expect(headerText.hasPrefix("{"))
        #expect(headerText.reversed().prefix { $0 != "}" }.allSatisfy { $0 == " " }, "padding is spaces")

        let header = try #require(try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any])
        #expect(header["__metadata__"] as? [String: String] == ["format": "glfd"])
        var expectedBegin = 0
        for parameter in arena.parameters {
            let entry = try #require(header[parameter.name] as? [String: Any], "\(parameter.name) in the header")
            #expect(entry["dtype"] as? String == "F32")
            #expect(entry["shape"] as? [Int] == parameter.shape)
            let offsets = try #require(entry["data_offsets"] as? [Int])
            #expect(offsets == [expectedBegin, expectedBegin + 4 * parameter.count], "\(parameter.name): contiguous, in arena order")
            expectedBegin += 4 * parameter.count
        }
        #expect(header.count == arena.parameters.count + 1)
        #expect(bytes.count == 8 + headerLength + expectedBegin, "the data is exactly the tensors")
        // Data is raw little-endian float32.
        let first = arena.parameters[0]
        #expect(Array(bytes[(8 + headerLength)..<(8 + headerLength + 4)]) == floatBytes([first.values[0]]))
    }

    @Test func readsAFileWrittenInAnotherTensorOrder() throws {
        // Python's writer orders data by dtype and name, not by our arena order.
        let data = floatBytes([1, 2, 3, 4, 5, 6])
        let bytes = safetensorsFile(header: """
            {"b":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},\
            "empty":{"dtype":"F32","shape":[0,3],"data_offsets":[24,24]},"__metadata__":{"format":"pt"}}
            """, data: data)
        let contents = try SafeTensors.decode(bytes)
        #expect(contents.tensors.map(\.name).prefix(2) == ["a", "b"])
        #expect(contents["a"]?.values == [1, 2])
        #expect(contents["b"]?.values == [3, 4, 5, 6])
        #expect(contents["b"]?.shape == [2, 2])
        #expect(contents["empty"]?.values == [])
        #expect(contents.metadata == ["format": "pt"])

        let tensors = [NamedTensor(name: "x", shape: [3], values: [1, -0.0, .nan]), NamedTensor(name: "s", shape: [], values: [7])]
        let again = try SafeTensors.decode(SafeTensors.encode(tensors))
        #expect(again.tensors.map(\.name) == ["x", "s"])
        #expect(again["x"]!.values.map(\.bitPattern) == tensors[0].values.map(\.bitPattern))
        #expect(again["s"]!.shape == [] && again["s"]!.values == [7])
    }

    // MARK: Loading into the wrong model

    @Test func loadingIntoAnotherConfigurationNamesTheMismatch() throws {
        let (arena, _) = encoderArena(seed: 5)
        let bytes = try WeightFile.encode(arena)

        let (wider, _) = encoderArena(EncoderConfig(inputChannels: 3, imageSize: 8, width: 8, blocksPerStage: [1, 1]), seed: 6)
        let before = bitPatterns(wider)
        do {
            try WeightFile.load(into: wider, fromBytes: bytes)
            Issue.record("loading a width-4 file into a width-8 encoder succeeded")
        } catch {
            #expect(error.code == .shapeMismatch)
            #expect(error.message.contains("encoder.stem.conv.weight"), "\(error)")
            #expect(error.message.contains("[8, 3, 3, 3]") && error.message.contains("[4, 3, 3, 3]"), "\(error)")
        }
        #expect(bitPatterns(wider) == before, "a failed load leaves the arena untouched")

        let (deeper, _) = encoderArena(EncoderConfig(inputChannels: 3, imageSize: 8, width: 4, blocksPerStage: [1, 1, 1]), seed: 7)
        do {
            try WeightFile.load(into: deeper, fromBytes: bytes)
            Issue.record("loading a 2-stage file into a 3-stage encoder succeeded")
        } catch {
            #expect(error.code == .missingTensor)
            #expect(error.message.contains("encoder.stage3.block1"), "\(error)")
        }

        let (shallower, _) = encoderArena(EncoderConfig(inputChannels: 3, imageSize: 8, width: 4, blocksPerStage: [1]), seed: 8)
        do {
            try WeightFile.load(into: shallower, fromBytes: bytes)
            Issue.record("loading a 2-stage file into a 1-stage encoder succeeded")
        } catch {
            #expect(error.code == .unexpectedTensor)
            #expect(error.message.contains("encoder.stage2.block1"), "\(error)")
        }

        // The same checks apply to tensors read by the low-level reader.
        let contents = try SafeTensors.decode(bytes)
        expectError(.shapeMismatch) { () throws(WeightFileError) in try WeightFile.load(into: wider, from: contents) }
        let (same, _) = encoderArena(seed: 9)
        try WeightFile.load(into: same, from: contents)
        #expect(bitPatterns(same) == bitPatterns(arena))
    }

    // MARK: Malformed files

    @Test func malformedSafetensorsFilesGiveTypedErrors() {
        let eight = floatBytes([1, 2])   // 8 bytes: one [2] tensor
        func tensor(_ name: String = "t", dtype: String = "F32", shape: String = "[2]", offsets: String = "[0,8]") -> String {
            "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":\(offsets)}"
        }
        let valid = safetensorsFile(header: "{\(tensor())}", data: eight)
        #expect((try? SafeTensors.decode(valid))?["t"]?.values == [1, 2])

        var hugeLength = valid
        for i in 0..<8 { hugeLength[i] = 0xFF }
        var longerThanFile = valid
        longerThanFile[0] = UInt8(valid.count)

        let cases: [(String, WeightFileError.Code, [UInt8])] = [
            ("empty file", .truncated, []),
            ("shorter than the length field", .truncated, [1, 2, 3, 4, 5]),
            ("header length larger than the file", .truncated, longerThanFile),
            ("header length beyond the format limit", .invalidLayout, hugeLength),
            ("zero-length header", .invalidHeader, safetensorsFile(header: "", data: [])),
            ("not JSON", .invalidHeader, safetensorsFile(header: "{not json", data: eight)),
            ("a JSON array", .invalidHeader, safetensorsFile(header: "[1, 2]", data: [])),
            ("invalid UTF-8", .invalidHeader, safetensorsFile(headerBytes: Array("{\"".utf8) + [0xFF, 0xFE] + Array("\":1}".utf8), data: [])),
            ("header without the leading {", .invalidHeader, safetensorsFile(header: " {\(tensor())}", data: eight)),
            ("entry missing dtype", .invalidHeader, safetensorsFile(header: "{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", data: eight)),
            ("shape not integers", .invalidHeader, safetensorsFile(header: "{\(tensor(shape: "[\"2\"]"))}", data: eight)),
            ("fractional offset", .invalidHeader, safetensorsFile(header: "{\(tensor(offsets: "[0,8.5]"))}", data: eight)),
            ("metadata value not a string", .invalidHeader,
             safetensorsFile(header: "{\"__metadata__\":{\"step\":3},\(tensor())}", data: eight)),
            ("F16 dtype", .unsupportedDType, safetensorsFile(header: "{\(tensor(dtype: "F16", shape: "[4]"))}", data: eight)),
            ("I64 dtype", .unsupportedDType, safetensorsFile(header: "{\(tensor(dtype: "I64", shape: "[1]"))}", data: eight)),
            ("negative dimension", .invalidShape, safetensorsFile(header: "{\(tensor(shape: "[-2]"))}", data: eight)),
            ("overflowing shape", .invalidShape,
             safetensorsFile(header: "{\(tensor(shape: "[4294967296,4294967296,4]"))}", data: eight)),
            ("one offset", .invalidOffsets, safetensorsFile(header: "{\(tensor(offsets: "[8]"))}", data: eight)),
            ("end before begin", .invalidOffsets, safetensorsFile(header: "{\(tensor(offsets: "[8,0]"))}", data: eight)),
            ("negative offset", .invalidOffsets, safetensorsFile(header: "{\(tensor(offsets: "[-8,0]"))}", data: eight)),
            ("offsets not matching shape×4", .invalidOffsets, safetensorsFile(header: "{\(tensor(offsets: "[0,4]"))}", data: eight)),
            ("offsets past the data", .truncated,
             safetensorsFile(header: "{\(tensor("a")),\(tensor("b", offsets: "[8,16]"))}", data: eight)),
            ("data truncated", .truncated, safetensorsFile(header: "{\(tensor())}", data: Array(eight.prefix(5)))),
            ("overlapping tensors", .invalidOffsets,
             safetensorsFile(header: "{\(tensor("a")),\(tensor("b", shape: "[1]", offsets: "[4,8]"))}", data: eight)),
            ("a hole between tensors", .invalidOffsets,
             safetensorsFile(header: "{\(tensor("a", shape: "[1]", offsets: "[0,4]")),\(tensor("b", shape: "[1]", offsets: "[8,12]"))}",
                             data: eight + eight)),
            ("a hole at the start", .invalidOffsets,
             safetensorsFile(header: "{\(tensor("a", shape: "[1]", offsets: "[4,8]"))}", data: eight)),
            // JSON keeps one of the two entries (as the reference reader does); the other's bytes
            // are then described by no tensor.
            ("a name used twice", .invalidLayout,
             safetensorsFile(header: "{\(tensor("a")),\(tensor("a", offsets: "[8,16]"))}", data: eight + eight)),
            ("bytes after the last tensor", .invalidLayout, safetensorsFile(header: "{\(tensor())}", data: eight + [0, 0, 0, 0])),
        ]
        for (what, code, bytes) in cases {
            expectError(code, what) { () throws(WeightFileError) in _ = try SafeTensors.decode(bytes) }
        }
    }

    @Test func randomCorruptionsNeverCrashTheReader() throws {
        let (arena, _) = encoderArena(seed: 10)
        let valid = try WeightFile.encode(arena, metadata: ["step": "1"])
        let headerEnd = 8 + valid[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        var rng = SeededGenerator(seed: 11)
        func random(_ bound: Int) -> Int { Int(rng.next() % UInt64(bound)) }

        // Bit flips: half of them aimed at the length field and header, where they change meaning.
        var rejected = 0, accepted = 0
        for trial in 0..<1500 {
            var bytes = valid
            for _ in 0..<(1 + random(4)) {
                let position = trial % 2 == 0 ? random(headerEnd) : random(bytes.count)
                bytes[position] ^= UInt8(1 << random(8))
            }
            let (target, _) = encoderArena(seed: 12)
            do {
                _ = try SafeTensors.decode(bytes)
                try WeightFile.load(into: target, fromBytes: bytes)
                accepted += 1
            } catch {
                #expect(!error.message.isEmpty)
                rejected += 1
            }
        }
        #expect(rejected > 300, "header corruptions are caught (\(rejected) rejected, \(accepted) accepted)")

        // Every strict prefix of a valid file is rejected, as is any file with bytes appended.
        for length in (0..<200).map({ _ in random(valid.count) }) + [0, 7, 8, headerEnd - 1, headerEnd, valid.count - 1] {
            expectError(.truncated, "prefix of \(length) bytes") { () throws(WeightFileError) in
                _ = try SafeTensors.decode(Array(valid.prefix(length)))
            }
        }
        expectError(.invalidLayout, "appended byte") { () throws(WeightFileError) in _ = try SafeTensors.decode(valid + [0]) }

        // Random bytes.
        for _ in 0..<300 {
            let bytes = (0..<random(64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            do { _ = try SafeTensors.decode(bytes) } catch { #expect(!error.message.isEmpty) }
        }
    }

    @Test func missingOrUnwritableFilesGiveTypedErrors() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        expectError(.unreadable) { () throws(WeightFileError) in _ = try SafeTensors.read(from: directory.appendingPathComponent("absent.safetensors")) }
        expectError(.unreadable) { () throws(WeightFileError) in _ = try NumpyFile.read(from: directory) }
        let (arena, _) = encoderArena(seed: 13)
        expectError(.unwritable) { () throws(WeightFileError) in
            try WeightFile.save(arena, to: directory.appendingPathComponent("no/such/dir/model.safetensors"))
        }
        // An atomic write leaves no temporary file behind.
        try WeightFile.save(arena, to: directory.appendingPathComponent("model.safetensors"))
        try WeightFile.save(arena, to: directory.appendingPathComponent("model.safetensors"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["model.safetensors"])
    }

    // MARK: Model directories

    @Test func modelDirectoryRoundTripsAndDescribesItself() throws {
        let config = ModelConfig(encoder: smallEncoder, projector: HeadConfig(inputDimension: 8, hiddenDimension: 16, outputDimension: 6))
        let model = try EncoderModel(config, seed: 14)
        for i in 0..<model.arena.count { model.arena.values[i] += Float(i % 17) * 0.01 }
        let directory = try temporaryDirectory().appendingPathComponent("model")
        defer { try? FileManager.default.removeItem(at: directory.deletingLastPathComponent()) }
        try ModelDirectory.save(model, to: directory, metadata: ["step": "5"])

        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("config.json"))) as? [String: Any])
        #expect(json["format"] as? String == "glfd-model")
        #expect(json["formatVersion"] as? Int == 1)
        #expect(json["layout"] as? String == "NHWC, convolution weights OHWI")
        let encoder = try #require(json["encoder"] as? [String: Any])
        #expect(encoder["width"] as? Int == 4 && encoder["imageSize"] as? Int == 8 && encoder["inputChannels"] as? Int == 3)
        #expect(encoder["blocksPerStage"] as? [Int] == [1, 1])
        #expect((json["projector"] as? [String: Any])?["outputDimension"] as? Int == 6)
        #expect(json["predictor"] == nil)

        let (loaded, metadata) = try ModelDirectory.load(from: directory)
        #expect(loaded.config == config)
        #expect(metadata == ["step": "5"])
        #expect(bitPatterns(loaded.arena) == bitPatterns(model.arena))
        #expect(loaded.arena.parameters.contains { $0.name == "projector.linear1.weight" })
    }

    @Test func modelConfigAcceptsNewFieldsAndRejectsNewerVersions() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func write(_ text: String) throws { try Data(text.utf8).write(to: directory.appendingPathComponent("config.json")) }
        let encoder = #""encoder": {"inputChannels": 1, "imageSize": 8, "width": 4, "blocksPerStage": [1]}"#
        let header = #""format": "glfd-model", "layout": "NHWC, convolution weights OHWI""#

        try write("{\(header), \"formatVersion\": 1, \(encoder), \"trainingStep\": 1200, \"method\": {\"name\": \"byol\"}}")
        #expect(try ModelDirectory.readConfig(from: directory).encoder.inputChannels == 1)

        let rejected: [(String, String)] = [
            ("newer version", "{\(header), \"formatVersion\": 2, \(encoder)}"),
            ("another format", "{\"format\": \"other\", \"formatVersion\": 1, \"layout\": \"NHWC, convolution weights OHWI\", \(encoder)}"),
            ("another layout", "{\"format\": \"glfd-model\", \"formatVersion\": 1, \"layout\": \"NCHW\", \(encoder)}"),
            ("no encoder", "{\(header), \"formatVersion\": 1}"),
            ("impossible encoder", "{\(header), \"formatVersion\": 1, \"encoder\": {\"inputChannels\": 1, \"imageSize\": 8, \"width\": 0, \"blocksPerStage\": []}}"),
            ("projector of the wrong width", "{\(header), \"formatVersion\": 1, \(encoder), \"projector\": {\"inputDimension\": 5, \"hiddenDimension\": 8, \"outputDimension\": 8, \"finalBatchNorm\": false}}"),
            ("not JSON", "glfd"),
        ]
        for (what, text) in rejected {
            try write(text)
            expectError(.invalidConfig, what) { () throws(WeightFileError) in _ = try ModelDirectory.readConfig(from: directory) }
        }
        expectError(.unreadable, "no config.json") { () throws(WeightFileError) in _ = try ModelDirectory.readConfig(from: directory.appendingPathComponent("absent")) }
    }

    // MARK: .npy arrays

    @Test func numpyRoundTripIsBitExact() throws {
        var rng = SeededGenerator(seed: 15)
        var values = (0..<120).map { _ in rng.nextNormal() }
        values[0] = -0.0
        values[1] = Float(bitPattern: 0x7FC0_0042)
        for shape in [[2, 3, 4, 5], [120], [1, 120, 1], []] as [[Int]] {
            let array = NumpyArray(shape: shape, values: shape.isEmpty ? [values[2]] : values)
            let bytes = try NumpyFile.encode(array)
            #expect(Array(bytes.prefix(8)) == [0x93] + Array("NUMPY".utf8) + [1, 0])
            let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            #expect((10 + headerLength) % 64 == 0, "data is 64-aligned as NumPy writes it")
            #expect(bytes[10 + headerLength - 1] == UInt8(ascii: "\n"))
            let decoded = try NumpyFile.decode(bytes)
            #expect(decoded.shape == shape)
            #expect(decoded.values.map(\.bitPattern) == array.values.map(\.bitPattern))
        }
        let header = String(decoding: try NumpyFile.encode(NumpyArray(shape: [2, 3], values: Array(values.prefix(6)))).dropFirst(10), as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"))

        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("x.npy")
        let tensor = Tensor(shape: [4, 30], values: values)
        try NumpyFile.write(tensor, to: url)
        #expect(try NumpyFile.read(from: url).shape == [4, 30])
        #expect(try NumpyFile.read(from: url).values.map(\.bitPattern) == values.map(\.bitPattern))
    }

    /// A .npy file from a header written by hand, as NumPy versions old and new write them.
    private func npy(version: UInt8 = 1, header: String, data: [UInt8]) -> [UInt8] {
        let headerBytes = Array(header.utf8)
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        if version == 1 {
            bytes += [UInt8(headerBytes.count & 0xFF), UInt8(headerBytes.count >> 8)]
        } else {
            withUnsafeBytes(of: UInt32(headerBytes.count).littleEndian) { bytes += $0 }
        }
        return bytes + headerBytes + data
    }

    @Test func handBuiltNumpyHeadersParse() throws {
        let f4 = floatBytes([1.5, -2, 3.25])
        let f8 = [1.5, -2, 0.1].flatMap { (value: Double) in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }

        let plain = try NumpyFile.decode(npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", data: f4))
        #expect(plain == NumpyArray(shape: [3], values: [1.5, -2, 3.25]))

        let reordered = try NumpyFile.decode(npy(version: 2, header: "{\"shape\": (1, 3), \"descr\": \"<f8\", \"fortran_order\": False}   \n", data: f8))
        #expect(reordered.shape == [1, 3])
        #expect(reordered.values == [1.5, -2, Float(0.1)], "float64 is converted to the nearest float32")

        let python2 = try NumpyFile.decode(npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 1L)}\n", data: f4))
        #expect(python2.shape == [3, 1])

        let scalar = try NumpyFile.decode(npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': ()}\n", data: floatBytes([7])))
        #expect(scalar == NumpyArray(shape: [], values: [7]))

        let empty = try NumpyFile.decode(npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }\n", data: []))
        #expect(empty == NumpyArray(shape: [0, 5], values: []))
    }

    @Test func malformedNumpyFilesGiveTypedErrors() {
        let f4 = floatBytes([1, 2, 3])
        func header(descr: String = "<f4", fortran: String = "False", shape: String = "(3,)") -> String {
            "{'descr': '\(descr)', 'fortran_order': \(fortran), 'shape': \(shape), }\n"
        }
        let cases: [(String, WeightFileError.Code, [UInt8])] = [
            ("empty file", .truncated, []),
            ("wrong magic", .invalidHeader, Array("PK\u{03}\u{04}0123456789".utf8)),
            ("unknown version", .invalidHeader, npy(version: 9, header: header(), data: f4)),
            ("header longer than the file", .truncated, Array(npy(header: header(), data: []).prefix(20))),
            ("Fortran order", .invalidLayout, npy(header: header(fortran: "True"), data: f4)),
            ("int32", .unsupportedDType, npy(header: header(descr: "<i4"), data: f4)),
            ("big-endian float32", .unsupportedDType, npy(header: header(descr: ">f4"), data: f4)),
            ("float16", .unsupportedDType, npy(header: header(descr: "<f2", shape: "(6,)"), data: f4)),
            ("data truncated", .truncated, npy(header: header(), data: Array(f4.prefix(10)))),
            ("bytes after the data", .invalidLayout, npy(header: header(), data: f4 + [0])),
            ("missing key", .invalidHeader, npy(header: "{'descr': '<f4', 'shape': (3,)}", data: f4)),
            ("extra key", .invalidHeader, npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': True}", data: f4)),
            ("duplicate key", .invalidHeader, npy(header: "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", data: f4)),
            ("not a dict", .invalidHeader, npy(header: "[1, 2]", data: f4)),
            ("unterminated", .invalidHeader, npy(header: "{'descr': '<f4", data: f4)),
            ("negative dimension", .invalidHeader, npy(header: header(shape: "(-3,)"), data: f4)),
            ("huge dimension", .invalidHeader, npy(header: header(shape: "(99999999999999999999,)"), data: f4)),
            ("overflowing shape", .invalidShape, npy(header: header(shape: "(4294967296, 4294967296, 4)"), data: f4)),
            ("shape as list", .invalidHeader, npy(header: header(shape: "[3]"), data: f4)),
            ("text after the dict", .invalidHeader, npy(header: header() + "x", data: f4)),
        ]
        for (what, code, bytes) in cases {
            expectError(code, what) { () throws(WeightFileError) in _ = try NumpyFile.decode(bytes) }
        }

        // Random corruptions of a valid file: a typed error or a successful parse, never a crash.
        let valid = try! NumpyFile.encode(NumpyArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
        var rng = SeededGenerator(seed: 16)
        for trial in 0..<1000 {
            var bytes = valid
            if trial % 3 == 0 {
                bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
            } else {
                let position = Int(rng.next() % 80)   // the magic, lengths and header
                bytes[position] ^= UInt8(1 << (rng.next() % 8))
            }
            do { _ = try NumpyFile.decode(bytes) } catch { #expect(!error.message.isEmpty) }
        }
    }
}
