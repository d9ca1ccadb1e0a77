// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import TargetKernel

extension LivepatchModule {
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
    public static func writeKlpRelocations(module path: String, exports: ExportedSymbols) throws(BuildError) -> Rewrite
    {
        let file: ELFFile
        var object: RelocatableObject
        do {
            file = try ELFFile.open(path)
            object = try RelocatableObject(file)
        } catch {
            throw BuildError(.linkFailed, "reading the linked module: \(error.description)", cause: error)
        }
        var klpSymbols = Set<Int>()
        for (i, s) in object.symbols.enumerated() where s.name.hasPrefix(".klp.sym.") {
            guard s.place == .undefined else {
                throw BuildError(
                    .linkFailed, "\(path): \(s.name) is defined in the module; klp symbols must be undefined")
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
                added.append(
                    .rela(
                        name, target: target,
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
            throw BuildError(.linkFailed, "\(path): \(error.description)", cause: error)
        }
        let unresolved = object.symbols.filter { $0.place == .undefined && !$0.name.isEmpty && exports[$0.name] == nil }
        guard unresolved.isEmpty else {
            throw BuildError(
                .unresolvedSymbol,
                "\(path): the module refers to symbols that neither module loading nor the livepatch core can resolve: \(unresolved.map(\.name).joined(separator: ", "))"
            )
        }
        do {
            try ELFWriter.write(object, to: path)
        } catch {
            throw BuildError(.io, error.description, cause: error)
        }
        return Rewrite(klpSections: names, klpRelocations: moved)
    }
}
