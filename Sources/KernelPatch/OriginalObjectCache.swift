// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel

/// Objects compiled from the pristine tree, and which objects compile which
/// source file, kept per prepared tree. Both are pure functions of the
/// pristine tree, which never changes once prepared (its key includes the
/// release and the config hash), so a later build of the same file only
/// compiles the patched side.
public struct OriginalObjectCache {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// With `originals` (`--source-diff`) the original side is the tree with
    /// those files replaced: a cache of its own, named by their digest.
    init(tree: PreparedTree, cacheRoot: String?, originals: [(path: String, contents: [UInt8])] = []) {
        var name = tree.key
        if !originals.isEmpty {
            var identity: [UInt8] = []
            for file in originals {
                identity += Array("\(file.path)\n\(file.contents.count)\n".utf8) + file.contents
            }
            name += "-srcdiff-\(SHA256.hex(identity).prefix(12))"
        }
        directory = Path.join(CacheLocation.root(cacheRoot), "objects", name)
    }

    private func mapPath(_ file: String) -> String { Path.join(directory, "map", file + ".objects") }

    func objects(compiling file: String) -> [String]? {
        guard let text = FileSystem.readTextIfPresent(mapPath(file)) else { return nil }
        let list = text.split(separator: "\n").map(String.init)
        return list.isEmpty ? nil : list
    }

    func store(objects: [String], compiling file: String) {
        let path = mapPath(file)
        try? FileSystem.makeDirectories(Path.directory(of: path))
        try? FileSystem.writeAtomically(path, Array((objects.joined(separator: "\n") + "\n").utf8))
    }

    /// The cached original object and the command kbuild compiled it with,
    /// when its SHA-256 still matches the one recorded beside it: a damaged
    /// or altered copy is not used (it would be diffed as the running code),
    /// and the object is compiled again.
    public func object(_ object: String) -> (path: String, command: String)? {
        let path = Path.join(directory, "build", object)
        guard FileSystem.exists(path), let command = FileSystem.readTextIfPresent(path + ".command"),
            let recorded = FileSystem.readTextIfPresent(path + ".sha256")?.trimmingWhitespace(),
            let digest = try? SHA256.hex(file: path), digest == recorded
        else { return nil }
        return (path, command)
    }

    public func store(object: String, from built: String, command: String) throws(KernelError) {
        let path = Path.join(directory, "build", object)
        do {
            try FileSystem.makeDirectories(Path.directory(of: path))
            let bytes = try FileSystem.read(built)
            try FileSystem.writeAtomically(path, bytes)
            try FileSystem.writeAtomically(path + ".command", Array(command.utf8))
            // Last: an entry without its digest is not used.
            try FileSystem.writeAtomically(path + ".sha256", Array((SHA256.hex(bytes) + "\n").utf8))
        } catch {
            throw KernelError(
                .compileFailed, "caching the original \(object) in \(directory): \(error.description)", cause: error)
        }
    }
}
