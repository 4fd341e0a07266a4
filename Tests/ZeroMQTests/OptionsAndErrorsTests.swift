// Socket options read back what was set; failures are typed errors carrying libzmq's message.
import Foundation
import Testing
import ZeroMQ

@Suite struct OptionsAndErrorsTests {
    @Test func optionsRoundTripThroughGetsockopt() throws {
        let context = try ZMQContext(ioThreads: 2)
        let dealer = try ZMQSocket(context: context, type: .dealer)
        #expect(try dealer.get(.linger) == 0)  // ours, not libzmq's forever
        #expect(try dealer.get(.sendHighWaterMark) == 1000)  // libzmq's default
        try dealer.set(.sendHighWaterMark, to: 42)
        try dealer.set(.receiveHighWaterMark, to: 7)
        try dealer.set(.receiveTimeout, to: 250)
        try dealer.set(.sendTimeout, to: -1)
        try dealer.set(.maxMessageSize, to: 64 << 30)
        try dealer.set(.routingId, to: bytes("client-7"))
        try dealer.set(.immediate, to: true)
        try dealer.set(.tcpKeepalive, to: 1)
        try dealer.set(.tcpKeepaliveIdle, to: 60)
        #expect(try dealer.get(.sendHighWaterMark) == 42)
        #expect(try dealer.get(.receiveHighWaterMark) == 7)
        #expect(try dealer.get(.receiveTimeout) == 250)
        #expect(try dealer.get(.sendTimeout) == -1)
        #expect(try dealer.get(.maxMessageSize) == 64 << 30)
        #expect(try dealer.get(.routingId) == bytes("client-7"))
        #expect(try dealer.get(.immediate))
        #expect(try dealer.get(.tcpKeepalive) == 1)
        #expect(try dealer.get(.tcpKeepaliveIdle) == 60)
        #expect(try dealer.lastEndpoint == "")

        let router = try ZMQSocket(context: context, type: .router)
        try router.set(.zapDomain, to: "glfd")
        #expect(try router.get(.zapDomain) == "glfd")
        // ROUTER_MANDATORY can be set but libzmq 4.3 cannot read it back.
        try router.set(.routerMandatory, to: true)
        let writeOnly = #expect(throws: ZMQError.self) { try router.get(.routerMandatory) }
        #expect(writeOnly?.code == EINVAL)
        #expect(writeOnly?.operation == "zmq_getsockopt(ZMQ_ROUTER_MANDATORY)")
    }

    @Test func bindingAPortInUseFailsWithAddressInUse() throws {
        let context = try ZMQContext()
        let first = try ZMQSocket(context: context, type: .router)
        try first.bind("tcp://127.0.0.1:*")
        let endpoint = try first.lastEndpoint
        let second = try ZMQSocket(context: context, type: .router)
        let error = #expect(throws: ZMQError.self) { try second.bind(endpoint) }
        #expect(error?.code == EADDRINUSE)
        #expect(error?.message == "Address already in use")
        #expect(error?.description == "zmq_bind(\(endpoint)): Address already in use (\(EADDRINUSE))")

        // Once unbound, the port is free again (libzmq unbinds in its I/O thread, so allow a moment).
        try first.unbind(endpoint)
        var rebound = false
        for _ in 0..<50 where !rebound {
            do { try second.bind(endpoint); rebound = true } catch { Thread.sleep(forTimeInterval: 0.01) }
        }
        #expect(rebound)
    }

    @Test func badEndpointsAreTypedErrors() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .dealer)
        let noPort = #expect(throws: ZMQError.self) { try socket.bind("tcp://127.0.0.1") }
        #expect(noPort?.code == EINVAL)
        #expect(noPort?.message == "Invalid argument")
        let noProtocol = #expect(throws: ZMQError.self) { try socket.connect("carrier-pigeon://roof") }
        #expect(noProtocol?.code == EPROTONOSUPPORT)
        let notConnected = #expect(throws: ZMQError.self) { try socket.disconnect("tcp://127.0.0.1:1") }
        #expect(notConnected?.code == ENOENT)
        let notForDealers = #expect(throws: ZMQError.self) { try socket.subscribe(bytes("topic")) }
        #expect(notForDealers?.code == EINVAL)
    }

    @Test func aClosedSocketRefusesEverything() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .push)
        try socket.bind("inproc://closing")
        socket.close()
        socket.close()  // closing twice is harmless
        #expect(socket.isClosed)
        let error = #expect(throws: ZMQError.self) { try socket.send([bytes("late")]) }
        #expect(error?.code == ENOTSOCK)
        #expect(error?.operation == "zmq_send")
        #expect(throws: ZMQError.self) { try ZeroMQ.poll([(socket, .writable)], timeoutMilliseconds: 0) }
    }

    @Test func versionIsLibzmqs() {
        let parts = ZeroMQ.version.split(separator: ".").compactMap { Int($0) }
        #expect(parts.count == 3)
        #expect(parts.first == 4)
    }
}
