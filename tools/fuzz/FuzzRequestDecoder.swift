// libFuzzer entry point for glfd's protocol decoders (built together with Sources/Protocol into
// one module by tools/fuzz/run.sh, so there is no import). The input is split into frames (each a
// length byte and the bytes that follow, so the fuzzer can grow, shrink and reorder frames), then
// decoded as a request, a reply and an announcement. A trap or a sanitizer report is a bug; typed
// errors are the expected answer to garbage. A decoded request must survive encode → decode.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var frames: [[UInt8]] = []
    var i = 0
    while i < bytes.count && frames.count < 64 {
        // Length bytes ≥ 0xF0 count 64 each, so short inputs can still make long frames.
        let length = min(Int(bytes[i]) * (bytes[i] >= 0xF0 ? 64 : 1), bytes.count - i - 1)
        frames.append(Array(bytes[(i + 1)..<(i + 1 + length)]))
        i += 1 + length
    }
    // Half the inputs start with a valid version frame, so the fuzzer reaches the header parser.
    if size % 2 == 0 { frames.insert(Array("glfd/1".utf8), at: 0) }
    if case .success(let request) = Request.decode(frames) {
        guard case .success(let again) = Request.decode(request.encode()), again == request else {
            fatalError("a request does not round-trip: \(request)")
        }
    }
    _ = try? Reply.decode(frames)
    _ = try? Announcement.decode(frames)
    return 0
}
