// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel

/// Objects compiled from the pristine tree, and which objects compile which
/// source file, kept per prepared tree. Both are pure functions of the
/// pristine tree, which never changes once prepared (its key includes the
/// release and the config hash), so a later build of the same file only
/// compiles the patched side.
struct OriginalObjectCache {
    let directory: String

    init(tree: PreparedTree, cacheRoot: String?) {
        directory = Path.join(CacheLocation.root(cacheRoot), "objects", tree.key)
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

    /// The cached original object and the command kbuild compiled it with.
    func object(_ object: String) -> (path: String, command: String)? {
        let path = Path.join(directory, "build", object)
        guard FileSystem.exists(path), let command = FileSystem.readTextIfPresent(path + ".command") else { return nil }
        return (path, command)
    }

    func store(object: String, from built: String, command: String) throws(KernelError) {
        let path = Path.join(directory, "build", object)
        do {
            try FileSystem.makeDirectories(Path.directory(of: path))
            try FileSystem.writeAtomically(path, try FileSystem.read(built))
            try FileSystem.writeAtomically(path + ".command", Array(command.utf8))
        } catch {
            throw KernelError(
                .compileFailed, "caching the original \(object) in \(directory): \(error.description)", cause: error)
        }
    }
}
