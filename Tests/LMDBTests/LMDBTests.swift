// The LMDB wrapper against a real environment in a temporary directory: ordering, snapshots,
// aborts, typed errors with LMDB's message, and map growth.
import Foundation
import LMDB
import Testing

func temporaryDirectory(_ name: String = #function) -> String {
    let path = NSTemporaryDirectory() + "glfd-lmdb-\(name.filter(\.isLetter))-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct LMDBTests {
    @Test func idKeysIterateInNumericOrder() throws {
        let env = try LMDBEnvironment(directory: temporaryDirectory())
        let db = try env.database("ids")
        let ids: [UInt64] = [300, 1, 256, 70_000, 2, 1 << 40]
        try env.write { txn in
            for id in ids { try txn.put(db, id, Array("value \(id)".utf8)) }
        }
        let (order, value, count) = try env.read { txn in
            try txn.withCursor(db) { cursor in
                var order: [UInt64] = []
                var entry = try cursor.first()
                while let (key, _) = entry {
                    order.append(UInt64(keyBytes: key))
                    entry = try cursor.next()
                }
                let value = try txn.get(db, UInt64(256)).map { String(decoding: $0, as: UTF8.self) }
                return (order, value, try txn.count(db))
            }
        }
        #expect(order == ids.sorted())
        #expect(value == "value 256")
        #expect(count == ids.count)
        let seeked = try env.read { txn in
            try txn.withCursor(db) { cursor in
                try [257, 300, 301, 1 << 41].map { try cursor.seek(atLeast: UInt64($0)).map { UInt64(keyBytes: $0.key) } }
            }
        }
        #expect(seeked == [300, 300, 70_000, nil])
    }

    @Test func aThrowingWriteLeavesNothingBehind() throws {
        struct Refused: Error {}
        let env = try LMDBEnvironment(directory: temporaryDirectory())
        let db = try env.database("data")
        try env.write { txn in try txn.put(db, "kept", [1]) }
        #expect(throws: Refused.self) {
            try env.write { txn in
                try txn.put(db, "lost", [2])
                try txn.delete(db, "kept")
                throw Refused()
            }
        }
        let (lost, kept) = try env.read { txn in (try txn.get(db, "lost").map(Array.init), try txn.get(db, "kept").map(Array.init)) }
        #expect(lost == nil)
        #expect(kept == [1])
    }

    @Test func aReaderKeepsItsSnapshotWhileAWriterCommits() throws {
        let env = try LMDBEnvironment(directory: temporaryDirectory())
        let db = try env.database("data")
        try env.write { txn in try txn.put(db, "x", [1]) }
        let seenDuringWrite = try env.read { txn in
            // A write committed from another thread while this snapshot is open.
            let writer = Thread { try! env.write { txn in try txn.put(db, "x", [2]) } }
            writer.start()
            while !writer.isFinished { usleep(1000) }
            return try txn.get(db, "x").map(Array.init)
        }
        #expect(seenDuringWrite == [1])
        #expect(try env.read { txn in try txn.get(db, "x").map(Array.init) } == [2])
    }

    @Test func aFullMapIsATypedErrorAndGrowingItLetsTheWriteThrough() throws {
        let env = try LMDBEnvironment(directory: temporaryDirectory(), options: .init(mapSize: 64 << 10))
        let db = try env.database("data")
        let big = [UInt8](repeating: 7, count: 1 << 20)
        let error = #expect(throws: LMDBError.self) { try env.write { txn in try txn.put(db, "big", big) } }
        #expect(error?.isMapFull == true)
        #expect(error?.message.contains("MDB_MAP_FULL") == true, "\(error?.message ?? "")")
        try env.setMapSize(8 << 20)
        try env.write { txn in try txn.put(db, "big", big) }
        #expect(try env.read { txn in try txn.get(db, "big")?.count } == big.count)
        #expect(env.usage.mapSize == 8 << 20)
    }

    @Test func reservedPutsAndCursorDeletes() throws {
        let env = try LMDBEnvironment(directory: temporaryDirectory())
        let db = try env.database("data")
        try env.write { txn in
            for id in UInt64(1)...10 {
                try txn.put(db, id, reserving: 4, options: .append) { buffer in
                    buffer.storeBytes(of: UInt32(id * 11).littleEndian, as: UInt32.self)
                }
            }
            // Appending out of order is refused by LMDB, not silently misplaced.
            #expect(throws: LMDBError.self) { try txn.put(db, UInt64(5), [0], options: .append) }
        }
        try env.write { txn in
            try txn.withCursor(db) { cursor in
                while let entry = try cursor.first(), UInt64(keyBytes: entry.key) <= 3 { try cursor.deleteCurrent() }
            }
        }
        let first = try env.read { txn in
            try txn.withCursor(db) { cursor in try cursor.first().map { ($0.key.count, UInt64(keyBytes: $0.key), $0.value.loadUnaligned(as: UInt32.self)) } }
        }
        #expect(first?.1 == 4 && first?.2 == 44)
        #expect(try env.read { txn in try txn.count(db) } == 7)
    }

    @Test func openingADirectoryThatDoesNotExistIsATypedError() {
        let error = #expect(throws: LMDBError.self) {
            _ = try LMDBEnvironment(directory: "/nonexistent-glfd/\(UUID().uuidString)")
        }
        #expect(error?.code == ENOENT)
        #expect(error?.operation.hasPrefix("mdb_env_open") == true)
    }
}
