// Source tags as small integers: each item stores a UInt32 code, the table maps codes to the
// clients' tag strings and back, and each code keeps the rows that carry it, so a filtered search
// can scan only its own items.

struct SourceTags: Sendable {
    /// code → tag, in the order tags were first seen.
    private(set) var tags: [String] = []
    private var codes: [String: UInt32] = [:]
    /// code → rows with that code, ascending.
    private(set) var rows: [[Int32]] = []

    /// The code of `tag`, if any item ever had it.
    func code(of tag: String) -> UInt32? { codes[tag] }

    /// Bytes of its tables (the tags' characters aside: they are few and short).
    var allocatedBytes: Int { tags.allocatedBytes + codes.allocatedBytes + rows.allocatedBytes + rows.reduce(0) { $0 + $1.allocatedBytes } }

    /// The code of `tag`, made on first sight.
    mutating func intern(_ tag: String) -> UInt32 {
        if let code = codes[tag] { return code }
        let code = UInt32(tags.count)
        tags.append(tag)
        codes[tag] = code
        rows.append([])
        return code
    }

    /// Records that `row` (larger than every row recorded so far) carries `code`.
    mutating func append(row: Int, code: UInt32) {
        rows[Int(code)].append(Int32(row))
    }
}
