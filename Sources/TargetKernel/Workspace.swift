// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// A throwaway copy of a prepared tree in which source files can be
/// replaced and objects compiled, without ever writing to the tree.
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
    private var needsCheck = false
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
            throw KernelError(.prepareFailed, "cannot create a workspace: \(error.description)")
        }
        let source = Path.join(directory.path, "src")
        kbuild = Kbuild(sourceDirectory: source, compiler: tree.kbuild.compiler,
                        kernelRelease: tree.kbuild.kernelRelease,
                        buildUser: tree.kbuild.buildUser, buildHost: tree.kbuild.buildHost)
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
            throw KernelError(.prepareFailed, "cannot create the workspace \(path): \(error.description)")
        }
        try KernelSource.runTool(["cp", "-a", "--reflink=auto", tree.buildDirectory, buildDirectory],
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
            throw KernelError(.prepareFailed, "cannot write \(relative) in the workspace: \(error.description)")
        }
        if !replacedFiles.contains(relative) { replacedFiles.append(relative) }
    }

    /// Removes a source file from the workspace (a patch that deletes it).
    public func delete(_ file: String) throws(KernelError) {
        let relative = try Workspace.treePath(file)
        try materialize(Path.directory(of: relative))
        do {
            try FileSystem.removeFile(Path.join(sourceDirectory, relative))
        } catch {
            throw KernelError(.prepareFailed, "cannot delete \(relative) in the workspace: \(error.description)")
        }
    }

    /// A source file as this workspace sees it: replaced, or pristine.
    public func read(_ file: String) throws(KernelError) -> [UInt8] {
        let relative = try Workspace.treePath(file)
        do {
            return try FileSystem.read(Path.join(sourceDirectory, relative))
        } catch {
            throw KernelError(.missingPiece, "\(relative): \(error.description)")
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
                throw KernelError(.prepareFailed, "cannot prepare \(relativeDirectory) in the workspace: \(error.description)")
            }
        }
    }

    /// A path relative to the source folder, without `..`, not in `_build`.
    public static func treePath(_ file: String) throws(KernelError) -> String {
        var parts = file.split(separator: "/").filter { $0 != "." }
        while parts.first == "" { parts.removeFirst() }
        guard !file.hasPrefix("/"), !parts.isEmpty, !parts.contains(".."),
              parts.first.map(String.init) != Kbuild.objectFolder else {
            throw KernelError(.usage, "\(file): expected a path inside the kernel tree, relative to its top, such as fs/proc/meminfo.c")
        }
        return parts.joined(separator: "/")
    }

    // MARK: - Compiling

    /// Compiles kbuild targets (`fs/proc/meminfo.o`, also `.i` or `.s`) with
    /// `cflags` as `KCFLAGS`, in parallel, and returns each target's path.
    /// The pristine tree is verified afterwards, also when make fails.
    public func compile(
        _ targets: [String], cflags: [String] = Kbuild.defaultCFlags, jobs: Int = Kbuild.processors
    ) throws(KernelError) -> [String: String] {
        guard !targets.isEmpty else { return [:] }
        var relative: [String] = []
        for target in targets {
            let r = try Workspace.treePath(target)
            guard r.hasSuffix(".o") || r.hasSuffix(".i") || r.hasSuffix(".s") else {
                throw KernelError(.usage, "\(target): only objects (.o), preprocessed (.i) and assembly (.s) targets can be compiled")
            }
            relative.append(r)
        }
        needsCheck = true
        var failure: KernelError?
        do {
            try kbuild.make(relative, cflags: cflags, jobs: jobs, phase: "compile", failure: .compileFailed)
        } catch {
            failure = error
        }
        try checkPristine(after: "compiling \(relative.joined(separator: " "))")
        if let failure { throw failure }
        var result: [String: String] = [:]
        for r in relative {
            let output = Path.join(buildDirectory, r)
            guard FileSystem.exists(output) else {
                throw KernelError(.compileFailed, "make succeeded but left no \(output); is \(r) a target of this tree?")
            }
            result[r] = output
        }
        return result
    }

    /// What kbuild recorded for a target compiled in this workspace: its
    /// command line and dependencies.
    public func commandFile(for target: String) throws(KernelError) -> KbuildCommandFile {
        try KbuildCommandFile(target: try Workspace.treePath(target), buildDirectory: buildDirectory)
    }

    /// The exact compiler command kbuild used for an object compiled here.
    public func compileCommand(for object: String) throws(KernelError) -> String {
        try commandFile(for: object).command
    }

    // MARK: - Which object compiles a file

    /// The objects whose compilation reads `file`: `fs/proc/meminfo.c` →
    /// `fs/proc/meminfo.o`; `kernel/sched/rt.c` → `kernel/sched/build_policy.o`.
    ///
    /// Candidates come from the folder's Makefile (`name.o`) and from `.c`
    /// files that `#include` the file (followed a few levels up). Each
    /// candidate is then preprocessed through kbuild, and kept only if the
    /// compiler's own dependency list for it names `file`.
    public func objects(compiling file: String) throws(KernelError) -> [String] {
        try objects(compiling: [file])[try Workspace.treePath(file)] ?? []
    }

    /// `objects(compiling:)` for several files at once: all candidates are
    /// preprocessed in one parallel kbuild run. Keys are tree paths.
    ///
    /// A header (`.h`) is followed through every `.c` and `.h` file that
    /// includes it. For headers, `keep` drops candidates before they are
    /// preprocessed (objects this configuration does not build), and
    /// `limit` stops before preprocessing more candidates than that.
    public func objects(compiling files: [String], keep: (String) -> Bool = { _ in true },
                        limit: Int? = nil) throws(KernelError) -> [String: [String]] {
        var candidatesOf: [String: [String]] = [:]
        var allCandidates: [String] = []
        for file in files {
            let target = try Workspace.treePath(file)
            let isHeader = target.hasSuffix(".h")
            guard target.hasSuffix(".c") || isHeader else {
                throw KernelError(.usage, "\(file): expected a .c or .h file")
            }
            guard FileSystem.exists(Path.join(sourceDirectory, target)) else {
                throw KernelError(.missingPiece, "\(target): no such file in the tree of \(tree.release)")
            }
            var candidates: [String] = []
            var visited = Set<String>()
            var pending = [(target, 0)]
            // Under a header, one pass over the tree's #include lines.
            let index = isHeader ? try includeIndex() : nil
            while let (source, depth) = pending.popLast() {
                if let limit, candidates.count > limit { break }
                guard visited.insert(source).inserted else { continue }
                var direct: String?
                if source.hasSuffix(".c"), let object = directObject(source) {
                    direct = object
                    // A changed .c file names its object even when it is not
                    // built, so that the caller can say so.
                    if !candidates.contains(object), !isHeader || keep(object) { candidates.append(object) }
                }
                // Under a header, a .c file that kbuild compiles directly is
                // an end point; one it does not is #included somewhere.
                if isHeader && source.hasSuffix(".c") && direct != nil { continue }
                if depth < (isHeader ? 6 : 3) {
                    let found: [String]
                    if let index { found = index.includers(of: source) } else { found = try includers(of: source) }
                    for includer in found { pending.append((includer, depth + 1)) }
                }
            }
            guard !candidates.isEmpty else {
                throw KernelError(.missingPiece, isHeader
                    ? "no object that \(tree.release) builds includes \(target)"
                    : "no object of the \(tree.release) tree compiles \(target): no Makefile names it and no .c file includes it")
            }
            candidatesOf[target] = candidates
            for c in candidates where !allCandidates.contains(c) { allCandidates.append(c) }
        }
        if let limit, allCandidates.count > limit {
            throw KernelError(.tooMany, "at least \(allCandidates.count) objects of \(tree.release) include \(files.joined(separator: ", ")) (by #include search), more than \(limit)")
        }
        let preprocessed = allCandidates.map { String($0.dropLast(2)) + ".i" }
        _ = try compile(preprocessed)
        var records: [String: KbuildCommandFile] = [:]
        for (object, i) in zip(allCandidates, preprocessed) {
            records[object] = try commandFile(for: i)
            try? FileSystem.removeFile(Path.join(buildDirectory, i))
        }
        var result: [String: [String]] = [:]
        for (target, candidates) in candidatesOf {
            let confirmed = candidates.filter { object in
                guard let record = records[object] else { return false }
                return record.source == target || record.dependencies.contains(target)
            }
            guard !confirmed.isEmpty else {
                throw KernelError(.missingPiece, "no object of the \(tree.release) tree compiles \(target): the compiler's dependencies of \(candidates.joined(separator: ", ")) do not name it")
            }
            result[target] = confirmed.sorted()
        }
        return result
    }

    /// `dir/name.o` when a Makefile or Kbuild file names it: `dir`'s own
    /// (`name.o`), or one above it (`sub/name.o` of a composite module).
    private func directObject(_ cFile: String) -> String? {
        KbuildObjectNames.object(compiling: cFile, root: sourceDirectory, containsWord: Workspace.containsWord)
    }

    static func containsWord(_ text: [UInt8], _ word: [UInt8]) -> Bool {
        func isNameByte(_ b: UInt8) -> Bool {
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 || b == 45
        }
        guard text.count >= word.count else { return false }
        var i = 0
        while i + word.count <= text.count {
            if text[i] == word[0] && text[i..<i + word.count].elementsEqual(word)
                && (i == 0 || !isNameByte(text[i - 1]))
                && (i + word.count == text.count || !isNameByte(text[i + word.count])) {
                return true
            }
            i += 1
        }
        return false
    }

    /// The `.c` files whose `#include` lines resolve to `cFile`.
    private func includers(of cFile: String) throws(KernelError) -> [String] {
        let base = Path.base(of: cFile)
        let output = try grep(["-RlF", "--include=*.c", "-e", "\(base)\"", "-e", "\(base)>"]
                              + searchFolders(skipping: []), what: "#include of \(base)")
        var found: [String] = []
        for hit in output.split(separator: "\n").map(String.init) where hit != cFile {
            guard let text = FileSystem.readTextIfPresent(Path.join(sourceDirectory, hit)) else { continue }
            if Workspace.includedNames(text).contains(where: { Workspace.include($0, in: hit, resolvesTo: cFile) }) {
                found.append(hit)
            }
        }
        return found
    }

    /// Whether `#include` of `name` in `hit` can mean `file`: relative to
    /// `hit`'s folder or to one of the kernel's include folders.
    static func include(_ name: String, in hit: String, resolvesTo file: String) -> Bool {
        guard name.hasSuffix(Path.base(of: file)) else { return false }
        return [Path.directory(of: hit), "include", "include/uapi", "arch/x86/include", "arch/x86/include/uapi"]
            .contains { Workspace.normalize(Path.join($0, name)) == file }
    }

    /// The tree's top folders that hold sources, without the build folder,
    /// documentation, tools and licences, and without `skipping`.
    private func searchFolders(skipping: [String]) -> [String] {
        let skipped = [Kbuild.objectFolder, "Documentation", "tools", "LICENSES"] + skipping
        return ((try? FileSystem.list(sourceDirectory)) ?? []).filter {
            !skipped.contains($0) && FileSystem.isDirectory(Path.join(sourceDirectory, $0))
        }
    }

    /// Runs grep in the source folder; no match is an empty result.
    private func grep(_ arguments: [String], what: String) throws(KernelError) -> String {
        let result: CommandResult
        do {
            result = try Command.run(["grep"] + arguments, workingDirectory: sourceDirectory)
        } catch {
            throw KernelError(.compileFailed, "cannot search the tree for \(what): \(error.description)")
        }
        // grep exits 1 when nothing matches.
        guard result.termination == .exited(0) || result.termination == .exited(1) else {
            throw KernelError(.compileFailed, "grep for \(what) failed: \(Command.tail(result.stderrText, lines: 3))")
        }
        return result.stdoutText
    }

    /// Every `#include` line of the tree's `.c` and `.h` files, by the base
    /// name it includes, read with one grep.
    struct IncludeIndex {
        /// Base name → (including file, included name as written).
        var byBase: [String: [(file: String, name: String)]] = [:]

        func includers(of file: String) -> [String] {
            var found: [String] = []
            for (hit, name) in byBase[Path.base(of: file)] ?? [] where hit != file {
                if Workspace.include(name, in: hit, resolvesTo: file) && !found.contains(hit) { found.append(hit) }
            }
            return found
        }
    }

    private func includeIndex() throws(KernelError) -> IncludeIndex {
        let output = try grep(["-RHE", "--include=*.c", "--include=*.h", "^[[:space:]]*#[[:space:]]*include"]
                              + searchFolders(skipping: ["samples", "scripts"]), what: "#include lines")
        var index = IncludeIndex()
        for line in output.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let file = String(line[..<colon])
            for name in Workspace.includedNames(String(line[line.index(after: colon)...])) {
                index.byBase[Path.base(of: name), default: []].append((file, name))
            }
        }
        return index
    }

    /// The names in `#include "…"` and `#include <…>` lines.
    static func includedNames(_ text: String) -> [String] {
        var names: [String] = []
        for line in text.split(separator: "\n") {
            var rest = line.drop { $0 == " " || $0 == "\t" }
            guard rest.first == "#" else { continue }
            rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" }
            guard rest.hasPrefix("include") else { continue }
            rest = rest.dropFirst(7).drop { $0 == " " || $0 == "\t" }
            guard let open = rest.first, open == "\"" || open == "<" else { continue }
            let close: Character = open == "\"" ? "\"" : ">"
            let body = rest.dropFirst()
            if let end = body.firstIndex(of: close) { names.append(String(body[..<end])) }
        }
        return names
    }

    /// Resolves `.` and `..` in a relative path.
    static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." { parts.removeLast(); continue }
            parts.append(part)
        }
        return parts.joined(separator: "/")
    }

    // MARK: - Ending

    private func checkPristine(after what: String) throws(KernelError) {
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

extension PreparedTree {
    /// Compiles `objects` in a throwaway workspace with `files` replaced,
    /// copies them into `destination` (keeping their relative paths) and
    /// returns object → copied path.
    public func compile(
        _ objects: [String], replacing files: [(path: String, contents: [UInt8])] = [],
        into destination: String, cflags: [String] = Kbuild.defaultCFlags
    ) throws(KernelError) -> [String: String] {
        let workspace = try Workspace(tree: self, replacing: files)
        let built = try workspace.compile(objects, cflags: cflags)
        var copied: [String: String] = [:]
        do {
            for (object, path) in built {
                let target = Path.join(destination, object)
                try FileSystem.makeDirectories(Path.directory(of: target))
                try FileSystem.copyFile(path, target)
                copied[object] = target
            }
        } catch {
            throw KernelError(.compileFailed, "cannot copy objects to \(destination): \(error.description)")
        }
        try workspace.remove()
        return copied
    }

    /// The objects that compile `file`, found in a throwaway workspace.
    public func objects(compiling file: String) throws(KernelError) -> [String] {
        let workspace = try Workspace(tree: self)
        let objects = try workspace.objects(compiling: file)
        try workspace.remove()
        return objects
    }
}
