// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform

/// `suture process build`: from a source diff to one patch file.
///
/// 1. Run the program's own build in its source folder with a compiler
///    wrapper first on `PATH`, which adds `-ffunction-sections
///    -fdata-sections` and records every compile's folder and command line.
///    The binary this build produces is the one to run and patch later.
/// 2. Copy the source to a scratch folder and apply the diff with `patch`.
/// 3. Recompile there only the objects whose source the diff touches (all
///    of them when it touches a header), with their recorded command lines.
/// 4. Diff each pair of objects under user-space rules; refuse what cannot be
///    live-patched, all at once.
/// 5. Merge the patch objects and write one file with the manifest: the
///    binary's build-id, the functions replaced and their expected bytes.
public struct ProcessBuild {
    public struct Options: Sendable {
        public var diff: String
        public var source: String
        public var buildCommand: String
        public var binary: String
        public var output: String
        /// The suture executable, which the compiler wrapper runs.
        public var recorder: String

        public init(
            diff: String, source: String, buildCommand: String, binary: String, output: String, recorder: String
        ) {
            self.diff = diff
            self.source = source
            self.buildCommand = buildCommand
            self.binary = binary
            self.output = output
            self.recorder = recorder
        }
    }

    /// What was built.
    public struct Result: Sendable {
        public let output: String
        public let manifest: PatchManifest
        public let objects: [(object: String, source: String, changed: [String], new: [String])]
        public let binary: String

        public var json: JSON {
            .object([
                ("patch", .string(output)),
                ("name", .string(manifest.name)),
                ("binary", .string(binary)),
                ("buildID", .string(hexString(manifest.buildID))),
                (
                    "functions",
                    .array(
                        manifest.functions.map { f in
                            .object([
                                ("name", .string(f.name)), ("file", .optional(f.file)), ("size", .int(Int64(f.size))),
                            ])
                        })
                ),
                ("newFunctions", .strings(manifest.newFunctions)),
                (
                    "objects",
                    .array(
                        objects.map { o in
                            .object([
                                ("object", .string(o.object)), ("source", .string(o.source)),
                                ("changed", .strings(o.changed)), ("new", .strings(o.new)),
                            ])
                        })
                ),
            ])
        }
    }

    /// Where the wrapper's records persist between builds of the same tree:
    /// an up-to-date tree compiles nothing, so the records of the build that
    /// did compile are kept.
    public static let recordFile = ".suture-compile.json"

    let options: Options

    public init(_ options: Options) {
        self.options = options
    }

    public func run() throws(ProcessError) -> Result {
        let source = Path.absolute(options.source).normalizedPath
        guard FileSystem.isDirectory(source) else { throw ProcessError(.build, "\(options.source): not a folder") }
        let diffPath = Path.absolute(options.diff)
        guard FileSystem.exists(diffPath) else { throw ProcessError(.build, "\(options.diff): no such file") }
        let binaryPath = Path.join(source, options.binary).normalizedPath

        let scratch: TemporaryDirectory
        do { scratch = try TemporaryDirectory(prefix: "suture-process-build") } catch {
            throw error.process(.build, "scratch folder")
        }
        defer { scratch.remove() }

        // 1. The program's own build, recorded.
        let records = try runRecordedBuild(source: source, scratch: scratch.path)
        let binary: ELFFile
        let buildID: [UInt8]
        do {
            binary = try ELFFile.open(binaryPath)
            guard let id = try binary.buildID(), !id.isEmpty else {
                throw ProcessError(.build, "\(binaryPath) has no GNU build-id note; link with -Wl,--build-id")
            }
            buildID = id
        } catch let error as ProcessError {
            throw error
        } catch {
            throw ProcessError(
                .build, "the build did not produce \(binaryPath): \(error)", cause: error as? any SutureError)
        }

        // 2. A patched copy of the source.
        let patchedRoot = Path.join(scratch.path, "src")
        do {
            _ = try Command.output(["cp", "-a", source, patchedRoot])
        } catch {
            throw error.process(.build, "copy \(source)")
        }
        let touched = try applyDiff(diffPath, to: patchedRoot)
        Progress.say("suture: the diff touches \(touched.joined(separator: ", "))")

        // 3. Recompile the touched objects.
        let touchesHeader = touched.contains {
            !CompileRecord.sourceExtensions.contains(String($0.split(separator: ".").last ?? ""))
        }
        var selected: [CompileRecord] = []
        var compiledSources = Set<String>()
        for r in records {
            guard let src = r.source, src.hasPrefix(source + "/") else { continue }
            compiledSources.insert(String(src.dropFirst(source.count + 1)))
            if touchesHeader || touched.contains(String(src.dropFirst(source.count + 1))) { selected.append(r) }
        }
        for t in touched where CompileRecord.sourceExtensions.contains(String(t.split(separator: ".").last ?? "")) {
            if !compiledSources.contains(t) {
                throw ProcessError(
                    .build,
                    "\(t): the build compiled no object from it, so it cannot be patched (a new file, or a file built in one compile-and-link step: compile each source with -c)"
                )
            }
        }
        var pairs: [(original: String, patched: String, source: String)] = []
        for r in selected {
            guard let object = r.object, let src = r.source else { continue }
            guard FileSystem.exists(object) else {
                throw ProcessError(.build, "\(object): the build removed the object it compiled from \(src)")
            }
            let savedOriginal = Path.join(scratch.path, "original-\(pairs.count).o")
            do { try FileSystem.copyFile(object, savedOriginal) } catch {
                throw error.process(.build, "copy \(object)")
            }
            let patchedObject = Path.join(scratch.path, "patched-\(pairs.count).o")
            try recompile(r, sourceRoot: source, patchedRoot: patchedRoot, output: patchedObject)
            pairs.append((savedOriginal, patchedObject, String(src.dropFirst(source.count + 1))))
        }

        // 4. Diff each pair.
        let diffs: ObjectDiff.PairResults
        do {
            diffs = try ObjectDiff.run(
                pairs.map { ObjectPair(object: $0.source, original: $0.original, patched: $0.patched) },
                rules: .userSpace())
        } catch {
            throw ProcessError(.build, error.description, cause: error)
        }
        if !diffs.refusals.isEmpty {
            throw ProcessError(
                .refused,
                "\(diffs.refusals.count) change(s) cannot be live-patched; no patch written\n"
                    + diffs.refusals.map { "  \($0.object): \($0.function): \($0.reason)" }.joined(separator: "\n"),
                refusals: diffs.refusals)
        }
        var parts: [PatchMerge.Part] = []
        var summaries: [(object: String, source: String, changed: [String], new: [String])] = []
        var originals: [ObjectIndex] = []
        for (pair, result) in diffs.results {
            guard let patch = result.patch else { continue }
            let file = patch.sourceFile ?? Path.base(of: pair.object)
            parts.append(PatchMerge.Part(patch: patch, file: file))
            originals.append(result.original)
            summaries.append(
                (
                    pair.object, pair.object, patch.functions.filter { !$0.isNew }.map(\.originalName),
                    patch.functions.filter(\.isNew).map(\.originalName)
                ))
        }
        guard !parts.isEmpty else { throw ProcessError(.nothing, "\(options.diff): no functional change to patch") }

        // 5. One object and its manifest.
        var merge = try PatchMerge(parts)
        let symbols = SymbolTable(binary)
        var functions: [PatchManifest.Function] = []
        var checkProblems: [String] = []
        for (p, part) in parts.enumerated() {
            for f in part.patch.functions where !f.isNew {
                guard let symbol = merge.newSymbols[PatchMerge.key(p, f.originalName)] else { continue }
                let function = try expectedFunction(f, file: part.file, original: originals[p], newSymbol: symbol)
                if let problem = check(function, in: binary, symbols: symbols) { checkProblems.append(problem) }
                functions.append(function)
            }
        }
        if !checkProblems.isEmpty {
            throw ProcessError(
                .refused,
                "\(checkProblems.count) function(s) cannot be redirected in \(binaryPath); no patch written\n"
                    + checkProblems.map { "  \($0)" }.joined(separator: "\n"))
        }
        let name = Path.base(of: options.diff).split(separator: ".").first.map(String.init) ?? "patch"
        let manifest = PatchManifest(
            name: name, buildID: buildID, binary: binaryPath, functions: functions,
            references: merge.references,
            newFunctions: parts.flatMap { $0.patch.functions.filter(\.isNew).map(\.originalName) },
            sources: pairs.map(\.source))
        merge.addManifest(manifest)
        do {
            try ELFWriter.write(merge.object, to: options.output)
        } catch {
            throw ProcessError(.build, "write \(options.output): \(error.description)", cause: error)
        }
        return Result(output: options.output, manifest: manifest, objects: summaries, binary: binaryPath)
    }

    // MARK: - Steps

    /// Runs the build with the wrapper first on `PATH`; returns the records
    /// of this build merged over those of earlier builds of the tree.
    func runRecordedBuild(source: String, scratch: String) throws(ProcessError) -> [CompileRecord] {
        let wrappers = Path.join(scratch, "bin")
        let log = Path.join(scratch, "log")
        do {
            try FileSystem.makeDirectories(wrappers)
            try FileSystem.makeDirectories(log)
            let names = try CompileRecord.installWrappers(in: wrappers, recorder: options.recorder, log: log)
            guard !names.isEmpty else { throw ProcessError(.build, "no C compiler (cc, gcc, clang …) in PATH") }
        } catch let error as ProcessError {
            throw error
        } catch {
            throw ProcessError(.build, "compiler wrapper: \(error)", cause: error as? any SutureError)
        }
        Progress.say("suture: building in \(source): \(options.buildCommand)")
        let path = wrappers + ":" + (FileSystem.environment("PATH") ?? "/usr/bin:/bin")
        let result: CommandResult
        do {
            result = try Command.run(
                ["/bin/sh", "-c", options.buildCommand],
                environment: Command.environment(["PATH": path]),
                workingDirectory: source, capture: true,
                onOutput: { _, chunk in
                    if !Progress.quiet { try? FileSystem.writeAll(fd: 2, chunk, context: "stderr") }
                })
        } catch {
            throw error.process(.build, "run the build")
        }
        guard result.termination.succeeded else {
            throw ProcessError(.build, "the build failed (\(result.termination)): \(Command.tail(result.stderrText))")
        }
        var records = CompileRecord.read(log: log)
        // Earlier records of objects this build did not recompile.
        let saved = Path.join(source, ProcessBuild.recordFile)
        if let text = FileSystem.readTextIfPresent(saved), let json = try? JSON.parse(text) {
            let objects = Set(records.compactMap(\.object))
            for r in (json["records"]?.arrayValue ?? []).compactMap(CompileRecord.init(json:)) {
                if let o = r.object, !objects.contains(o) { records.append(r) }
            }
        }
        let compiles = records.filter { $0.object != nil }
        try? FileSystem.writeAtomically(
            saved,
            Array(
                (JSON.object([("records", .array(compiles.map(\.json)))])
                    .serialized(pretty: true) + "\n").utf8))
        guard !compiles.isEmpty else {
            throw ProcessError(
                .build,
                "the build compiled no object and no earlier record exists; clean the tree (e.g. make clean) so that every object is compiled through the wrapper"
            )
        }
        return compiles
    }

    /// Applies the diff with `patch` (`-p1`, else `-p0`); returns the touched
    /// files relative to the root.
    func applyDiff(_ diff: String, to root: String) throws(ProcessError) -> [String] {
        let text: String
        do { text = try FileSystem.readText(diff) } catch { throw error.process(.build, "read \(diff)") }
        var chosen: Int?
        for level in [1, 0] {
            let dry = try? Command.run([
                "patch", "--dry-run", "--batch", "--forward", "-p\(level)", "-d", root, "-i", diff,
            ])
            if dry?.termination.succeeded == true {
                chosen = level
                break
            }
        }
        guard let level = chosen else {
            let dry = try? Command.run(["patch", "--dry-run", "--batch", "--forward", "-p1", "-d", root, "-i", diff])
            throw ProcessError(
                .build,
                "\(diff) does not apply to the source: \(Command.tail(dry?.stdoutText ?? "") + Command.tail(dry?.stderrText ?? ""))"
            )
        }
        do {
            _ = try Command.output(["patch", "--batch", "--forward", "-p\(level)", "-d", root, "-i", diff])
        } catch {
            throw error.process(.build, "patch")
        }
        var touched: [String] = []
        for line in text.split(separator: "\n") where line.hasPrefix("+++ ") {
            var path = String(line.dropFirst(4))
            if let tab = path.firstIndex(of: "\t") { path = String(path[..<tab]) }
            path = path.trimmingWhitespace()
            if path == "/dev/null" { continue }
            let components = path.split(separator: "/", omittingEmptySubsequences: false)
            guard components.count > level else { continue }
            let relative = components.dropFirst(level).joined(separator: "/").normalizedPath
            if !touched.contains(relative) { touched.append(relative) }
        }
        guard !touched.isEmpty else { throw ProcessError(.build, "\(diff) names no file it changes") }
        return touched
    }

    /// Recompiles one recorded object in the patched copy, with its recorded
    /// command line, into `output`. Paths into the source tree point into the
    /// copy instead, the object goes to `output` (never over a file of the
    /// original build), and dependency-file options are dropped.
    func recompile(_ record: CompileRecord, sourceRoot: String, patchedRoot: String, output: String)
        throws(ProcessError)
    {
        let directory = record.directory.normalizedPath.replacingPathPrefix(sourceRoot, with: patchedRoot)
        var arguments: [String] = []
        var skip = false
        for a in record.arguments {
            if skip {
                skip = false
                continue
            }
            if a == "-o" || a == "-MF" || a == "-MT" || a == "-MQ" {
                skip = true
                continue
            }
            if a.hasPrefix("-o") || a == "-MD" || a == "-MMD" || a == "-MP" || a.hasPrefix("-MF") || a.hasPrefix("-MT")
                || a.hasPrefix("-MQ")
            {
                continue
            }
            // Absolute paths into the tree, alone or inside an option (-I/src/include).
            arguments.append(a.replacingPathPrefix(sourceRoot, with: patchedRoot))
        }
        // Same file names in strings and debug info as the original build.
        arguments += ["-ffile-prefix-map=\(patchedRoot)=\(sourceRoot)", "-o", output]
        guard let src = record.source else {
            throw ProcessError(.build, "cannot tell which source \(record.arguments.joined(separator: " ")) compiles")
        }
        Progress.say("suture: recompiling \(src.dropFirst(sourceRoot.count + 1))")
        do {
            let result = try Command.run([record.compiler] + arguments, workingDirectory: directory)
            guard result.termination.succeeded else {
                throw ProcessError(
                    .build, "recompiling \(src) after the diff failed:\n\(Command.tail(result.stderrText))")
            }
        } catch let error as ProcessError {
            throw error
        } catch {
            throw ProcessError(.build, "recompile \(src): \(error)", cause: error as? any SutureError)
        }
    }

    /// The manifest entry of a replaced function: its original bytes, with
    /// the bytes the linker fills in (relocations, and the instruction bytes
    /// it may rewrite when relaxing GOT loads) masked.
    func expectedFunction(_ f: PatchedFunction, file: String, original: ObjectIndex, newSymbol: String)
        throws(ProcessError) -> PatchManifest.Function
    {
        guard let element = original.elements.first(where: { $0.name == f.originalName && $0.kind == .function }) else {
            throw ProcessError(.build, "\(file): \(f.originalName) is not a function of the original object")
        }
        let objectFile = original.file
        let section = objectFile.sections[element.section]
        let bytes = objectFile.data(section).slice(Int(element.start)..<Int(element.end)).array
        var masked: [Range<Int>] = []
        for rs in objectFile.relocationSections where rs.target == element.section {
            for r in rs.relocations where r.offset >= element.start && r.offset < element.end {
                let at = Int(r.offset - element.start)
                let size = objectFile.architecture.kind(r.type)?.size ?? 4
                // GOTPCRELX (41) may turn `mov foo@GOTPCREL(%rip)` into `lea`,
                // REX_GOTPCRELX (42) also touches the REX byte.
                let before = r.type == 42 ? 3 : r.type == 41 ? 2 : 0
                masked.append(max(0, at - before)..<min(bytes.count, at + max(size, 1)))
            }
        }
        return PatchManifest.Function(
            name: f.originalName, file: f.isLocal ? file : nil, isLocal: f.isLocal,
            symbol: newSymbol, size: bytes.count, expected: bytes, masked: masked)
    }

    /// Why the binary's copy of a function cannot be redirected, if it cannot.
    func check(_ f: PatchManifest.Function, in binary: ELFFile, symbols: SymbolTable) -> String? {
        let entry = f.isLocal ? symbols.local(f.name, file: f.file ?? "") : symbols.globals[f.name]
        guard let entry else {
            return
                "\(f.name): not in the symbol table of \(binary.path) (inlined everywhere, removed by the linker, or a stripped binary)"
        }
        guard let actual = binary.bytes(atAddress: entry.value, count: f.size) else {
            return "\(f.name): its address 0x\(hex(entry.value)) is outside the binary's loaded segments"
        }
        if let at = f.firstMismatch(actual) {
            return
                "\(f.name): the binary's code differs from the compiled object at byte \(at) (was the program built by this build command, without LTO?)"
        }
        if let next = symbols.next(after: entry.value), next < entry.value + UInt64(X86Code.entryJumpLength) {
            return
                "\(f.name): only \(next - entry.value) bytes until the next symbol; the entry jump needs \(X86Code.entryJumpLength)"
        }
        do {
            let into = try X86Code.branchesIntoEntry(f.expected)
            if let first = into.first {
                return
                    "\(f.name): the branch at byte \(first.from) lands on byte \(first.to), inside the \(X86Code.entryJumpLength) bytes the entry jump overwrites"
            }
        } catch {
            return "\(f.name): cannot decode its instructions (\(error.description))"
        }
        return nil
    }
}

extension String {
    /// Every occurrence of the folder `prefix` (followed by `/` or the end)
    /// replaced by `replacement`.
    func replacingPathPrefix(_ prefix: String, with replacement: String) -> String {
        var out = ""
        var rest = self[...]
        while let range = rest.firstRange(of: prefix) {
            let after = rest[range.upperBound...]
            out += rest[..<range.lowerBound]
            if after.isEmpty || after.first == "/" { out += replacement } else { out += prefix }
            rest = after
        }
        return out + rest
    }
}

extension ELFFile {
    /// The file bytes behind a link-time address range, if one loaded segment
    /// holds them.
    func bytes(atAddress address: UInt64, count: Int) -> [UInt8]? {
        for ph in programHeaders where ph.type == SegmentType.load {
            guard address >= ph.virtualAddress, address + UInt64(count) <= ph.virtualAddress + ph.fileSize else {
                continue
            }
            let offset = Int(ph.offset + (address - ph.virtualAddress))
            guard offset + count <= storage.count else { return nil }
            return Array(storage.bytes[offset..<offset + count])
        }
        return nil
    }
}
