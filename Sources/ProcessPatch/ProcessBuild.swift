// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform

/// `suture process build`: from a source diff to one patch file.
///
/// 1. Run the program's own build in its source folder (or a Debian source
///    package's `dpkg-buildpackage`) with a compiler wrapper first on `PATH`,
///    which adds `-ffunction-sections -fdata-sections` and records every
///    compile, link and archive (see `CompilerWrapper`). The binary this
///    build produces is the one to run and patch later.
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
        /// `source` is a Debian source package, built with `dpkg-buildpackage`;
        /// `binary` is then the installed program's path or name, or empty
        /// when the packages install one program.
        public var debian: Bool

        public init(
            diff: String, source: String, buildCommand: String, binary: String, output: String, recorder: String,
            debian: Bool = false
        ) {
            self.diff = diff
            self.source = source
            self.buildCommand = debian ? DebianBuild.command : buildCommand
            self.binary = binary
            self.output = output
            self.recorder = recorder
            self.debian = debian
        }
    }

    /// What was built.
    public struct Result: Sendable {
        public let output: String
        public let manifest: PatchManifest
        public let objects: [(object: String, source: String, changed: [String], new: [String])]
        public let binary: String
        /// The Debian packages a `--deb` build made (paths).
        public var packages: [String] = []

        public var json: JSON {
            .object([
                ("patch", .string(output)),
                ("name", .string(manifest.name)),
                ("binary", .string(binary)),
                ("packages", .strings(packages)),
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

        // One build of a tree at a time: they share its records and wrappers.
        let lock: FileLock
        do {
            lock = try FileLock(
                path: Path.join(source, ProcessBuild.folder, "lock"), timeout: 3600,
                onWait: { Progress.say("suture: waiting for another process build of \(source)") })
        } catch {
            throw error.process(.build, "lock \(source)")
        }
        defer { lock.unlock() }

        let scratch: TemporaryDirectory
        do { scratch = try TemporaryDirectory(prefix: "suture-process-build") } catch {
            throw error.process(.build, "scratch folder")
        }
        defer { scratch.remove() }

        // 1. The program's own build, recorded.
        let records = try runRecordedBuild(source: source)
        let located: (binary: String, installed: String, packages: [String])
        if options.debian {
            located = try DebianBuild.locate(options.binary, package: source, records: records)
        } else {
            let path = Path.join(source, options.binary).normalizedPath
            located = (path, path, [])
        }
        let binaryPath = located.binary
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
        let compiles = Self.compiles(of: binaryPath, records: records)
        var selected: [CompileRecord] = []
        var compiledSources = Set<String>()
        for r in compiles {
            guard let src = r.source, src.hasPrefix(source + "/") else { continue }
            compiledSources.insert(String(src.dropFirst(source.count + 1)))
            if touchesHeader || touched.contains(String(src.dropFirst(source.count + 1))) { selected.append(r) }
        }
        for t in touched where CompileRecord.sourceExtensions.contains(String(t.split(separator: ".").last ?? "")) {
            if !compiledSources.contains(t) {
                throw Self.notCompiled(t, into: binaryPath, records: records, source: source)
            }
        }
        var pairs: [(original: String, patched: String, source: String)] = []
        for r in selected {
            guard let object = r.object, let src = r.source else { continue }
            let savedOriginal = Path.join(scratch.path, "original-\(pairs.count).o")
            try Self.saveOriginal(object, compiledFrom: src, records: records, to: savedOriginal)
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
            name: name, buildID: buildID, binary: located.installed, functions: functions,
            references: merge.references,
            newFunctions: parts.flatMap { $0.patch.functions.filter(\.isNew).map(\.originalName) },
            sources: pairs.map(\.source))
        merge.addManifest(manifest)
        do {
            try ELFWriter.write(merge.object, to: options.output)
        } catch {
            throw ProcessError(.build, "write \(options.output): \(error.description)", cause: error)
        }
        var result = Result(
            output: options.output, manifest: manifest, objects: summaries, binary: located.installed)
        result.packages = located.packages
        return result
    }
}
