// knn by several images or vectors in one request (issue 17): each answer is the one knn gives
// for that query alone, in the request's order, under one version — up to rounding: an exact batch
// is scored by sgemm, a single query by dot products, so scores may differ in their last bits (and
// under the untrained model used here, where every score is near 0.9999, near-ties may swap).
import Daemon
import Foundation
import GLFDClient
import GLFDTesting
import Protocol
import Testing

@Suite(.serialized) struct KNNBatchTests {
    @Test func aBatchAnswersAsItsQueriesAlone() throws {
        let state = temporaryDaemonDirectory()
        defer { try? FileManager.default.removeItem(at: state) }
        let daemon = try startedServingDaemon(state)
        defer { daemon.stop() }
        let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests)
        let files = try cifarFiles(110)
        _ = try client.result(.ingest(files.prefix(100).map { ImagePayload($0) }), as: IngestResult.self)
        let queries = files.suffix(10).map { ImagePayload($0) }

        let batch = try client.result(.knn(KNNQuery(.images(queries), k: 5, exact: true)), as: KNNBatchResult.self)
        #expect(batch.results.count == 10 && batch.exact && batch.catalogItems == 100)
        for (query, answer) in zip(queries, batch.results) {
            let alone = try client.result(.knn(KNNQuery(.image(query), k: 5, exact: true)), as: KNNResult.self)
            #expect(alone.version == batch.version && alone.neighbours.count == answer.neighbours.count)
            #expect(zip(alone.neighbours, answer.neighbours).allSatisfy { abs($0.score - $1.score) < 1e-5 }, "\(alone.neighbours) vs \(answer.neighbours)")
        }
        // By vectors: the embeddings of the same images give the same answers.
        let embedded = try client.call(.embed(Array(queries)))
        let dim = try embedded.result(as: EmbedResult.self).dim
        let vectors = embedded.payloads.compactMap { VectorFrame.decode($0, dimension: dim) }
        let byVectors = try client.result(.knn(KNNQuery(.vectors(vectors), k: 5, exact: true)), as: KNNBatchResult.self)
        #expect(zip(byVectors.results, batch.results).allSatisfy { a, b in
            a.neighbours.map(\.id) == b.neighbours.map(\.id) && zip(a.neighbours, b.neighbours).allSatisfy { abs($0.score - $1.score) < 1e-5 }
        })
        // A bad image fails the whole request, naming it.
        let bad = try client.call(.knn(KNNQuery(.images([queries[0], ImagePayload([0xFF, 0xD8, 1, 2])]), k: 5)))
        guard case .failure(let error) = bad.outcome else { Issue.record("a bad image was answered"); return }
        #expect(error.code == .badImage && error.index == 1, "\(error)")
    }
}
