// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform
import TargetKernel

/// The patch of one compiled object, ready to become part of the module.
public struct PatchedObject: Sendable {
    /// The kbuild object, e.g. `fs/proc/cmdline.o`.
    public let object: String
    /// `vmlinux`, or the module (klp object name) it belongs to.
    public let target: String
    public let result: ObjectDiff.Result
    public let patch: PatchObject
}

/// How the module redirects one function.
public struct FunctionRedirect: Sendable {
    public let target: String
    public let oldName: String
    public let sympos: Int
    /// The global symbol of the new code in the module.
    public let newSymbol: String
    public let object: String

    public init(target: String, oldName: String, sympos: Int, newSymbol: String, object: String) {
        self.target = target
        self.oldName = oldName
        self.sympos = sympos
        self.newSymbol = newSymbol
        self.object = object
    }
}

/// A reference the kernel will resolve itself (a klp relocation symbol).
public struct KlpSymbol: Sendable, Hashable {
    public let target: String
    public let name: String
    public let sympos: Int

    /// `.klp.sym.OBJ.NAME,POS`, as `klp_resolve_symbols` parses it.
    public var symbolName: String { ".klp.sym.\(target).\(name),\(sympos)" }
}

/// Turns patch objects into a livepatch module: references that module
/// loading cannot resolve become klp symbols, changed functions get global
/// names for the registration code, kbuild links the module against the
/// target's headers, and the klp relocation sections are written into the
/// linked module (the linker would not carry them).
public enum LivepatchModule {
    public struct Plan: Sendable {
        public var objects: [(file: String, object: RelocatableObject)] = []
        public var redirects: [FunctionRedirect] = []
        public var klpSymbols: [KlpSymbol] = []
        /// How many references stayed ordinary (exported).
        public var exportedReferences = 0
        /// Symbol namespaces of exported symbols the patch uses.
        public var namespaces = Set<String>()
        /// Callbacks per klp object, in object order: the global symbol of each.
        public var callbacks: [(target: String, stage: PatchDirectives.Stage, symbol: String)] = []

        public init() {}
    }

    /// Special sections whose entries the kernel applies when the patch
    /// module loads, before module-specific klp relocations are resolved.
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
    public static func plan(_ patches: [PatchedObject], exports: ExportedSymbols, positions: SymbolPositions,
                            modules: (String) throws(BuildError) -> ModuleSymbols) throws(BuildError) -> Plan {
        var plan = Plan()
        var usedNames = Set<String>()
        var refusals: [String] = []
        let insidePatch = PatchInternalSymbols(patches)
        for (n, patched) in patches.enumerated() {
            var object = patched.patch.object
            let original = patched.result.original
            let neighbours = SymbolPositions.names(definedBy: original)
            let moduleTable: ModuleSymbols? = patched.target == "vmlinux" ? nil : try modules(patched.target)
            let user = "\(patched.object)"
            var moduleKlp = Set<String>()
            for reference in patched.patch.references {
                guard let id = object.symbols.firstIndex(where: { $0.name == reference.name && $0.place == .undefined }) else { continue }
                let klp: KlpSymbol
                if insidePatch.resolves(reference) { continue }
                if let moduleTable, moduleTable.defines(reference.name) {
                    let sympos = try moduleTable.position(of: reference.name, local: reference.origin == .local,
                                                          sourceFile: original.sourceFile, original: original,
                                                          user: "the patched code of \(user)")
                    klp = KlpSymbol(target: patched.target, name: reference.name, sympos: sympos)
                    moduleKlp.insert(klp.symbolName)
                } else if reference.origin != .local, let export = exports[reference.name] {
                    plan.exportedReferences += 1
                    if let namespace = export.namespace { plan.namespaces.insert(namespace) }
                    continue
                } else {
                    let sympos = try positions.position(of: reference.name, in: nil, local: reference.origin == .local,
                                                        neighbours: neighbours,
                                                        peers: SymbolPositions.peers(of: reference.name, in: original),
                                                        original: patched.target == "vmlinux" ? original : nil,
                                                        user: "the patched code of \(user)")
                    klp = KlpSymbol(target: "vmlinux", name: reference.name, sympos: sympos)
                }
                object.symbols[id].name = klp.symbolName
                if !plan.klpSymbols.contains(klp) { plan.klpSymbols.append(klp) }
            }
            // Entries the kernel applies at load cannot wait for the module.
            for section in object.sections {
                guard case .relocations(let target?, let entries) = section.content,
                      let what = appliedAtLoad[object.sections[target.value].name] else { continue }
                for r in entries {
                    guard let s = r.symbol, moduleKlp.contains(object.symbols[s.value].name) else { continue }
                    let name = object.symbols[s.value].name.dropFirst(".klp.sym.\(patched.target).".count).prefix { $0 != "," }
                    let function = LoadTimeEntries.function(owning: r, among: entries, in: object).map { "\($0): " } ?? ""
                    refusals.append("\(user): \(function)\(what) in the patched code refers to \(name), a symbol of the module \(patched.target); the kernel applies \(object.sections[target.value].name) when the patch loads, before it can resolve the module's symbols. \(LoadTimeEntries.hint(for: object.sections[target.value].name))")
                }
            }
            for function in patched.patch.functions where !function.isNew {
                guard let id = object.symbols.firstIndex(where: { $0.name == function.symbol && $0.place != .undefined }) else {
                    throw BuildError(.linkFailed, "internal: the patch of \(user) has no symbol \(function.symbol)")
                }
                var newName = "livepatch_" + String(function.originalName.map { $0.isLetter || $0.isNumber ? $0 : "_" })
                if usedNames.contains(newName) { newName += "_\(n)" }
                usedNames.insert(newName)
                object.symbols[id].name = newName
                object.symbols[id].binding = SymbolBinding.global
                object.symbols[id].other = SymbolVisibility.default
                let sympos: Int
                if let moduleTable {
                    sympos = try moduleTable.position(of: function.originalName, local: function.isLocal,
                                                      sourceFile: original.sourceFile, original: original,
                                                      user: "the redirect of \(function.originalName) in \(user)")
                } else {
                    sympos = try positions.position(of: function.originalName, in: nil, local: function.isLocal,
                                                    neighbours: neighbours,
                                                    peers: SymbolPositions.peers(of: function.originalName, in: original),
                                                    original: original,
                                                    user: "the redirect of \(function.originalName) in \(user)")
                }
                plan.redirects.append(FunctionRedirect(target: patched.target, oldName: function.originalName,
                                                       sympos: sympos, newSymbol: newName, object: patched.object))
            }
            // Callbacks get global names for the registration code.
            for (c, callback) in patched.patch.callbacks.enumerated() {
                guard let id = object.symbols.firstIndex(where: { $0.name == callback.symbol && $0.place != .undefined }) else {
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
        var seen = Set<String>()
        refusals = refusals.filter { seen.insert($0).inserted }
        if !refusals.isEmpty {
            throw BuildError(.refused, "\(refusals.count) change(s) cannot be live-patched; no module written:\n"
                + refusals.map { "  " + $0 }.joined(separator: "\n"))
        }
        return plan
    }

    /// The registration code: one `klp_func` per redirect, one `klp_object`
    /// per target, the `klp_patch`, and the module's metadata.
    public static func registrationSource(_ plan: Plan, replace: Bool, modinfo: [(String, String)],
                                          clearing: RelocationClearing = .byKernel) -> String {
        var c = """
        // SPDX-License-Identifier: GPL-2.0-only
        // Generated by suture build. Registers the patched functions with the
        // kernel's livepatch core.
        #include <linux/module.h>
        #include <linux/kernel.h>
        #include <linux/livepatch.h>

        """
        let targets = orderedTargets(plan)
        let clears = clearing == .byPatch && targets.contains { $0 != "vmlinux" }
        if clears { c += clearingSource }
        c += callbackSource(plan, targets: targets, clears: clears)
        for r in plan.redirects { c += "extern void \(r.newSymbol)(void);\n" }
        for (t, target) in targets.enumerated() {
            c += "\nstatic struct klp_func funcs_\(t)[] = {\n"
            for r in plan.redirects where r.target == target {
                c += "\t{ .old_name = \(cString(r.oldName)), .new_func = \(r.newSymbol), .old_sympos = \(r.sympos) },\n"
            }
            c += "\t{ }\n};\n"
        }
        c += "\nstatic struct klp_object objs[] = {\n"
        for (t, target) in targets.enumerated() {
            let name = target == "vmlinux" ? "NULL" : cString(target)
            var stages: [String] = []
            for stage in PatchDirectives.Stage.allCases where hasCallback(plan, target: target, stage: stage, clears: clears) {
                stages.append(".\(stage.rawValue) = suture_\(stage.rawValue)_object_\(t)")
            }
            let callbacks = stages.isEmpty ? "" : ", .callbacks = { \(stages.joined(separator: ", ")) }"
            c += "\t{ .name = \(name), .funcs = funcs_\(t)\(callbacks) },\n"
        }
        c += "\t{ }\n};\n"
        c += """

        static struct klp_patch patch = {
        \t.mod = THIS_MODULE,
        \t.objs = objs,
        \t.replace = \(replace ? "true" : "false"),
        };

        static int __init suture_patch_init(void)
        {
        \treturn klp_enable_patch(&patch);
        }

        static void __exit suture_patch_exit(void)
        {
        }

        module_init(suture_patch_init);
        module_exit(suture_patch_exit);
        MODULE_LICENSE("GPL");
        MODULE_INFO(livepatch, "Y");
        MODULE_DESCRIPTION("Live patch built by suture");

        """
        for namespace in plan.namespaces.sorted() { c += "MODULE_IMPORT_NS(\(namespace));\n" }
        for (i, (key, value)) in modinfo.enumerated() {
            c += "static const char suture_modinfo_\(i)[] __used __section(\".modinfo\") __aligned(1) = \(cString("\(key)=\(value)"));\n"
        }
        return c
    }

    /// Who zeroes a module object's klp relocation targets in the patch when
    /// that module goes away. The module loader refuses to write a
    /// relocation whose target is not zero, so without this a module
    /// removed and loaded again while the patch stays fails to load.
    public enum RelocationClearing: String, Sendable {
        /// The livepatch core does it (`klp_clear_object_relocs`, 6.6 and later).
        case byKernel
        /// The patch does it in its objects' post-unpatch callback.
        case byPatch
        /// Neither can: the module cannot come back while the patch is loaded.
        case unavailable

        /// Reads the target's own source to decide.
        public static func of(source directory: String) -> RelocationClearing {
            let core = (try? FileSystem.readText(Path.join(directory, "kernel/livepatch/core.c"))) ?? ""
            if core.contains("klp_clear_object_relocs") { return .byKernel }
            let poke = (try? FileSystem.readText(Path.join(directory, "arch/x86/kernel/alternative.c"))) ?? ""
            return poke.contains("void *text_poke_set(") ? .byPatch : .unavailable
        }
    }

    /// The post-unpatch callback of module objects on kernels that do not
    /// clear klp relocation targets themselves. It walks the patch module's
    /// own section headers, which the kernel keeps for livepatch modules,
    /// and zeroes every field that a `.klp.rela.<module>.*` section wrote.
    /// `text_poke_set` is not exported; the quoted name makes it a klp
    /// symbol that the livepatch core resolves from kallsyms.
    static let clearingSource = """
        #include <linux/elf.h>
        #include <linux/string.h>
        #include <asm/elf.h>

        extern void *suture_text_poke_set(void *addr, int c, size_t len)
        	__asm__("\\\".klp.sym.vmlinux.text_poke_set,0\\\"");

        static void suture_clear_relocations(struct klp_object *obj)
        {
        	const struct klp_modinfo *info = THIS_MODULE->klp_info;
        	char prefix[MODULE_NAME_LEN + 16];
        	size_t length;
        	unsigned int i;

        	if (!info || !obj->name)
        		return;
        	length = snprintf(prefix, sizeof(prefix), ".klp.rela.%s.", obj->name);
        	for (i = 1; i < info->hdr.e_shnum; i++) {
        		const Elf_Shdr *section = &info->sechdrs[i];
        		const Elf_Rela *entries = (const Elf_Rela *)section->sh_addr;
        		size_t count = section->sh_size / sizeof(Elf_Rela), k;

        		if (!(section->sh_flags & SHF_RELA_LIVEPATCH) ||
        		    strncmp(info->secstrings + section->sh_name, prefix, length))
        			continue;
        		for (k = 0; k < count; k++) {
        			void *field = (void *)info->sechdrs[section->sh_info].sh_addr + entries[k].r_offset;
        			size_t width;

        			switch (ELF64_R_TYPE(entries[k].r_info)) {
        			case R_X86_64_64:
        			case R_X86_64_PC64:
        				width = 8;
        				break;
        			case R_X86_64_32:
        			case R_X86_64_32S:
        			case R_X86_64_PC32:
        			case R_X86_64_PLT32:
        				width = 4;
        				break;
        			default:
        				continue;
        			}
        			suture_text_poke_set(field, 0, width);
        		}
        	}
        }

        """

    static func orderedTargets(_ plan: Plan) -> [String] {
        var targets: [String] = []
        for r in plan.redirects where !targets.contains(r.target) { targets.append(r.target) }
        // An object with callbacks but no changed function still needs its klp_object.
        for c in plan.callbacks where !targets.contains(c.target) { targets.append(c.target) }
        return targets
    }

    static func hasCallback(_ plan: Plan, target: String, stage: PatchDirectives.Stage, clears: Bool) -> Bool {
        plan.callbacks.contains { $0.target == target && $0.stage == stage }
            || (clears && stage == .postUnpatch && target != "vmlinux")
    }

    /// One callback per klp object and stage, calling the authors'
    /// callbacks of that object in order (and, after a post-unpatch, the
    /// relocation clearing). A failing pre-patch callback stops the chain.
    static func callbackSource(_ plan: Plan, targets: [String], clears: Bool) -> String {
        var c = ""
        for callback in plan.callbacks {
            let result = callback.stage == .prePatch ? "int" : "void"
            c += "extern \(result) \(callback.symbol)(struct klp_object *obj);\n"
        }
        for (t, target) in targets.enumerated() {
            for stage in PatchDirectives.Stage.allCases where hasCallback(plan, target: target, stage: stage, clears: clears) {
                let calls = plan.callbacks.filter { $0.target == target && $0.stage == stage }.map(\.symbol)
                if stage == .prePatch {
                    c += "\nstatic int suture_pre_patch_object_\(t)(struct klp_object *obj)\n{\n\tint ret;\n\n"
                    for call in calls { c += "\tret = \(call)(obj);\n\tif (ret)\n\t\treturn ret;\n" }
                    c += "\treturn 0;\n}\n"
                } else {
                    c += "\nstatic void suture_\(stage.rawValue)_object_\(t)(struct klp_object *obj)\n{\n"
                    for call in calls { c += "\t\(call)(obj);\n" }
                    if stage == .postUnpatch && clears && target != "vmlinux" { c += "\tsuture_clear_relocations(obj);\n" }
                    c += "}\n"
                }
            }
        }
        return c
    }

    static func cString(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    /// Links the module with kbuild against the target's headers.
    /// Unresolved klp symbols are expected, so modpost only warns.
    public static func link(_ plan: Plan, moduleName: String, registration: String, headers: String,
                            compiler: String, directory: String) throws(BuildError) -> String {
        do {
            try FileSystem.makeDirectories(directory)
            var objects = ["\(moduleName)-main.o"]
            for (file, object) in plan.objects {
                var object = object
                // Suture's own notes are not for the kernel (modpost refuses
                // non-allocated sections it does not know).
                if let manifest = object.section(named: ".suture.manifest") {
                    try object.removeSections([manifest])
                }
                let path = Path.join(directory, file)
                try ELFWriter.write(object, to: path)
                // modpost reads every object's kbuild command record.
                try FileSystem.write(Path.join(directory, ".\(file).cmd"),
                                     "savedcmd_\(path) := suture build (prebuilt patch object)\n\nsource_\(path) := \(path)\n\ndeps_\(path) := \\\n\n\(path): $(deps_\(path))\n\n$(deps_\(path)):\n")
                objects.append(file)
            }
            try FileSystem.write(Path.join(directory, "\(moduleName)-main.c"), registration)
            try FileSystem.write(Path.join(directory, "Makefile"),
                                 "obj-m := \(moduleName).o\n\(moduleName)-y := \(objects.joined(separator: " "))\n")
        } catch let error as ELFError {
            throw BuildError(.io, error.description)
        } catch {
            throw BuildError(.io, "writing the module sources in \(directory): \(error)")
        }
        let result: CommandResult
        do {
            result = try Command.run(["make", "-C", headers, "M=\(directory)", "CC=\(compiler)", "KBUILD_MODPOST_WARN=1",
                                      "-j\(Kbuild.processors)", "modules"])
        } catch {
            throw BuildError(.linkFailed, "cannot run make: \(error.description)")
        }
        let ko = Path.join(directory, "\(moduleName).ko")
        guard result.termination.succeeded, FileSystem.exists(ko) else {
            throw BuildError(.linkFailed, "kbuild could not link the module (\(result.termination)):\n\(Command.tail(result.stdoutText + result.stderrText, lines: 25))")
        }
        return ko
    }

    /// Statistics of the post-link rewrite.
    public struct Rewrite: Sendable {
        public let klpSections: [String]
        public let klpRelocations: Int
    }

    /// Moves every relocation against a `.klp.sym.*` symbol out of its
    /// `.rela.X` section into `.klp.rela.OBJ.X` (SHF_ALLOC |
    /// SHF_RELA_LIVEPATCH) and marks the symbols SHN_LIVEPATCH, as
    /// Documentation/livepatch/module-elf-format.rst describes. Then checks
    /// that nothing undefined remains that the kernel cannot resolve.
    public static func writeKlpRelocations(module path: String, exports: ExportedSymbols) throws(BuildError) -> Rewrite {
        let file: ELFFile
        var object: RelocatableObject
        do {
            file = try ELFFile.open(path)
            object = try RelocatableObject(file)
        } catch {
            throw BuildError(.linkFailed, "reading the linked module: \(error.description)")
        }
        var klpSymbols = Set<Int>()
        for (i, s) in object.symbols.enumerated() where s.name.hasPrefix(".klp.sym.") {
            guard s.place == .undefined else {
                throw BuildError(.linkFailed, "\(path): \(s.name) is defined in the module; klp symbols must be undefined")
            }
            object.symbols[i].place = .reserved(SpecialSection.livepatch)
            object.symbols[i].binding = SymbolBinding.global
            klpSymbols.insert(i)
        }
        var added: [ObjectSection] = []
        var names: [String] = []
        var moved = 0
        var emptied: [Int] = []
        for (i, section) in object.sections.enumerated() {
            guard case .relocations(let target, let entries) = section.content, let target else { continue }
            var keep: [ObjectRelocation] = []
            var byObject: [String: [ObjectRelocation]] = [:]
            var order: [String] = []
            for r in entries {
                if let s = r.symbol, klpSymbols.contains(s.value) {
                    let name = object.symbols[s.value].name.dropFirst(".klp.sym.".count)
                    let objname = String(name.prefix { $0 != "." })
                    if byObject[objname] == nil { order.append(objname) }
                    byObject[objname, default: []].append(r)
                } else {
                    keep.append(r)
                }
            }
            guard !order.isEmpty else { continue }
            object.sections[i].content = .relocations(target: target, entries: keep)
            if keep.isEmpty { emptied.append(i) }
            let targetName = object.sections[target.value].name
            for objname in order {
                let name = ".klp.rela.\(objname).\(targetName)"
                added.append(.rela(name, target: target,
                                   flags: SectionFlags.alloc | SectionFlags.infoLink | SectionFlags.relaLivepatch,
                                   byObject[objname]!))
                names.append(name)
                moved += byObject[objname]!.count
            }
        }
        for section in added { object.add(section) }
        // Emptied relocation sections are dropped.
        do {
            try object.removeSections(Set(emptied.map(SectionID.init)))
        } catch {
            throw BuildError(.linkFailed, "\(path): \(error.description)")
        }
        let unresolved = object.symbols.filter { $0.place == .undefined && !$0.name.isEmpty && exports[$0.name] == nil }
        guard unresolved.isEmpty else {
            throw BuildError(.unresolvedSymbol, "\(path): the module refers to symbols that neither module loading nor the livepatch core can resolve: \(unresolved.map(\.name).joined(separator: ", "))")
        }
        do {
            try ELFWriter.write(object, to: path)
        } catch {
            throw BuildError(.io, error.description)
        }
        return Rewrite(klpSections: names, klpRelocations: moved)
    }
}
