// An exact index written to disk reads back as the same index (ids, sources, vectors, answers), and
// every damaged or foreign file is a typed error rather than a wrong answer.
import Foundation
@testable import Index
import Neural
import Testing

@Suite struct ExactIndexFileTests {
    func sampleIndex() -> ExactIndex {
        let vectors = gaussianVectors(count: 300, dimension: 24, seed: 7)
        var builder = ExactIndex.Builder(dimension: 24, version: 12)
        for (row, vector) in vectors.enumerated() {
            builder.append(id: UInt64(row * 3 + 1), vector: vector, source: ["", "cam-a", "crawler ü"][row % 3])
        }
        return builder.build()
    }

    func temporaryFile() -> URL {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("glfd-index-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("catalog.index")
    }

    @Test func anIndexReadsBackAsItWasWritten() throws {
        let index = sampleIndex(), file = temporaryFile()
        try index.write(to: file)
        let read = try ExactIndex(contentsOf: file)
        #expect(read.version == 12 && read.dimension == 24 && read.ids == index.ids)
        #expect(read.ids.map { read.source(of: $0) } == index.ids.map { index.source(of: $0) })
        #expect(zip(read.vectors, index.vectors).allSatisfy { abs($0 - $1) <= 1e-6 })
        let query = gaussianVectors(count: 1, dimension: 24, seed: 99)[0]
        #expect(read.search(query, k: 10, source: "cam-a").map(\.id) == index.search(query, k: 10, source: "cam-a").map(\.id))
        // No temporary file is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: file.deletingLastPathComponent().path) == ["catalog.index"])
    }

    @Test func anEmptyIndexRoundTrips() throws {
        let file = temporaryFile()
        try ExactIndex.Builder(dimension: 8, version: 3).build().write(to: file)
        let read = try ExactIndex(contentsOf: file)
        #expect(read.count == 0 && read.dimension == 8 && read.version == 3)
    }

    @Test func damagedFilesAreTypedErrors() throws {
        let file = temporaryFile()
        try sampleIndex().write(to: file)
        let good = try [UInt8](Data(contentsOf: file))
        var flipped = good
        flipped[good.count / 2] ^= 0x10
        let damaged: [[UInt8]] = [[], Array(good.prefix(5)), Array(good.prefix(good.count - 9)), flipped,
                                  Array("not an index at all, just text".utf8)]
        for bytes in damaged {
            try Data(bytes).write(to: file)
            #expect(throws: IndexFileError.self) { try ExactIndex(contentsOf: file) }
        }
        let missing = file.deletingLastPathComponent().appendingPathComponent("absent.index")
        #expect { try ExactIndex(contentsOf: missing) } throws: { ($0 as? IndexFileError).map { if case .io = $0 { true } else { false } } ?? false }
    }
}
