// Which files are images: the JPEG and PNG files among paths, folders searched recursively.
import Foundation

/// Whether a file's name says JPEG or PNG (.jpg, .jpeg, .png in any case).
public func isImageFileName(_ name: String) -> Bool {
    ["jpg", "jpeg", "png"].contains((name as NSString).pathExtension.lowercased())
}

/// JPEG and PNG files among `paths`, folders searched recursively, in a stable order. A named
/// file is taken whatever its extension; a path that does not exist is an error.
public func imageFiles(_ paths: [String]) throws(DatasetError) -> [String] {
    var files: [String] = []
    for path in paths {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DatasetError(message: "\(path) does not exist")
        }
        if !isDirectory.boolValue {
            files.append(path)
            continue
        }
        let found = FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? []
        files += found.filter(isImageFileName).sorted().map { path + "/" + $0 }
    }
    return files
}
