// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// Entries of special sections that the kernel applies when the patch
/// module loads (jump labels, static calls, alternatives, paravirt sites).
public enum LoadTimeEntries {
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

    /// The object without the entries of `section` that start at `starts`
    /// (entries of `size` bytes): their bytes go, their relocations go, and
    /// the later entries and their relocations move up. nil when the
    /// section is not a whole number of entries.
    public static func removing(
        entriesAt starts: Set<UInt64>, size: UInt64, of section: Int, from object: RelocatableObject
    ) -> RelocatableObject? {
        guard size > 0, case .bytes(let data) = object.sections[section].content else { return nil }
        let bytes: [UInt8] = data.withUnsafeBytes { Array($0) }
        guard UInt64(bytes.count) % size == 0 else { return nil }
        var result = object
        var kept: [UInt8] = []
        var newStart: [UInt64: UInt64] = [:]
        var start: UInt64 = 0
        while start < UInt64(bytes.count) {
            if !starts.contains(start) {
                newStart[start] = UInt64(kept.count)
                kept += bytes[Int(start)..<Int(start + size)]
            }
            start += size
        }
        result.sections[section].content = .bytes(ELFBytes(kept))
        for i in result.sections.indices {
            guard case .relocations(let target?, let entries) = result.sections[i].content, target.value == section
            else { continue }
            let moved = entries.compactMap { r -> ObjectRelocation? in
                guard let to = newStart[r.offset - r.offset % size] else { return nil }
                var r = r
                r.offset = to + r.offset % size
                return r
            }
            result.sections[i].content = .relocations(target: target, entries: moved)
        }
        return result
    }
}
