// What an answered request adds to glfd's metrics: its outcome by command, ingest's counters, and
// embed's and knn's latency.
import Foundation
import Observability
import Protocol

extension GLFDMetrics {
    func answered(_ command: Command, with reply: Reply, startedAt started: Date) {
        var errorCode: String?
        if case .failure(let error) = reply.outcome { errorCode = error.code.rawValue }
        request(command: command.name, error: errorCode)
        switch command {
        case .ingest(let images):
            if let errorCode { ingestRefused(code: errorCode) }
            else { ingested(items: images.count, bytes: images.reduce(0) { $0 + $1.bytes.count }) }
        case .embed:
            queryLatency(command: "embed", seconds: Date().timeIntervalSince(started))
        case .knn(let query):
            queryLatency(command: "knn", exact: query.exact, seconds: Date().timeIntervalSince(started))
        default:
            break
        }
    }
}
