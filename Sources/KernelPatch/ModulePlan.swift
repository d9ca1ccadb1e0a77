// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform
import TargetKernel

/// The patch of one compiled object, ready to become part of the module.
public struct PatchedObject: Sendable {
    /// The kbuild object, e.g. `fs/proc/cmdline.o`.
    public let object: String
    /// vmlinux, or the module it belongs to.
    public let target: KlpObject
    public let result: ObjectDiff.Result
    public let patch: PatchObject

    public init(object: String, target: KlpObject, result: ObjectDiff.Result, patch: PatchObject) {
        self.object = object
        self.target = target
        self.result = result
        self.patch = patch
    }
}

/// How the module redirects one function.
public struct FunctionRedirect: Sendable {
    public let target: KlpObject
    public let oldName: String
    public let sympos: Int
    /// The global symbol of the new code in the module.
    public let newSymbol: String
    public let object: String

    public init(target: KlpObject, oldName: String, sympos: Int, newSymbol: String, object: String) {
        self.target = target
        self.oldName = oldName
        self.sympos = sympos
        self.newSymbol = newSymbol
        self.object = object
    }
}

/// A reference the kernel will resolve itself (a klp relocation symbol).
public struct KlpSymbol: Sendable, Hashable {
    public let target: KlpObject
    public let name: String
    public let sympos: Int

    /// `.klp.sym.OBJ.NAME,POS`, as `klp_resolve_symbols` parses it.
    public var symbolName: String { ".klp.sym.\(target.name).\(name),\(sympos)" }
}

/// Turns patch objects into a livepatch module, in four steps, one file
/// each: the plan (here): references that module loading cannot resolve
/// become klp symbols, changed functions get global names for the
/// registration code; the registration source (`RegistrationSource.swift`);
/// the kbuild link against the target's headers (`ModuleLink.swift`); and
/// the klp relocation sections written into the linked module, which the
/// linker would not carry (`KlpRelocations.swift`).
public enum LivepatchModule {
    public struct Plan: Sendable {
        public var objects: [(file: String, object: RelocatableObject)] = []
        public var redirects: [FunctionRedirect] = []
        public var klpSymbols: [KlpSymbol] = []
        /// How many references stayed ordinary (exported).
        public var exportedReferences = 0
        /// Symbol namespaces of exported symbols the patch uses.
        public var namespaces = Set<String>()
        /// What the patch leaves out, for the user to know.
        public var warnings: [String] = []
        /// Callbacks per klp object, in object order: the global symbol of each.
        public var callbacks: [(target: KlpObject, stage: PatchDirectives.Stage, symbol: String)] = []

        public init() {}
    }

    /// Special sections whose entries the kernel applies when the patch
    /// module loads, before module-specific klp relocations are resolved.
    /// Bytes of a `__jump_table` entry on x86-64: code s32, target s32, key s64.
    static let jumpEntrySize: UInt64 = 16

    static let appliedAtLoad: [String: String] = [
        "__jump_table": "a jump label (static branch)",
        ".static_call_sites": "a static call",
        ".altinstructions": "an alternative instruction",
        ".parainstructions": "a paravirt call site",
    ]

    /// Decides, for every reference of every patch object, who resolves it:
    /// - the patched module's own symbols, exported or not: the livepatch
    ///   core, when that module is there (`.klp.sym.MODULE.NAME,POS`), so
    ///   the patch never depends on the module and can load before it;
    /// - other exported symbols: module loading (ordinary references);
    /// - everything else in vmlinux: the livepatch core, through kallsyms.
    /// Renames references accordingly and gives changed functions global
    /// names for the registration code.
    public static func plan(
        _ patches: [PatchedObject], exports: ExportedSymbols, positions: SymbolPositions,
        modules: (String) throws(BuildError) -> ModuleSymbols
    ) throws(BuildError) -> Plan {
        var plan = Plan()
        var usedNames = Set<String>()
        var refusals: [RefusedChange] = []
        let insidePatch = PatchInternalSymbols(patches)
        for (n, patched) in patches.enumerated() {
            var object = patched.patch.object
            let original = patched.result.original
            let neighbours = SymbolPositions.names(definedBy: original)
            let moduleTable: ModuleSymbols?
            if case .module(let module) = patched.target {
                moduleTable = try modules(module)
            } else {
                moduleTable = nil
            }
            let user = "\(patched.object)"
            var moduleKlp = Set<String>()
            for reference in patched.patch.references {
                guard let id = object.symbols.firstIndex(where: { $0.name == reference.name && $0.place == .undefined })
                else { continue }
                let klp: KlpSymbol
                if insidePatch.resolves(reference) { continue }
                if let moduleTable, moduleTable.defines(reference.name) {
                    let sympos = try moduleTable.position(
                        of: reference.name, local: reference.origin == .local,
                        sourceFile: original.sourceFile, original: original,
                        user: "the patched code of \(user)")
                    klp = KlpSymbol(target: patched.target, name: reference.name, sympos: sympos)
                    moduleKlp.insert(klp.symbolName)
                } else if reference.origin != .local, let export = exports[reference.name] {
                    plan.exportedReferences += 1
                    if let namespace = export.namespace { plan.namespaces.insert(namespace) }
                    continue
                } else {
                    let sympos = try positions.position(
                        of: reference.name, in: nil, local: reference.origin == .local,
                        neighbours: neighbours,
                        peers: SymbolPositions.peers(of: reference.name, in: original),
                        original: patched.target == .vmlinux ? original : nil,
                        user: "the patched code of \(user)")
                    klp = KlpSymbol(target: .vmlinux, name: reference.name, sympos: sympos)
                }
                object.symbols[id].name = klp.symbolName
                if !plan.klpSymbols.contains(klp) { plan.klpSymbols.append(klp) }
            }
            // Entries the kernel applies at load cannot wait for the module.
            // A tracepoint's jump label is left out: the tracepoint stays
            // off in the patched code, which is otherwise patched.
            var tracepointEntries: [Int: Set<UInt64>] = [:]
            var tracepoints: [String] = []
            for section in object.sections {
                guard case .relocations(let target?, let entries) = section.content,
                    let what = appliedAtLoad[object.sections[target.value].name]
                else { continue }
                for r in entries {
                    guard let s = r.symbol, moduleKlp.contains(object.symbols[s.value].name) else { continue }
                    let name = object.symbols[s.value].name.dropFirst(".klp.sym.\(patched.target.name).".count).prefix {
                        $0 != ","
                    }
                    // Named by the function whose code holds the entry, when known.
                    let owner = LoadTimeEntries.function(owning: r, among: entries, in: object) ?? String(name)
                    if object.sections[target.value].name == "__jump_table", name.hasPrefix("__tracepoint_") {
                        tracepointEntries[target.value, default: []].insert(r.offset - r.offset % jumpEntrySize)
                        let tracepoint = "\(owner): \(name.dropFirst("__tracepoint_".count))"
                        if !tracepoints.contains(tracepoint) { tracepoints.append(tracepoint) }
                        continue
                    }
                    let refusal = RefusedChange(
                        object: user, function: owner,
                        reason:
                            "\(what) in the patched code refers to \(name), a symbol of the module \(patched.target); the kernel applies \(object.sections[target.value].name) when the patch loads, before it can resolve the module's symbols. \(LoadTimeEntries.hint(for: object.sections[target.value].name))"
                    )
                    if !refusals.contains(refusal) { refusals.append(refusal) }
                }
            }
            for (section, starts) in tracepointEntries {
                guard
                    let without = LoadTimeEntries.removing(
                        entriesAt: starts, size: jumpEntrySize, of: section, from: object)
                else {
                    throw BuildError(
                        .linkFailed,
                        "internal: \(user): __jump_table is not a whole number of \(jumpEntrySize)-byte entries")
                }
                object = without
            }
            if !tracepoints.isEmpty {
                plan.warnings.append(
                    "\(user): the tracepoints of the module \(patched.target) in patched code stay off while the patch is loaded (their jump labels cannot be applied when it loads): \(tracepoints.joined(separator: ", "))"
                )
            }
            for function in patched.patch.functions where !function.isNew {
                guard
                    let id = object.symbols.firstIndex(where: { $0.name == function.symbol && $0.place != .undefined })
                else {
                    throw BuildError(.linkFailed, "internal: the patch of \(user) has no symbol \(function.symbol)")
                }
                var newName = "livepatch_" + String(function.originalName.map { $0.isLetter || $0.isNumber ? $0 : "_" })
                if usedNames.contains(newName) { newName += "_\(n)" }
                usedNames.insert(newName)
                object.symbols[id].name = newName
                object.symbols[id].binding = SymbolBinding.global
                object.symbols[id].other = SymbolVisibility.default
                // Its compiler-split parts (`foo.cold`) follow the new name: objtool finds a
                // part's parent by its name (gcc 14 and later split cold paths more often).
                let cold = function.symbol + ".cold"
                for child in object.symbols.indices
                where object.symbols[child].name == cold || object.symbols[child].name.hasPrefix(cold + ".") {
                    object.symbols[child].name = newName + object.symbols[child].name.dropFirst(function.symbol.count)
                }
                let sympos: Int
                if let moduleTable {
                    sympos = try moduleTable.position(
                        of: function.originalName, local: function.isLocal,
                        sourceFile: original.sourceFile, original: original,
                        user: "the redirect of \(function.originalName) in \(user)")
                } else {
                    sympos = try positions.position(
                        of: function.originalName, in: nil, local: function.isLocal,
                        neighbours: neighbours,
                        peers: SymbolPositions.peers(of: function.originalName, in: original),
                        original: original,
                        user: "the redirect of \(function.originalName) in \(user)")
                }
                plan.redirects.append(
                    FunctionRedirect(
                        target: patched.target, oldName: function.originalName,
                        sympos: sympos, newSymbol: newName, object: patched.object))
            }
            // Callbacks get global names for the registration code.
            for (c, callback) in patched.patch.callbacks.enumerated() {
                guard
                    let id = object.symbols.firstIndex(where: { $0.name == callback.symbol && $0.place != .undefined })
                else {
                    throw BuildError(.linkFailed, "internal: the patch of \(user) has no symbol \(callback.symbol)")
                }
                let name = "suture_\(callback.stage.rawValue)_\(n)_\(c)"
                object.symbols[id].name = name
                object.symbols[id].binding = SymbolBinding.global
                object.symbols[id].other = SymbolVisibility.default
                plan.callbacks.append((patched.target, callback.stage, name))
            }
            plan.objects.append(("patch-\(n).o", object))
        }
        if !refusals.isEmpty {
            throw BuildError(
                .refused,
                "\(refusals.count) change(s) cannot be live-patched; no module written:\n"
                    + refusals.map { "  \($0.object): \($0.function): \($0.reason)" }.joined(separator: "\n"),
                refusals: refusals)
        }
        return plan
    }
}
