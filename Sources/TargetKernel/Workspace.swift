// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// A throwaway copy of a prepared tree in which source files can be
/// replaced and objects compiled, without ever writing to the tree.
///
/// This file holds the overlay; `Workspace+Compile.swift` the compile and
/// `ObjectLookup.swift` the search for the objects that compile a file.
///
/// Layout, in a private temporary folder:
/// - `src/` is the kbuild source folder: a symlink per entry of the
///   pristine `source/`. A folder that holds a replaced file becomes a real
///   folder of symlinks, level by level, so only the replaced files are
///   real. Quote includes (`#include "rt.c"`) resolve next to the including
///   file's path, so replaced headers and included `.c` files take effect.
/// - `src/_build/` is a real copy of the pristine object folder (24 MB).
///
/// Kbuild writes only into `src/_build`, so the pristine tree is read
/// through symlinks and never written. That is checked against the
/// manifest after every compile, failed ones included, and on `remove()`.
public final class Workspace: @unchecked Sendable {
    public let tree: PreparedTree
    /// kbuild on this workspace: the same variables as the prepared tree.
    public let kbuild: Kbuild
    private let directory: TemporaryDirectory
    private let lock: FileLock
    /// Whether the tree must be checked before the workspace goes away.
    var needsCheck = false
    private var removed = false
    /// Files written with `write`, relative to the source folder.
    public private(set) var replacedFiles: [String] = []

    /// The workspace's root folder.
    public var path: String { directory.path }
    /// The overlay source folder (`srctree`).
    public var sourceDirectory: String { kbuild.sourceDirectory }
    /// The object folder, where compiled objects appear.
    public var buildDirectory: String { kbuild.buildDirectory }

    /// Creates a workspace on `tree`, with `files` (path relative to the
    /// source folder → new contents) replaced.
    ///
    /// Holds a shared lock on the tree until `remove()`, so that a prepare
    /// that wants to rebuild a damaged tree waits for its users.
    public init(tree: PreparedTree, replacing files: [(path: String, contents: [UInt8])] = []) throws(KernelError) {
        self.tree = tree
        do {
            lock = try FileLock(path: tree.lockPath, timeout: 3600, shared: true) {
                Progress.say("suture: waiting for the prepare of \(tree.path) to finish …")
            }
            directory = try TemporaryDirectory(prefix: "suture-workspace")
        } catch {
            throw KernelError(.prepareFailed, "cannot create a workspace: \(error.description)", cause: error)
        }
        let source = Path.join(directory.path, "src")
        kbuild = Kbuild(
            sourceDirectory: source, compiler: tree.kbuild.compiler,
            kernelRelease: tree.kbuild.kernelRelease,
            buildUser: tree.kbuild.buildUser, buildHost: tree.kbuild.buildHost,
            root: tree.kbuild.root, binds: [directory.path, tree.path])
        do throws(KernelError) {
            try tree.requirePristine()
            try populate()
            for file in files { try write(file.path, file.contents) }
        } catch {
            directory.remove()
            lock.unlock()
            throw error
        }
    }

    deinit {
        if !removed {
            directory.remove()
            lock.unlock()
        }
    }

    /// Symlinks to the pristine top level, and a private copy of `_build`.
    private func populate() throws(KernelError) {
        let pristine = tree.sourceDirectory
        do {
            try FileSystem.makeDirectories(sourceDirectory)
            for name in try FileSystem.list(pristine) where name != Kbuild.objectFolder {
                try FileSystem.symlink(target: Path.join(pristine, name), at: Path.join(sourceDirectory, name))
            }
        } catch {
            throw KernelError(.prepareFailed, "cannot create the workspace \(path): \(error.description)", cause: error)
        }
        try KernelSource.runTool(
            ["cp", "-a", "--reflink=auto", tree.buildDirectory, buildDirectory],
            doing: "copy \(tree.buildDirectory) into the workspace")
        // The pristine copy is read-only; the workspace's must be writable.
        try KernelSource.runTool(["chmod", "-R", "u+w", buildDirectory], doing: "make \(buildDirectory) writable")
        try ToolsPaths.rewrite(in: buildDirectory, from: tree.buildDirectory + "/", to: buildDirectory + "/")
    }

    // MARK: - Replacing files

    /// Replaces (or adds) a source file, e.g. `kernel/sched/rt.c`.
    public func write(_ file: String, _ contents: [UInt8]) throws(KernelError) {
        let relative = try Workspace.treePath(file)
        try materialize(Path.directory(of: relative))
        let target = Path.join(sourceDirectory, relative)
        do throws(PlatformError) {
            if FileSystem.isDirectory(target) && FileSystem.kind(target) != .symlink {
                throw PlatformError(.invalidData, "\(relative) is a folder")
            }
            try FileSystem.removeFile(target)
            try FileSystem.write(target, contents, mode: 0o644)
        } catch {
            throw KernelError(
                .prepareFailed, "cannot write \(relative) in the workspace: \(error.description)", cause: error)
        }
        if !replacedFiles.contains(relative) { replacedFiles.append(relative) }
    }

    /// A source file as this workspace sees it: replaced, or pristine.
    public func read(_ file: String) throws(KernelError) -> [UInt8] {
        let relative = try Workspace.treePath(file)
        do {
            return try FileSystem.read(Path.join(sourceDirectory, relative))
        } catch {
            throw KernelError(.missingPiece, "\(relative): \(error.description)", cause: error)
        }
    }

    /// Turns each symlinked folder on the way to `relativeDirectory` into a
    /// real folder of symlinks; creates missing folders.
    private func materialize(_ relativeDirectory: String) throws(KernelError) {
        guard relativeDirectory != "." && !relativeDirectory.isEmpty else { return }
        var current = sourceDirectory
        for component in relativeDirectory.split(separator: "/") {
            current = Path.join(current, String(component))
            do throws(PlatformError) {
                switch FileSystem.kind(current) {
                case .symlink:
                    let target = try FileSystem.readLink(current)
                    guard FileSystem.isDirectory(target) else {
                        throw PlatformError(.invalidData, "\(current) is not a folder")
                    }
                    try FileSystem.removeFile(current)
                    try FileSystem.makeDirectories(current)
                    for name in try FileSystem.list(target) {
                        try FileSystem.symlink(target: Path.join(target, name), at: Path.join(current, name))
                    }
                case .missing:
                    try FileSystem.makeDirectories(current)
                case .directory:
                    continue
                default:
                    throw PlatformError(.invalidData, "\(current) is not a folder")
                }
            } catch {
                throw KernelError(
                    .prepareFailed, "cannot prepare \(relativeDirectory) in the workspace: \(error.description)",
                    cause: error)
            }
        }
    }

    /// A path relative to the source folder, without `..`, not in `_build`.
    public static func treePath(_ file: String) throws(KernelError) -> String {
        var parts = file.split(separator: "/").filter { $0 != "." }
        while parts.first == "" { parts.removeFirst() }
        guard !file.hasPrefix("/"), !parts.isEmpty, !parts.contains(".."),
            parts.first.map(String.init) != Kbuild.objectFolder
        else {
            throw KernelError(
                .usage,
                "\(file): expected a path inside the kernel tree, relative to its top, such as fs/proc/meminfo.c")
        }
        return parts.joined(separator: "/")
    }

    // MARK: - Ending

    func checkPristine(after what: String) throws(KernelError) {
        needsCheck = false
        try tree.requirePristine(after: what)
    }

    /// Deletes the workspace and releases the tree. Throws `not-pristine`
    /// if the tree changed since the last check (the workspace is removed
    /// all the same).
    public func remove() throws(KernelError) {
        guard !removed else { return }
        removed = true
        directory.remove()
        defer { lock.unlock() }
        if needsCheck { try checkPristine(after: "using a workspace") }
    }
}
