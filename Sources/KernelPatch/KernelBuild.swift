// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform
import TargetKernel

/// `suture build`, as a list of named phases on one `BuildContext`:
/// apply diffs → compile pairs → diff pairs → plan module → link → write
/// klp relocations → copy out. Each phase takes the previous one's output
/// and translates its own errors.
public enum KernelBuild {
    public static func run(_ options: BuildOptions, progress: @escaping (String) -> Void) throws(BuildError)
        -> BuildOutcome
    {
        // The key is checked before the build, not after minutes of it.
        let signer = try options.signing.map { key throws(BuildError) in try ModuleSigner(key, kernel: options.kernel) }
        let context = try BuildContext(options, progress: progress)
        defer {
            if options.keepScratch {
                context.scratch.keep()
                Progress.warn("suture: kept the scratch folder \(context.scratch.path)")
            } else {
                context.scratch.remove()
            }
        }
        let applied = try context.phase("apply", own: true) { () throws(BuildError) in try applyDiffs(context) }
        let compiled = try context.phase("compile") { () throws(BuildError) in try compilePairs(context, applied) }
        let patches = try context.phase("diff", own: true) { () throws(BuildError) in try diffPairs(context, compiled) }
        let symbols = try context.phase("kallsyms", own: true) { () throws(BuildError) in try readSymbols(context) }
        let plan = try context.phase("plan", own: true) { () throws(BuildError) in
            try planModule(context, patches, symbols)
        }
        var verification: [RunPre.Verification] = []
        if context.options.verify {
            verification = try context.phase("verify", own: true) { () throws(BuildError) in
                try verify(context, patches, plan, symbols)
            }
        } else {
            context.progress(
                "warning: --no-verify: the original code of the \(plan.redirects.count) replaced function(s) and of the functions the patch refers to is not compared with the code \(context.options.kernel.release) ships; a source, configuration or compiler that is not the kernel's goes unnoticed"
            )
        }
        let ko = try context.phase("link") { () throws(BuildError) in try link(context, plan) }
        let rewrite = try context.phase("klp") { () throws(BuildError) in
            let rewrite = try context.timed { () throws(BuildError) in
                try LivepatchModule.writeKlpRelocations(module: ko, exports: symbols.exports)
            }
            if context.options.verify {
                try RunPre.attach(
                    verification, imageText: symbols.image?.file.section(named: ".text")?.address, to: ko)
            }
            if let signer {
                progress("signing with \(signer.key.certificate) (\(signer.hashAlgorithm), \(signer.signFile))")
                try signer.sign(ko)
            }
            try copyOut(context, ko)
            return rewrite
        }
        do { try context.tree.requirePristine(after: "suture build") } catch {
            throw BuildError(.io, error.description, cause: error)
        }
        var result = outcome(context, applied: applied, patches: patches, plan: plan, rewrite: rewrite)
        result.signedWith = signer.map { ($0.key.certificate, $0.hashAlgorithm) }
        result.verification = context.options.verify ? verification : nil
        return result
    }

    /// `[a-z0-9_]`, at most 40 characters.
    public static func moduleName(_ raw: String) throws(BuildError) -> String {
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

    /// How many objects a header change may affect before `suture build`
    /// asks for `--yes`.
    public static let confirmationThreshold = 20
    /// How many candidates of a header change are narrowed by the compiler
    /// before asking for `--yes`.
    static let candidateThreshold = 100

    // MARK: - Phases

    /// The diffs applied to copies of the files they touch; `--source-diff`
    /// diffs first, and alone for the original side.
    static func applyDiffs(_ context: BuildContext) throws(BuildError) -> DiffApplier.Result {
        var originals: [(path: String, contents: [UInt8])] = []
        if !context.sourceDiffs.isEmpty {
            context.progress(
                "applying the source diffs \(context.sourceDiffs.map(\.path).joined(separator: ", ")) to the original side"
            )
            originals =
                try DiffApplier.apply(
                    context.sourceDiffs, tree: context.tree, scratch: Path.join(context.scratch.path, "original"),
                    fuzz: context.options.fuzz
                ).files
        }
        context.progress("applying \(context.diffs.map(\.path).joined(separator: ", "))")
        var applied = try DiffApplier.apply(
            context.sourceDiffs + context.diffs, tree: context.tree,
            scratch: Path.join(context.scratch.path, "sources"),
            fuzz: context.options.fuzz)
        if !context.sourceDiffs.isEmpty {
            applied.originals = originals
            var own: [String] = []
            for file in context.diffs.flatMap(\.files) where !own.contains(file) { own.append(file) }
            applied.patchFiles = own
        }
        for hunk in applied.hunks { context.progress(hunk.description) }
        return applied
    }

    /// Every touched object, compiled before and after, and its klp object.
    /// Only code this configuration builds can be patched: that is checked
    /// before anything is compiled.
    static func compilePairs(_ context: BuildContext, _ applied: DiffApplier.Result)
        throws(BuildError) -> (pairs: [ObjectPair], targets: [String: KlpObject])
    {
        func translated(_ error: KernelError) -> BuildError {
            switch error.kind {
            case .compileFailed: BuildError(.unsupportedChange, error.description, cause: error)
            case .tooMany: BuildError(.refused, error.description, cause: error)
            default: BuildError(.io, error.description, cause: error)
            }
        }
        let tree = context.tree
        let config = context.config
        let compiler = PairCompiler(
            tree: tree, originals: applied.originals, cacheRoot: context.options.cacheRoot, progress: context.progress)
        defer { compiler.finish() }
        let objects: [String]
        do {
            objects = try compiler.objects(
                compiling: applied.patchFiles,
                keep: { object in
                    if case .notBuilt = KbuildMembership.of(object, tree: tree.sourceDirectory, config: config) {
                        return false
                    }
                    return true
                }, assumeYes: context.options.assumeYes)
        } catch {
            throw translated(error)
        }
        for object in objects {
            if case .notBuilt(let option) = KbuildMembership.of(object, tree: tree.sourceDirectory, config: config) {
                throw BuildError(
                    .unsupportedChange,
                    "\(object) is not built in \(context.options.kernel.release): \(option) is not set in its configuration, so there is no running code to patch"
                )
            }
        }
        let kpatchFlag = try KpatchHeaders.install(in: Path.join(context.scratch.path, "include"))
        do {
            return try compiler.pairs(
                objects, applied: applied, scratch: context.scratch.path, patchedFlags: [kpatchFlag])
        } catch {
            throw translated(error)
        }
    }

    /// Each pair diffed under the kernel rules, with the special sections'
    /// entry sizes of this kernel; every refusal of every pair at once.
    static func diffPairs(_ context: BuildContext, _ compiled: (pairs: [ObjectPair], targets: [String: KlpObject]))
        throws(BuildError) -> [PatchedObject]
    {
        let entrySizes = SpecialSectionProbe.entrySizes(
            headers: context.headers, compiler: context.tree.kbuild.compiler, root: context.tree.buildRoot,
            cacheDirectory: OriginalObjectCache(tree: context.tree, cacheRoot: context.options.cacheRoot).directory)
        context.progress("comparing \(compiled.pairs.count) object(s)")
        let diffs: ObjectDiff.PairResults
        do {
            let rules = TargetRules.kernel(entrySizes: entrySizes)
            diffs = try ObjectDiff.run(compiled.pairs) { pair in
                compiled.targets[pair.object]?.isModule == true ? rules.forModule() : rules
            }
        } catch {
            throw BuildError(error.kind == .unreadable ? .io : .unsupportedChange, error.description, cause: error)
        }
        let refusals = diffs.refusals.map { refusal in
            // The body of a system call is a notrace inline that gcc may keep out of line.
            guard refusal.function.hasPrefix("__do_sys_"), refusal.reason.contains("__fentry__") else { return refusal }
            return RefusedChange(
                object: refusal.object, function: refusal.function,
                reason: refusal.reason
                    + ". Hint: define the system call with KPATCH_SYSCALL_DEFINEn from #include \"kpatch-syscall.h\" instead of SYSCALL_DEFINEn"
            )
        }
        guard refusals.isEmpty else { throw BuildError.refused(refusals) }
        var patches: [PatchedObject] = []
        for (pair, result) in diffs.results {
            for export in NewExports.added(original: result.original.file, patched: result.patched.file) {
                let warning = NewExports.warning(export, object: pair.object)
                context.warnings.append(warning)
                context.progress("warning: " + warning)
            }
            guard let patch = result.patch, let target = compiled.targets[pair.object] else { continue }
            patches.append(PatchedObject(object: pair.object, target: target, result: result, patch: patch))
        }
        guard patches.contains(where: { $0.result.hasFunctionalChange }) else {
            throw BuildError(
                .noFunctionalChange,
                "no functional change: the diffs change no function of \(compiled.pairs.map(\.object).joined(separator: ", ")) (only formatting, comments or line numbers)"
            )
        }
        return patches
    }

    /// What the module plan resolves symbols against.
    struct Symbols {
        /// Symbol positions from the target's kallsyms.
        let table: KallsymsTable
        let exports: ExportedSymbols
        /// The vmlinux of the target's bzImage, nil when it cannot be had.
        let image: RunningImage?
    }

    static func readSymbols(_ context: BuildContext) throws(BuildError) -> Symbols {
        let table = try kallsyms(context.options, progress: context.progress)
        do throws(KernelError) {
            return Symbols(
                table: table, exports: try ExportedSymbols(symvers: Path.join(context.headers, "Module.symvers")),
                image: RunningImage.load(context.options.kernel, cacheRoot: context.options.cacheRoot, table: table))
        } catch {
            throw BuildError(.io, error.description, cause: error)
        }
    }

    /// Who resolves each reference, with the symbols of patched modules
    /// read from their installed files when first needed.
    static func planModule(_ context: BuildContext, _ patches: [PatchedObject], _ symbols: Symbols)
        throws(BuildError) -> LivepatchModule.Plan
    {
        let kernel = context.options.kernel
        var installed: InstalledModules?
        var loadedTables: [String: ModuleSymbols] = [:]
        return try LivepatchModule.plan(
            patches, exports: symbols.exports,
            positions: SymbolPositions(table: symbols.table, image: symbols.image)
        ) { (module: String) throws(BuildError) -> ModuleSymbols in
            if let cached = loadedTables[module] { return cached }
            if installed == nil {
                do throws(KernelError) { installed = try InstalledModules(kernel) } catch {
                    throw BuildError(.io, error.description, cause: error)
                }
            }
            guard let path = installed?.path(of: module) else {
                throw BuildError(
                    .unsupportedChange,
                    "the module \(module) is not installed for \(kernel.release) (no file in \(installed?.directory ?? "/lib/modules")); is it built in this kernel's configuration?"
                )
            }
            let table = try ModuleSymbols(module: module, path: path)
            loadedTables[module] = table
            return table
        }
    }

    /// The registration code, linked by kbuild with the patch objects.
    static func link(_ context: BuildContext, _ plan: LivepatchModule.Plan) throws(BuildError) -> String {
        let options = context.options
        for warning in plan.warnings {
            context.warnings.append(warning)
            context.progress("warning: " + warning)
        }
        context.progress("linking \(context.moduleFile).ko")
        var modinfo: [(String, String)] = [
            ("suture.replace", options.replace ? "1" : "0"),
            ("suture.release", options.kernel.release),
        ]
        for d in context.diffs { modinfo.append(("suture.diff", "\(Path.base(of: d.path)):sha256:\(d.digest)")) }
        if let description = options.description { modinfo.append(("suture.description", description)) }
        for cve in options.cves { modinfo.append(("suture.cve", cve)) }
        for r in plan.redirects { modinfo.append(("suture.function", "\(r.target.name):\(r.oldName),\(r.sympos)")) }
        let clearing = LivepatchModule.RelocationClearing.of(source: context.tree.sourceDirectory)
        if clearing == .unavailable, plan.redirects.contains(where: { $0.target.isModule }) {
            context.progress(
                "warning: this kernel neither clears klp relocations when a module goes away nor has text_poke_set; a patched module removed while the patch is loaded cannot be loaded again until the patch is unloaded"
            )
        }
        let registration = LivepatchModule.registrationSource(
            plan, replace: options.replace, modinfo: modinfo,
            clearing: clearing)
        return try LivepatchModule.link(
            plan, moduleName: context.moduleFile, registration: registration,
            headers: context.headers, compiler: context.tree.kbuild.compiler, root: context.tree.buildRoot,
            delayedObjtool: KernelBuild.delaysObjtool(context.tree),
            directory: Path.join(context.scratch.path, "module"))
    }

    /// The module into the output folder, whole or not at all.
    static func copyOut(_ context: BuildContext, _ ko: String) throws(BuildError) {
        let outputPath = context.outputPath
        do {
            try FileSystem.makeDirectories(Path.directory(of: outputPath))
            try AtomicFile.write(outputPath, try FileSystem.read(ko), mode: 0o644)
        } catch {
            throw BuildError(.io, "cannot write \(outputPath): \(error.description)", cause: error)
        }
    }

    static func outcome(
        _ context: BuildContext, applied: DiffApplier.Result, patches: [PatchedObject],
        plan: LivepatchModule.Plan, rewrite: LivepatchModule.Rewrite
    ) -> BuildOutcome {
        let summaries = patches.map { p -> BuildOutcome.ObjectSummary in
            let verdicts = p.result.comparison.verdicts.filter { $0.kind == .function }
            let klp = plan.klpSymbols.filter { k in p.patch.references.contains { $0.name == k.name } }.map(
                \.symbolName)
            return BuildOutcome.ObjectSummary(
                object: p.object, target: p.target.name,
                changed: verdicts.filter { $0.status == .changed }.map(\.name).sorted(),
                new: verdicts.filter { $0.status == .new }.map(\.name).sorted(),
                ignored: verdicts.filter { $0.status == .ignored }.map(\.name).sorted(),
                callbacks: p.result.directives.callbacks.map { "\($0.stage.rawValue)=\($0.function)" },
                klpSymbols: klp)
        }
        let options = context.options
        var outcome = BuildOutcome(
            modulePath: context.outputPath, moduleName: context.moduleFile.replacingDashes(),
            release: options.kernel.release, replace: options.replace, diffs: context.diffs,
            objects: summaries, redirects: plan.redirects,
            klpSections: rewrite.klpSections, klpRelocations: rewrite.klpRelocations,
            phases: context.timer.phases, ownSeconds: context.own)
        outcome.hunks = applied.hunks
        outcome.sourceDiffs = context.sourceDiffs
        outcome.warnings = context.warnings
        outcome.description = options.description
        outcome.cves = options.cves
        if options.keepScratch { outcome.scratch = context.scratch.path }
        outcome.relocationClearing =
            LivepatchModule.RelocationClearing.of(source: context.tree.sourceDirectory).rawValue
        outcome.buildRoot = context.tree.buildRoot?.path
        return outcome
    }
}

extension KernelBuild {
    /// Whether kbuild runs objtool on a module when it links it rather than
    /// on each object (`delay-objtool` in scripts/Makefile.build: IBT or clang LTO).
    static func delaysObjtool(_ tree: PreparedTree) -> Bool {
        guard let config = try? tree.config() else { return false }
        return config["X86_KERNEL_IBT"] == .yes || config["LTO_CLANG"] == .yes
    }
}
