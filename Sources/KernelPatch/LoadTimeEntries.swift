// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// Entries of special sections that the kernel applies when the patch
/// module loads (jump labels, static calls, alternatives, paravirt sites).
enum LoadTimeEntries {
    /// What to write by hand instead, per kind of entry.
    static func hint(for section: String) -> String {
        switch section {
        case ".static_call_sites":
            return
                "Hint: a tracepoint or static_call() of the module cannot be in a patched function; keep it in an unchanged function and move the changed part into a helper that the patch replaces"
        default:
            return "Hint: test such a key with static_key_enabled(&key) instead of a static branch"
        }
    }

    /// The function whose code an entry's relocation belongs to: each of
    /// these entries starts with a reference to its site in the code, so
    /// the nearest relocation at or before `r` that points into executable
    /// code names it (a function symbol, or the `.text.NAME` section of one).
    static func function(owning r: ObjectRelocation, among entries: [ObjectRelocation], in object: RelocatableObject)
        -> String?
    {
        var best: (offset: UInt64, name: String)?
        for e in entries where e.offset <= r.offset {
            guard let s = e.symbol, let name = codeName(object, s) else { continue }
            if best == nil || e.offset >= best!.offset { best = (e.offset, name) }
        }
        return best?.name
    }

    static func codeName(_ object: RelocatableObject, _ id: SymbolID) -> String? {
        let symbol = object.symbols[id.value]
        guard case .section(let section) = symbol.place else { return nil }
        let s = object.sections[section.value]
        guard s.flags & SectionFlags.execInstr != 0 else { return nil }
        if symbol.type == SymbolType.function { return symbol.name }
        // A section symbol: the function that owns the section.
        if let f = object.symbols.first(where: {
            $0.place == .section(section) && $0.type == SymbolType.function && $0.value == 0
        }) {
            return f.name
        }
        return s.name.hasPrefix(".text.") ? String(s.name.dropFirst(".text.".count)) : nil
    }
}
