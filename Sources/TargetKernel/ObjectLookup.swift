// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Which objects compile a source file: candidates from Makefiles and
/// `#include` lines, confirmed by the compiler's own dependency lists.
extension Workspace {
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
    /// `limit` stops before preprocessing more candidates than that. A `.c`
    /// file's own object that `keep` drops is its answer unpreprocessed
    /// (when no other object includes the file), so that the caller can
    /// say it is not built rather than fail to compile code of another
    /// architecture.
    public func objects(
        compiling files: [String], keep: (String) -> Bool = { _ in true },
        limit: Int? = nil
    ) throws(KernelError) -> [String: [String]] {
        var candidatesOf: [String: [String]] = [:]
        var allCandidates: [String] = []
        // A changed .c file's own object that `keep` drops (this
        // configuration does not build it): named without preprocessing,
        // which may not even work for this architecture.
        var unbuiltOf: [String: String] = [:]
        // A changed .c file's own built object (not a composite): the file
        // is its source, so it needs no confirmation by preprocessing,
        // which kbuild may not even support for it (a `.i` target lacks the
        // generated headers that the `.o` target depends on).
        var ownOf: [String: String] = [:]
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
                    if !isHeader && source == target && !keep(object) {
                        unbuiltOf[target] = object
                    } else if !isHeader && source == target && !isComposite(object) {
                        ownOf[target] = object
                    } else if !candidates.contains(object), !isHeader || keep(object) {
                        candidates.append(object)
                    }
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
            if unbuiltOf[target] != nil || ownOf[target] != nil, candidates.isEmpty {
                candidatesOf[target] = []
                continue
            }
            guard !candidates.isEmpty else {
                throw KernelError(
                    .missingPiece,
                    isHeader
                        ? "no object that \(tree.release) builds includes \(target)"
                        : "no object of the \(tree.release) tree compiles \(target): no Makefile names it and no .c file includes it"
                )
            }
            candidatesOf[target] = candidates
            for c in candidates where !allCandidates.contains(c) { allCandidates.append(c) }
        }
        if let limit, allCandidates.count > limit {
            throw KernelError(
                .tooMany,
                "at least \(allCandidates.count) objects of \(tree.release) include \(files.joined(separator: ", ")) (by #include search), more than \(limit)"
            )
        }
        let preprocessed = allCandidates.map { String($0.dropLast(2)) + ".i" }
        if !preprocessed.isEmpty { _ = try compile(preprocessed) }
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
            if let own = ownOf[target] {
                result[target] = ([own] + confirmed).sorted()
                continue
            }
            if let unbuilt = unbuiltOf[target], confirmed.isEmpty {
                result[target] = [unbuilt]
                continue
            }
            guard !confirmed.isEmpty else {
                throw KernelError(
                    .missingPiece,
                    "no object of the \(tree.release) tree compiles \(target): the compiler's dependencies of \(candidates.joined(separator: ", ")) do not name it"
                )
            }
            result[target] = confirmed.sorted()
        }
        return result
    }

    /// Whether kbuild links `dir/name.o` from other objects (`name-y`,
    /// `name-objs`, `name-$(CONFIG_…)` in its folder's Makefile).
    private func isComposite(_ object: String) -> Bool {
        let stem = String(Path.base(of: object).dropLast(2))
        let dir = Path.directory(of: object)
        for makefile in ["Kbuild", "Makefile"] {
            let path = dir == "." ? Path.join(sourceDirectory, makefile) : Path.join(sourceDirectory, dir, makefile)
            guard let bytes = try? FileSystem.read(path) else { continue }
            for suffix in ["-y", "-m", "-objs"] where Workspace.containsWord(bytes, Array((stem + suffix).utf8)) {
                return true
            }
            let text = String(decoding: bytes, as: UTF8.self)
            if text.contains(stem + "-$(") { return true }
        }
        return false
    }

    private func directObject(_ cFile: String) -> String? {
        Workspace.directObject(cFile, sourceDirectory: sourceDirectory)
    }

    /// `dir/name.o` when a Makefile or Kbuild file (in the source folder
    /// `sourceDirectory`) names it: `dir`'s own (`name.o`), or one above it
    /// (`sub/name.o` of a composite module).
    public static func directObject(_ cFile: String, sourceDirectory: String) -> String? {
        KbuildObjectNames.object(compiling: cFile, root: sourceDirectory, containsWord: Workspace.containsWord)
    }

    /// Whether `word` occurs in `text` as a whole make word.
    public static func containsWord(_ text: [UInt8], _ word: [UInt8]) -> Bool {
        func isNameByte(_ b: UInt8) -> Bool {
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 || b == 45
        }
        guard text.count >= word.count else { return false }
        var i = 0
        while i + word.count <= text.count {
            if text[i] == word[0] && text[i..<i + word.count].elementsEqual(word)
                && (i == 0 || !isNameByte(text[i - 1]))
                && (i + word.count == text.count || !isNameByte(text[i + word.count]))
            {
                return true
            }
            i += 1
        }
        return false
    }

    /// The `.c` files whose `#include` lines resolve to `cFile`.
    private func includers(of cFile: String) throws(KernelError) -> [String] {
        let base = Path.base(of: cFile)
        let output = try grep(
            ["-RlF", "--include=*.c", "-e", "\(base)\"", "-e", "\(base)>"]
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
    public static func include(_ name: String, in hit: String, resolvesTo file: String) -> Bool {
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
            throw KernelError(.compileFailed, "cannot search the tree for \(what): \(error.description)", cause: error)
        }
        // grep exits 1 when nothing matches.
        guard result.termination == .exited(0) || result.termination == .exited(1) else {
            throw KernelError(.compileFailed, "grep for \(what) failed: \(Command.tail(result.stderrText, lines: 3))")
        }
        return result.stdoutText
    }

    /// Every `#include` line of the tree's `.c` and `.h` files, by the base
    /// name it includes, read with one grep.
    public struct IncludeIndex {
        /// Base name → (including file, included name as written).
        var byBase: [String: [(file: String, name: String)]] = [:]

        /// The index of `grep -RH` output: `file:line` per `#include` line.
        public init(grepOutput output: String) {
            for line in output.split(separator: "\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let file = String(line[..<colon])
                for name in Workspace.includedNames(String(line[line.index(after: colon)...])) {
                    byBase[Path.base(of: name), default: []].append((file, name))
                }
            }
        }

        /// The files whose `#include` lines resolve to `file`.
        public func includers(of file: String) -> [String] {
            var found: [String] = []
            for (hit, name) in byBase[Path.base(of: file)] ?? [] where hit != file {
                if Workspace.include(name, in: hit, resolvesTo: file) && !found.contains(hit) { found.append(hit) }
            }
            return found
        }
    }

    private func includeIndex() throws(KernelError) -> IncludeIndex {
        let output = try grep(
            ["-RHE", "--include=*.c", "--include=*.h", "^[[:space:]]*#[[:space:]]*include"]
                + searchFolders(skipping: ["samples", "scripts"]), what: "#include lines")
        return IncludeIndex(grepOutput: output)
    }

    /// The names in `#include "…"` and `#include <…>` lines.
    public static func includedNames(_ text: String) -> [String] {
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
    public static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." {
                parts.removeLast()
                continue
            }
            parts.append(part)
        }
        return parts.joined(separator: "/")
    }
}
