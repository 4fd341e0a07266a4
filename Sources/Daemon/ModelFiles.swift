// `model_files` and `model_file`: a published version's serving files for replicas that follow
// this daemon (issue 16). A version directory never changes once renamed into place, so a replica
// may read a file in chunks over many requests; if the version is pruned meanwhile, it gets
// `not_found` and moves on to a newer one.
import Foundation
import Neural
import Protocol
import Store

extension ModelVersions {
    /// What serving a version needs: the encoder's weights and their configuration. The optimiser
    /// state and the training checkpoint stay with the trainer.
    public static let servingFileNames = [ModelDirectory.configFileName, ModelDirectory.weightsFileName]

    /// The kept version `number`, or nil.
    public func version(_ number: Int) -> PublishedVersion? { all.first { $0.version == number } }
}

extension GLFDaemon {
    func modelFiles(_ number: Int, id: RequestID?) -> Reply {
        guard let version = versions.version(number) else { return .failure(id: id, Self.versionNotKept(number, versions)) }
        var files: [ModelFilesResult.File] = []
        for name in ModelVersions.servingFileNames {
            // Gone between the lookup and the read: pruned, like a version not kept.
            guard let bytes = try? [UInt8](Data(contentsOf: URL(fileURLWithPath: version.path).appendingPathComponent(name))) else {
                return .failure(id: id, Self.versionNotKept(number, versions))
            }
            files.append(ModelFilesResult.File(name: name, bytes: bytes.count, crc32: CRC32.checksum(bytes)))
        }
        return .success(id: id, ModelFilesResult(version: number, step: version.step, publishedAt: version.publishedAt, files: files))
    }

    func modelFile(_ number: Int, name: String, offset: Int, id: RequestID?) -> Reply {
        guard ModelVersions.servingFileNames.contains(name) else {
            return .failure(id: id, ProtocolError(.notFound, "no serving file \"\(name.prefix(64))\"; model_files lists \(ModelVersions.servingFileNames.joined(separator: ", "))"))
        }
        guard let version = versions.version(number),
              let file = try? FileHandle(forReadingFrom: URL(fileURLWithPath: version.path).appendingPathComponent(name)) else {
            return .failure(id: id, Self.versionNotKept(number, versions))
        }
        defer { try? file.close() }
        do {
            let size = Int(try file.seekToEnd())
            guard offset <= size else {
                return .failure(id: id, ProtocolError(.badHeader, "offset \(offset) is past the end of \(name) (\(size) bytes)"))
            }
            try file.seek(toOffset: UInt64(offset))
            let chunk = [UInt8](try file.read(upToCount: settings.server.limits.maxReplyPayloadBytes) ?? Data())
            let end = offset + chunk.count
            return .success(id: id, ModelFileChunkResult(version: number, name: name, offset: offset, bytes: chunk.count,
                                                         nextOffset: end < size ? end : nil),
                            payloads: [chunk])
        } catch {
            return .failure(id: id, Self.versionNotKept(number, versions))
        }
    }

    private static func versionNotKept(_ number: Int, _ versions: ModelVersions) -> ProtocolError {
        ProtocolError(.notFound, "version \(number) is not kept here; kept: \(versions.all.map { "\($0.version)" }.joined(separator: ", "))")
    }
}
