// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform
import TargetKernel
import VM

/// What `suture build` is asked to do.
public struct BuildOptions: Sendable {
    public var diffs: [String]
    public var kernel: KernelRelease
    public var source: String?
    public var kallsyms: String?
    public var name: String?
    public var replace = true
    public var outputDirectory = "."
    public var cacheRoot: String?
    public var allowCompilerMismatch = false
    /// Build even when a header change affects more than
    /// `KernelBuild.confirmationThreshold` objects.
    public var assumeYes = false
    /// Context lines `patch` may ignore per hunk (`--fuzz N`); 0 is exact.
    public var fuzz = 0

    public init(diffs: [String], kernel: KernelRelease) {
        self.diffs = diffs
        self.kernel = kernel
    }
}

/// What `suture build` made.
public struct BuildOutcome: Sendable {
    public struct ObjectSummary: Sendable {
        public let object: String
        public let target: String
        public let changed: [String]
        public let new: [String]
        /// Changed functions the author excluded (KPATCH_IGNORE_*).
        public let ignored: [String]
        /// Callbacks: `stage=function`.
        public let callbacks: [String]
        public let klpSymbols: [String]
    }

    public let modulePath: String
    public let moduleName: String
    public let release: String
    public let replace: Bool
    public let diffs: [SourceDiff]
    public let objects: [ObjectSummary]
    public let redirects: [FunctionRedirect]
    public let klpSections: [String]
    public let klpRelocations: Int
    public let phases: [(name: String, seconds: Double)]
    /// Seconds spent in Suture's own processing, outside gcc and kbuild.
    public let ownSeconds: Double
    /// Hunks that applied with fuzz or at an offset.
    public var hunks: [AppliedHunk] = []
    /// What was dropped or may need attention (added exports).
    public var warnings: [String] = []

    public var json: JSON {
        .object([
            ("module", .string(modulePath)),
            ("name", .string(moduleName)),
            ("release", .string(release)),
            ("replace", .bool(replace)),
            ("diffs", .array(diffs.map { .object([("path", .string($0.path)), ("sha256", .string($0.digest))]) })),
            ("objects", .array(objects.map {
                .object([("object", .string($0.object)), ("target", .string($0.target)),
                         ("changed", .strings($0.changed)), ("new", .strings($0.new)),
                         ("ignored", .strings($0.ignored)), ("callbacks", .strings($0.callbacks)),
                         ("klpSymbols", .strings($0.klpSymbols))])
            })),
            ("functions", .array(redirects.map {
                .object([("target", .string($0.target)), ("name", .string($0.oldName)), ("sympos", .integer($0.sympos)),
                         ("object", .string($0.object))])
            })),
            ("klpSections", .strings(klpSections)),
            ("klpRelocations", .integer(klpRelocations)),
            ("phases", .object(phases.map { ($0.name, .double(($0.seconds * 1000).rounded() / 1000)) })),
            ("ownSeconds", .double((ownSeconds * 1000).rounded() / 1000)),
            ("hunks", .array(hunks.map(\.json))),
            ("warnings", .strings(warnings)),
        ])
    }
}

/// `suture build`: apply → compile twice → diff → klp relocations → link.
public enum KernelBuild {
    public static func run(_ options: BuildOptions, progress: @escaping (String) -> Void) throws(BuildError) -> BuildOutcome {
        var timer = PhaseTimer()
        var own = 0.0
        func timed<T>(_ body: () throws(BuildError) -> T) throws(BuildError) -> T {
            let start = Clock.now()
            defer { own += Clock.now() - start }
            return try body()
        }
        guard !options.diffs.isEmpty else { throw BuildError(.usage, "no diff given") }
        let diffs = try timed { () throws(BuildError) in try options.diffs.map { (d) throws(BuildError) in try SourceDiff(path: d) } }
        let name = try moduleName(options.name ?? diffs[0].baseName)
        let moduleFile = "livepatch-\(name)"
        guard FileSystem.isDirectory(options.outputDirectory),
              let outputDirectory = try? FileSystem.realPath(options.outputDirectory) else {
            throw BuildError(.usage, "output folder \(options.outputDirectory) does not exist")
        }
        let outputPath = Path.join(outputDirectory, "\(moduleFile).ko")
        guard let headers = options.kernel.headers else {
            throw BuildError(.unsupportedChange, "the headers of \(options.kernel.release) are not installed (linux-headers-\(options.kernel.release))")
        }

        // The pristine tree.
        progress("preparing the \(options.kernel.release) source tree")
        let tree: PreparedTree
        do {
            tree = try TreeCache(root: options.cacheRoot)
                .prepare(options.kernel, source: options.source, allowCompilerMismatch: options.allowCompilerMismatch).tree
        } catch {
            throw BuildError(error.kind == .compilerMismatch || error.kind == .sourceMismatch ? .unsupportedChange : .io, error.description)
        }
        timer.lap("prepare")

        let scratch: TemporaryDirectory
        do { scratch = try TemporaryDirectory(prefix: "suture-build") } catch {
            throw BuildError(.io, error.description)
        }
        defer { scratch.remove() }

        // Apply the diffs.
        progress("applying \(diffs.map(\.path).joined(separator: ", "))")
        let applied = try timed { () throws(BuildError) in
            try DiffApplier.apply(diffs, tree: tree, scratch: Path.join(scratch.path, "sources"), fuzz: options.fuzz)
        }
        for hunk in applied.hunks { progress(hunk.description) }
        timer.lap("apply")

        // Compile every touched object, before and after.
        let pairs: [(object: String, target: String, original: String, patched: String)]
        let kpatchFlag = try KpatchHeaders.install(in: Path.join(scratch.path, "include"))
        let config: KernelConfig
        do { config = try tree.config() } catch { throw BuildError(.io, error.description) }
        do {
            pairs = try compileBoth(applied, tree: tree, scratch: scratch.path, cacheRoot: options.cacheRoot,
                                    patchedFlags: [kpatchFlag], config: config, assumeYes: options.assumeYes,
                                    progress: progress)
        } catch {
            switch error.kind {
            case .compileFailed: throw BuildError(.unsupportedChange, error.description)
            case .tooMany: throw BuildError(.refused, error.description)
            default: throw BuildError(.io, error.description)
            }
        }
        timer.lap("compile")

        // Only code this configuration builds can be patched.
        for pair in pairs {
            if case .notBuilt(let option) = KbuildMembership.of(pair.object, tree: tree.sourceDirectory, config: config) {
                throw BuildError(.unsupportedChange, "\(pair.object) is not built in \(options.kernel.release): \(option) is not set in its configuration, so there is no running code to patch")
            }
        }

        // Diff each pair under the kernel rules, with the special sections'
        // entry sizes of this kernel.
        let entrySizes = SpecialSectionProbe.entrySizes(
            headers: headers, compiler: tree.kbuild.compiler,
            cacheDirectory: OriginalObjectCache(tree: tree, cacheRoot: options.cacheRoot).directory)
        let rules = TargetRules.kernel(entrySizes: entrySizes)
        progress("comparing \(pairs.count) object(s)")
        var warnings: [String] = []
        let patches: [PatchedObject] = try timed { () throws(BuildError) in
            var refusals: [(String, Refusal)] = []
            var patches: [PatchedObject] = []
            for pair in pairs {
                let result: ObjectDiff.Result
                do {
                    result = try ObjectDiff.run(original: ELFFile.open(pair.original), patched: ELFFile.open(pair.patched),
                                                rules: pair.target == "vmlinux" ? rules : rules.forModule())
                } catch let error as PatchCoreError {
                    throw BuildError(.unsupportedChange, "\(pair.object): \(error.description)")
                } catch {
                    throw BuildError(.io, "\(pair.object): \(error)")
                }
                refusals += result.refusals.map { refusal in
                    // The body of a system call is a notrace inline that gcc may keep out of line.
                    guard refusal.symbol.hasPrefix("__do_sys_"), refusal.reason.contains("__fentry__") else { return (pair.object, refusal) }
                    return (pair.object, Refusal(symbol: refusal.symbol, reason: refusal.reason
                        + ". Hint: define the system call with KPATCH_SYSCALL_DEFINEn from #include \"kpatch-syscall.h\" instead of SYSCALL_DEFINEn"))
                }
                for export in NewExports.added(original: result.original.file, patched: result.patched.file) {
                    warnings.append(NewExports.warning(export, object: pair.object))
                    progress("warning: " + warnings[warnings.count - 1])
                }
                if let patch = result.patch {
                    patches.append(PatchedObject(object: pair.object, target: pair.target, result: result, patch: patch))
                }
            }
            guard refusals.isEmpty else {
                throw BuildError(.refused, "\(refusals.count) change(s) cannot be live-patched; no module written:\n"
                    + refusals.map { "  \($0.0): \($0.1.symbol): \($0.1.reason)" }.joined(separator: "\n"))
            }
            guard patches.contains(where: { $0.result.hasFunctionalChange }) else {
                throw BuildError(.noFunctionalChange, "no functional change: the diffs change no function of \(pairs.map(\.object).joined(separator: ", ")) (only formatting, comments or line numbers)")
            }
            return patches
        }
        timer.lap("diff")

        // Symbol positions from the target's kallsyms.
        let table = try timed { () throws(BuildError) in try kallsyms(options, progress: progress) }
        let exports = try timed { () throws(BuildError) in
            do throws(KernelError) { return try ExportedSymbols(symvers: Path.join(headers, "Module.symvers")) } catch {
                throw BuildError(.io, error.description)
            }
        }
        timer.lap("kallsyms")

        // The module.
        progress("linking \(moduleFile).ko")
        let plan = try timed { () throws(BuildError) in
            var installed: InstalledModules?
            var loadedTables: [String: ModuleSymbols] = [:]
            return try LivepatchModule.plan(patches, exports: exports, positions: SymbolPositions(
                table: table, image: RunningImage.load(options.kernel, cacheRoot: options.cacheRoot, table: table))
            ) { (module: String) throws(BuildError) -> ModuleSymbols in
                if let cached = loadedTables[module] { return cached }
                if installed == nil {
                    do throws(KernelError) { installed = try InstalledModules(options.kernel) } catch { throw BuildError(.io, error.description) }
                }
                guard let path = installed?.path(of: module) else {
                    throw BuildError(.unsupportedChange, "the module \(module) is not installed for \(options.kernel.release) (no file in \(installed?.directory ?? "/lib/modules")); is it built in this kernel's configuration?")
                }
                let table = try ModuleSymbols(module: module, path: path)
                loadedTables[module] = table
                return table
            }
        }
        var modinfo: [(String, String)] = [("suture.replace", options.replace ? "1" : "0"),
                                           ("suture.release", options.kernel.release)]
        for d in diffs { modinfo.append(("suture.diff", "\(Path.base(of: d.path)):sha256:\(d.digest)")) }
        let clearing = LivepatchModule.RelocationClearing.of(source: tree.sourceDirectory)
        if clearing == .unavailable, plan.redirects.contains(where: { $0.target != "vmlinux" }) {
            progress("warning: this kernel neither clears klp relocations when a module goes away nor has text_poke_set; a patched module removed while the patch is loaded cannot be loaded again until the patch is unloaded")
        }
        let registration = LivepatchModule.registrationSource(plan, replace: options.replace, modinfo: modinfo,
                                                              clearing: clearing)
        let linkDirectory = Path.join(scratch.path, "module")
        let compiler = tree.kbuild.compiler
        let ko = try LivepatchModule.link(plan, moduleName: moduleFile, registration: registration, headers: headers,
                                          compiler: compiler, directory: linkDirectory)
        timer.lap("link")
        let rewrite = try timed { () throws(BuildError) in try LivepatchModule.writeKlpRelocations(module: ko, exports: exports) }
        do {
            try FileSystem.copyFile(ko, outputPath + ".tmp")
            try FileSystem.rename(outputPath + ".tmp", outputPath)
        } catch {
            try? FileSystem.removeFile(outputPath + ".tmp")
            throw BuildError(.io, "cannot write \(outputPath): \(error.description)")
        }
        timer.lap("klp")
        do { try tree.requirePristine(after: "suture build") } catch { throw BuildError(.io, error.description) }

        let summaries = patches.map { p -> BuildOutcome.ObjectSummary in
            let verdicts = p.result.comparison.verdicts.filter { $0.kind == .function }
            let klp = plan.klpSymbols.filter { k in p.patch.references.contains { $0.name == k.name } }.map(\.symbolName)
            return BuildOutcome.ObjectSummary(object: p.object, target: p.target,
                                              changed: verdicts.filter { $0.status == .changed }.map(\.name).sorted(),
                                              new: verdicts.filter { $0.status == .new }.map(\.name).sorted(),
                                              ignored: verdicts.filter { $0.status == .ignored }.map(\.name).sorted(),
                                              callbacks: p.result.directives.callbacks.map { "\($0.stage.rawValue)=\($0.function)" },
                                              klpSymbols: klp)
        }
        var outcome = BuildOutcome(modulePath: outputPath, moduleName: moduleFile.replacingDashes(), release: options.kernel.release,
                                   replace: options.replace, diffs: diffs, objects: summaries, redirects: plan.redirects,
                                   klpSections: rewrite.klpSections, klpRelocations: rewrite.klpRelocations,
                                   phases: timer.phases, ownSeconds: own)
        outcome.hunks = applied.hunks
        outcome.warnings = warnings
        return outcome
    }

    /// `[a-z0-9_]`, at most 40 characters.
    static func moduleName(_ raw: String) throws(BuildError) -> String {
        var name = ""
        for c in raw.lowercased() {
            name.append(c.isASCII && (c.isLetter || c.isNumber) ? c : "_")
            if name.count == 40 { break }
        }
        guard name.contains(where: { $0 != "_" }) else {
            throw BuildError(.usage, "cannot make a module name from \"\(raw)\"; give --name")
        }
        return name
    }

    // MARK: - Compiling

    /// How many objects a header change may affect before `suture build`
    /// asks for `--yes`.
    public static let confirmationThreshold = 20
    /// How many candidates of a header change are narrowed by the compiler
    /// before asking for `--yes`.
    static let candidateThreshold = 100

    static func compileBoth(_ applied: DiffApplier.Result, tree: PreparedTree, scratch: String, cacheRoot: String?,
                            patchedFlags: [String] = [], config: KernelConfig? = nil, assumeYes: Bool = false,
                            progress: (String) -> Void) throws(KernelError)
        -> [(object: String, target: String, original: String, patched: String)] {
        let files = applied.files.map(\.path)
        let cache = OriginalObjectCache(tree: tree, cacheRoot: cacheRoot)
        var pristine: Workspace?
        defer { try? pristine?.remove() }
        func pristineWorkspace() throws(KernelError) -> Workspace {
            if let pristine { return pristine }
            let w = try Workspace(tree: tree)
            pristine = w
            return w
        }

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
            // Objects this configuration does not build have no running code.
            let keep: (String) -> Bool = { object in
                guard let config else { return true }
                if case .notBuilt = KbuildMembership.of(object, tree: tree.sourceDirectory, config: config) { return false }
                return true
            }
            let limit = assumeYes || !unmapped.contains(where: { $0.hasSuffix(".h") }) ? nil : candidateThreshold
            let mapped: [String: [String]]
            do {
                mapped = try pristineWorkspace().objects(compiling: unmapped, keep: keep, limit: limit)
            } catch where error.kind == .tooMany {
                throw KernelError(.tooMany, "\(error.description); pass --yes to narrow them with the compiler and rebuild every one that includes it")
            }
            for (file, list) in mapped {
                cache.store(objects: list, compiling: file)
                objectsOf[file] = list
            }
        }
        // In the diffs' file order whatever was cached, so that the patch's
        // klp objects (and their callbacks) come in the same order every time.
        var objects: [String] = []
        for file in files {
            for o in objectsOf[file] ?? [] where !objects.contains(o) { objects.append(o) }
        }

        let headers = files.filter { $0.hasSuffix(".h") }
        if !headers.isEmpty {
            progress("\(headers.joined(separator: ", ")) \(headers.count == 1 ? "is" : "are") included by \(objects.count) object(s): \(objects.joined(separator: ", "))")
            if objects.count > confirmationThreshold && !assumeYes {
                throw KernelError(.tooMany, "the change to \(headers.joined(separator: ", ")) affects \(objects.count) objects of \(tree.release), more than \(confirmationThreshold); each would be compiled twice and diffed. Pass --yes to build them all")
            }
        }

        // The original objects (cached: the pristine tree never changes).
        var originals: [String: String] = [:]
        var targets: [String: String] = [:]
        let missing = objects.filter { cache.object($0) == nil }
        if !missing.isEmpty {
            progress("compiling \(missing.joined(separator: ", ")) from the pristine source")
            let workspace = try pristineWorkspace()
            let built = try workspace.compile(missing)
            for object in missing {
                try cache.store(object: object, from: built[object]!, command: try workspace.compileCommand(for: object))
            }
        }
        for object in objects {
            guard let cached = cache.object(object) else {
                throw KernelError(.compileFailed, "the original \(object) is missing from \(cache.directory)")
            }
            originals[object] = cached.path
            targets[object] = try target(of: object, command: cached.command)
        }

        // The patched objects.
        progress("compiling \(objects.joined(separator: ", ")) with the change")
        let workspace = try Workspace(tree: tree, replacing: applied.files)
        defer { try? workspace.remove() }
        let patched = try PatchedCompileFailure.explaining(applied) { () throws(KernelError) in
            try workspace.compile(objects, cflags: Kbuild.defaultCFlags + patchedFlags)
        }
        var result: [(String, String, String, String)] = []
        for object in objects {
            let copy = Path.join(scratch, "patched", object)
            try copyObject(patched[object]!, to: copy)
            result.append((object, targets[object]!, originals[object]!, copy))
        }
        return result
    }

    static func copyObject(_ from: String, to: String) throws(KernelError) {
        do {
            try FileSystem.makeDirectories(Path.directory(of: to))
            try FileSystem.copyFile(from, to)
        } catch {
            throw KernelError(.compileFailed, "cannot copy \(from): \(error.description)")
        }
    }

    /// `vmlinux`, or the module an object is built into: kbuild compiles
    /// module code with `-DMODULE` and names the module in KBUILD_MODNAME.
    static func target(of object: String, command: String) throws(KernelError) -> String {
        let words = command.split(separator: " ")
        guard words.contains("-DMODULE") else { return "vmlinux" }
        for w in words where w.hasPrefix("-DKBUILD_MODNAME=") {
            var name = w.dropFirst("-DKBUILD_MODNAME=".count)
            name = name.drop { $0 == "'" || $0 == "\"" || $0 == "\\" }
            while let last = name.last, last == "'" || last == "\"" || last == "\\" { name = name.dropLast() }
            return String(name).replacingDashes()
        }
        throw KernelError(.compileFailed, "\(object) is module code, but its compile command names no KBUILD_MODNAME")
    }

    // MARK: - kallsyms

    /// `--kallsyms`, else the running target's /proc/kallsyms, else the
    /// guest's (`suture vm --kallsyms`, cached per release).
    static func kallsyms(_ options: BuildOptions, progress: (String) -> Void) throws(BuildError) -> KallsymsTable {
        do {
            if let path = options.kallsyms {
                return try KallsymsTable(text: try FileSystem.read(path), source: path)
            }
            if options.kernel.isRunning, let text = try? FileSystem.read("/proc/kallsyms") {
                let table = try KallsymsTable(text: text, source: "/proc/kallsyms")
                if table.hasAddresses { return table }
            }
            var configuration = VMConfiguration(kernel: options.kernel)
            if let root = options.cacheRoot { configuration.cacheRoot = root }
            if !FileSystem.exists(Kallsyms.cachePath(release: options.kernel.release, cacheRoot: configuration.cacheRoot)) {
                progress("reading the symbols of \(options.kernel.release) from a guest (cached afterwards)")
            }
            let (text, _) = try Kallsyms.load(configuration)
            return try KallsymsTable(text: text, source: "the guest's /proc/kallsyms")
        } catch let error as BuildError {
            throw error
        } catch let error as any SutureError {
            throw BuildError(.io, "reading kallsyms: \(error.description)")
        } catch {
            throw BuildError(.io, "reading kallsyms: \(error)")
        }
    }
}

