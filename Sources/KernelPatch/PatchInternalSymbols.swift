// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore

/// Global symbols that the patch itself defines: a function or variable
/// that one patched object adds and another patched object of the same
/// patch uses. The kbuild link of the patch module resolves those
/// references, so they are neither exports nor klp symbols.
struct PatchInternalSymbols {
    /// Global names defined by the patch objects, new in their object.
    let names: Set<String>

    init(_ patches: [PatchedObject]) {
        var names = Set<String>()
        for p in patches {
            let new = Set(p.result.comparison.verdicts.filter { $0.status == .new }.map(\.name))
            for s in p.patch.object.symbols
            where s.place != .undefined && s.binding != SymbolBinding.local && new.contains(s.name) {
                names.insert(s.name)
            }
        }
        self.names = names
    }

    /// Whether the patch module's own link resolves `reference`: an
    /// undefined name in its object that another patch object defines.
    func resolves(_ reference: Reference) -> Bool {
        reference.origin == .external && names.contains(reference.name)
    }
}
