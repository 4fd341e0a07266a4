// Real sockets over tcp://127.0.0.1 and inproc://: the request pattern the daemon serves (ROUTER,
// with DEALER and REQ clients), announcements (PUB/SUB), timeouts, the frame size limit, polling
// several sockets from one thread, and waking a blocked thread by shutting the context down.
import Foundation
import Testing
import ZeroMQ

@Suite struct MessagingTests {
    @Test func routerAnswersDealerAndReqClients() throws {
        let context = try ZMQContext()
        let router = try socket(context, .router)
        try router.set(.routerMandatory, to: true)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:") && !endpoint.hasSuffix(":*"))

        // A DEALER sends its frames as they are; the ROUTER puts the sender's routing id in front.
        // The empty frame is the envelope delimiter a REQ would add; here the client adds it.
        let dealer = try socket(context, .dealer)
        try dealer.set(.routingId, to: bytes("dealer-1"))
        try dealer.connect(endpoint)
        let image = pattern(count: 5 << 20)
        try dealer.send([[], bytes("embed"), [], image])
        let request = try router.receive()
        #expect(request.count == 5)
        #expect(texts(Array(request[0...3])) == ["dealer-1", "", "embed", ""])
        #expect(sameBytes(request[4], image))
        try router.send([request[0], [], bytes("ok"), request[4]])
        let reply = try dealer.receive()
        #expect(texts(Array(reply[0...1])) == ["", "ok"])
        #expect(sameBytes(reply[2], image))

        // A REQ adds the empty delimiter itself and strips it from the reply; without a routing
        // id of its own the ROUTER makes one up (5 bytes, the first 0).
        let req = try socket(context, .req)
        try req.connect(endpoint)
        try req.send([bytes("hello"), []])
        let asked = try router.receive()
        #expect(asked.count == 4)
        #expect(asked[0].count == 5 && asked[0].first == 0)
        #expect(texts(Array(asked[1...])) == ["", "hello", ""])
        try router.send([asked[0], [], bytes("world")])
        #expect(texts(try req.receive()) == ["world"])
    }

    @Test func routerMandatoryReportsAnUnknownPeer() throws {
        let context = try ZMQContext()
        let router = try socket(context, .router)
        try router.set(.routerMandatory, to: true)
        try router.bind("inproc://router")
        let error = #expect(throws: ZMQError.self) { try router.send([bytes("nobody"), [], bytes("reply")]) }
        #expect(error?.isHostUnreachable == true)
        #expect(error?.message == "Host unreachable")
    }

    @Test func receiveGivesUpAfterItsTimeout() throws {
        let context = try ZMQContext()
        let pull = try socket(context, .pull, timeout: 50)
        try pull.bind("inproc://quiet")
        let start = Date()
        let error = #expect(throws: ZMQError.self) { try pull.receive() }
        let waited = Date().timeIntervalSince(start)
        #expect(error?.isTimeout == true)
        #expect(error?.code == EAGAIN)
        #expect(waited >= 0.04 && waited < 0.9)
        // dontWait fails the same way, at once.
        let now = #expect(throws: ZMQError.self) { try pull.receive(dontWait: true) }
        #expect(now?.isTimeout == true)
    }

    /// libzmq checks ZMQ_MAXMSGSIZE per frame, while decoding: a peer that sends a larger frame is
    /// disconnected and nothing of that message is delivered. Several frames that are each within
    /// the limit pass, whatever their total. The offender is not banned: it reconnects.
    @Test func maxMessageSizeDropsTheOffenderAndServesTheOthers() throws {
        let context = try ZMQContext()
        let router = try socket(context, .router, timeout: 1000)
        try router.set(.maxMessageSize, to: 1000)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint
        let polite = try socket(context, .dealer)
        try polite.set(.routingId, to: bytes("polite"))
        try polite.connect(endpoint)
        let greedy = try socket(context, .dealer)
        try greedy.set(.routingId, to: bytes("greedy"))
        try greedy.connect(endpoint)

        let frame = [UInt8](repeating: 7, count: 1000)
        try polite.send([frame, frame, frame])
        #expect(try router.receive().map(\.count) == [6, 1000, 1000, 1000])

        try greedy.send([[UInt8](repeating: 8, count: 1001)])
        try router.set(.receiveTimeout, to: 300)
        let dropped = #expect(throws: ZMQError.self) { try router.receive() }
        #expect(dropped?.isTimeout == true)

        try router.set(.receiveTimeout, to: 1000)
        try polite.send([bytes("still there?")])
        #expect(texts(try router.receive()) == ["polite", "still there?"])
        try router.send([bytes("polite"), bytes("yes")])
        #expect(texts(try polite.receive()) == ["yes"])

        // The greedy DEALER reconnects by itself (after ZMQ_RECONNECT_IVL, 100 ms by default),
        // keeping its queue, so a message within the limit gets through.
        try greedy.send([bytes("sorry")])
        #expect(texts(try router.receive()) == ["greedy", "sorry"])
    }

    @Test func subscribersGetOnlyTheirTopics() throws {
        let context = try ZMQContext()
        let publisher = try socket(context, .pub)
        try publisher.bind("tcp://127.0.0.1:*")
        let subscriber = try socket(context, .sub, timeout: 20)
        try subscriber.subscribe(bytes("model."))
        try subscriber.connect(try publisher.lastEndpoint)

        // Slow joiner: until the subscription reaches the publisher, what it sends is dropped.
        // So publish until something arrives, within a deadline.
        let deadline = Date().addingTimeInterval(2)
        var received: [[UInt8]]?
        while received == nil && Date() < deadline {
            try publisher.send([bytes("ingest.stats"), bytes("ignored")])
            try publisher.send([bytes("model.updated"), bytes("step 42")])
            do {
                received = try subscriber.receive()
            } catch {
                if !error.isTimeout { throw error }
            }
        }
        #expect(received.map(texts) == ["model.updated", "step 42"])
        // Whatever else got through is on the subscribed topic too.
        while let more = try? subscriber.receive(dontWait: true) {
            #expect(text(more[0]) == "model.updated")
        }
    }

    /// The daemon's loop: one thread waits on its ROUTER (requests) and on an inproc PAIR that a
    /// worker hands replies back on, and handles whichever is readable.
    @Test func pollReportsWhichSocketIsReadable() throws {
        let context = try ZMQContext()
        let router = try socket(context, .router)
        try router.bind("tcp://127.0.0.1:*")
        let replies = try socket(context, .pair)
        try replies.bind("inproc://replies")
        let worker = try socket(context, .pair)
        try worker.connect("inproc://replies")
        let client = try socket(context, .dealer)
        try client.connect(try router.lastEndpoint)

        let items: [(socket: ZMQSocket, events: ZMQEvents)] = [(router, .readable), (replies, .readable)]
        #expect(try ZeroMQ.poll(items, timeoutMilliseconds: 0) == [[], []])

        try worker.send([bytes("reply")])
        #expect(try ZeroMQ.poll(items, timeoutMilliseconds: 1000) == [[], .readable])
        #expect(texts(try replies.receive(dontWait: true)) == ["reply"])

        try client.send([bytes("request")])
        #expect(try ZeroMQ.poll(items, timeoutMilliseconds: 1000) == [.readable, []])
        #expect(try router.receive(dontWait: true).count == 2)

        #expect(try ZeroMQ.poll([(client, [.readable, .writable])], timeoutMilliseconds: 0) == [.writable])
        let start = Date()
        #expect(try ZeroMQ.poll(items, timeoutMilliseconds: 30) == [[], []])
        #expect(Date().timeIntervalSince(start) >= 0.02)
    }

    @Test func shuttingTheContextDownWakesABlockedThread() throws {
        let context = try ZMQContext()
        let outcome = Outcome()
        let thread = Thread {
            do {
                let pull = try ZMQSocket(context: context, type: .pull)  // waits forever
                try pull.bind("inproc://nothing-comes")
                _ = try pull.receive()
            } catch let error as ZMQError {
                outcome.set(error)
            } catch {
                Issue.record(error)
            }
            outcome.finished.signal()
        }
        thread.start()
        Thread.sleep(forTimeInterval: 0.05)
        context.shutdown()
        #expect(outcome.finished.wait(timeout: .now() + 2) == .success)
        #expect(outcome.error?.isTerminated == true)
    }
}

/// What the blocked thread saw, handed to the test's thread.
private final class Outcome: @unchecked Sendable {
    let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var stored: ZMQError?
    var error: ZMQError? { lock.withLock { stored } }
    func set(_ error: ZMQError) { lock.withLock { stored = error } }
}
