// SPDX-License-Identifier: GPL-2.0-only
import PatchCore
import Platform
import TargetKernel

/// Compiles the objects a change touches, before and after it: finds the
/// objects that compile the changed files, takes the originals from the
/// per-tree cache (compiling the missing ones in a pristine workspace) and
/// compiles the patched ones in a workspace with the diffs applied.
final class PairCompiler {
    let tree: PreparedTree
    /// The original side's replaced files (`--source-diff`), else none.
    let originals: [(path: String, contents: [UInt8])]
    let cache: OriginalObjectCache
    let progress: (String) -> Void
    private var pristine: Workspace?

    init(
        tree: PreparedTree, originals: [(path: String, contents: [UInt8])] = [], cacheRoot: String?,
        progress: @escaping (String) -> Void
    ) {
        self.tree = tree
        self.originals = originals
        self.cache = OriginalObjectCache(tree: tree, cacheRoot: cacheRoot, originals: originals)
        self.progress = progress
    }

    /// Removes the pristine workspace, if one was made.
    func finish() {
        try? pristine?.remove()
        pristine = nil
    }

    private func pristineWorkspace() throws(KernelError) -> Workspace {
        if let pristine { return pristine }
        let w = try Workspace(tree: tree, replacing: originals)
        pristine = w
        return w
    }

    /// The objects that compile `files`, in the files' order whatever was
    /// cached, so that the patch's klp objects (and their callbacks) come in
    /// the same order every time. Under a header, `keep` drops objects this
    /// configuration does not build; more than `KernelBuild.confirmationThreshold`
    /// objects need `assumeYes`.
    func objects(compiling files: [String], keep: @escaping (String) -> Bool, assumeYes: Bool)
        throws(KernelError) -> [String]
    {
        // Which objects compile the files (cached per pristine tree).
        var objectsOf: [String: [String]] = [:]
        var unmapped: [String] = []
        for file in files {
            if let known = cache.objects(compiling: file) {
                objectsOf[file] = known
            } else {
                unmapped.append(file)
            }
        }
        if !unmapped.isEmpty {
            progress("finding the objects that compile \(unmapped.joined(separator: ", "))")
            let limit =
                assumeYes || !unmapped.contains(where: { $0.hasSuffix(".h") })
                ? nil : KernelBuild.candidateThreshold
            let mapped: [String: [String]]
            do {
                mapped = try pristineWorkspace().objects(compiling: unmapped, keep: keep, limit: limit)
            } catch  where error.kind == .tooMany {
                throw KernelError(
                    .tooMany,
                    "\(error.description); pass --yes to narrow them with the compiler and rebuild every one that includes it",
                    cause: error)
            }
            for (file, list) in mapped {
                cache.store(objects: list, compiling: file)
                objectsOf[file] = list
            }
        }
        var objects: [String] = []
        for file in files {
            for o in objectsOf[file] ?? [] where !objects.contains(o) { objects.append(o) }
        }

        let headers = files.filter { $0.hasSuffix(".h") }
        if !headers.isEmpty {
            progress(
                "\(headers.joined(separator: ", ")) \(headers.count == 1 ? "is" : "are") included by \(objects.count) object(s): \(objects.joined(separator: ", "))"
            )
            if objects.count > KernelBuild.confirmationThreshold && !assumeYes {
                throw KernelError(
                    .tooMany,
                    "the change to \(headers.joined(separator: ", ")) affects \(objects.count) objects of \(tree.release), more than \(KernelBuild.confirmationThreshold); each would be compiled twice and diffed. Pass --yes to build them all"
                )
            }
        }
        return objects
    }

    /// Each object compiled from the pristine source (cached: the pristine
    /// tree never changes) and with `applied`; patched copies go to
    /// `scratch/patched`. Also returns each object's klp object.
    func pairs(_ objects: [String], applied: DiffApplier.Result, scratch: String, patchedFlags: [String])
        throws(KernelError) -> (pairs: [ObjectPair], targets: [String: KlpObject])
    {
        var originals: [String: String] = [:]
        var targets: [String: KlpObject] = [:]
        let missing = objects.filter { cache.object($0) == nil }
        if !missing.isEmpty {
            progress("compiling \(missing.joined(separator: ", ")) from the pristine source")
            let workspace = try pristineWorkspace()
            let built = try workspace.compile(missing)
            for object in missing {
                guard let path = built[object] else {
                    throw KernelError(.compileFailed, "kbuild did not report \(object)")
                }
                try cache.store(object: object, from: path, command: try workspace.compileCommand(for: object))
            }
        }
        for object in objects {
            guard let cached = cache.object(object) else {
                throw KernelError(.compileFailed, "the original \(object) is missing from \(cache.directory)")
            }
            originals[object] = cached.path
            targets[object] = try KlpObject.of(object, command: cached.command)
        }

        progress("compiling \(objects.joined(separator: ", ")) with the change")
        let workspace = try Workspace(tree: tree, replacing: applied.files)
        defer { try? workspace.remove() }
        let patched = try PatchedCompileFailure.explaining(applied) { () throws(KernelError) in
            try workspace.compile(objects, cflags: Kbuild.defaultCFlags + patchedFlags)
        }
        var pairs: [ObjectPair] = []
        for object in objects {
            guard let built = patched[object], let original = originals[object] else {
                throw KernelError(.compileFailed, "kbuild did not report \(object)")
            }
            let copy = Path.join(scratch, "patched", object)
            try Self.copyObject(built, to: copy)
            pairs.append(ObjectPair(object: object, original: original, patched: copy))
        }
        return (pairs, targets)
    }

    static func copyObject(_ from: String, to: String) throws(KernelError) {
        do {
            try FileSystem.makeDirectories(Path.directory(of: to))
            try FileSystem.copyFile(from, to)
        } catch {
            throw KernelError(.compileFailed, "cannot copy \(from): \(error.description)", cause: error)
        }
    }
}
