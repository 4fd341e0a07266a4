// The one Swift client of glfd/1 against a real daemon on loopback: pipelined requests come back
// in command order, each matched to its own request by id whatever order glfd answers in; a
// refusal surfaces as glfd's typed ProtocolError; nobody listening is a typed timeout.
import Daemon
import Foundation
import GLFDClient
import GLFDTesting
import Protocol
import Testing

@Suite(.serialized) struct GLFDClientTests {
    @Test func pipelinedRepliesComeBackInCommandOrder() throws {
        var settings = testDaemonSettings(temporaryDaemonDirectory())
        settings.trainingEnabled = false
        let daemon = try GLFDaemon(settings: settings)
        daemon.start()
        defer { daemon.stop() }
        let client = try GLFDClient(endpoint: daemon.server.boundEndpoints.requests)
        let images = try cifarFiles(12).map { ImagePayload($0) }

        // Ingests (answered after a durable commit) interleaved with status (answered at once):
        // glfd answers out of order, the client puts every reply back in its request's place.
        let commands: [Command] = images.indices.flatMap { [Command.ingest([images[$0]]), .status] }
        let run = try client.pipeline(commands, inflight: 6)
        #expect(run.replies.count == commands.count && run.latencies.allSatisfy { $0 > 0 })
        var ids: [UInt64] = []
        for (command, reply) in zip(commands, run.replies) {
            if case .ingest = command {
                ids += try reply.result(as: IngestResult.self).ids
            } else {
                #expect(try reply.result(as: StatusResult.self).protocolVersion == "glfd/1")
            }
        }
        #expect(ids.count == 12 && Set(ids).count == 12)

        // A refusal is glfd's ProtocolError, with its code.
        do {
            _ = try client.result(.knn(KNNQuery(.item(999_999), k: 3, exact: true)), as: KNNResult.self)
            Issue.record("knn of an item that does not exist was answered")
        } catch let error as ProtocolError {
            #expect(error.code == .notFound || error.code == .notReady, "\(error)")
        }
    }

    @Test func nobodyListeningIsATypedTimeout() throws {
        let client = try GLFDClient(endpoint: "tcp://127.0.0.1:\(try freeLoopbackPort())", timeoutMilliseconds: 300)
        do {
            _ = try client.call(.status)
            Issue.record("a reply from nobody")
        } catch let error as GLFDClientError {
            guard case .timeout(_, 300) = error else { Issue.record("\(error)"); return }
            #expect(error.description.contains("within 0.3 s"))
        }
    }
}
