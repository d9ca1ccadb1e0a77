// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import TargetKernel

/// Finds a symbol's position (sympos) in the target's kallsyms: 0 when its
/// name is unique in its object, else its 1-based position among the
/// symbols of that name, in kallsyms order (`klp_find_object_symbol`).
public struct SymbolPositions: Sendable {
    public let table: KallsymsTable

    public init(table: KallsymsTable) {
        self.table = table
    }

    /// The position of `name` in `module` (nil: vmlinux).
    ///
    /// - Parameters:
    ///   - local: whether the wanted symbol is static; kallsyms marks those
    ///     with lower-case types, globals with upper case.
    ///   - neighbours: other symbols of the same object file. Several local
    ///     symbols can share a name; the right one sits among its own object's
    ///     symbols in kallsyms, which are contiguous.
    public func position(of name: String, in module: String?, local: Bool, neighbours: Set<String>,
                         user: String) throws(BuildError) -> Int {
        let all = table.occurrences(of: name, in: module)
        let objectName = module ?? "vmlinux"
        guard !all.isEmpty else {
            throw BuildError(.unresolvedSymbol, "\(user) refers to \(name), which \(objectName) neither exports nor lists in kallsyms; is the source the one this kernel was built from?")
        }
        if all.count == 1 { return 0 }
        var candidates = all.filter { table.entries[$0].isGlobal != local }
        if candidates.isEmpty { candidates = all }
        if candidates.count == 1 { return all.firstIndex(of: candidates[0])! + 1 }
        // Score each candidate by how many of its object's symbols surround it.
        let window = max(64, neighbours.count * 2)
        var scores: [(entry: Int, score: Int)] = []
        for c in candidates {
            var score = 0
            let lo = max(0, c - window), hi = min(table.entries.count - 1, c + window)
            for i in lo...hi where i != c {
                let e = table.entries[i]
                if e.module == module && neighbours.contains(e.name) { score += 1 }
            }
            scores.append((c, score))
        }
        scores.sort { $0.score > $1.score }
        if scores[0].score > 0 && (scores.count == 1 || scores[0].score > scores[1].score) {
            return all.firstIndex(of: scores[0].entry)! + 1
        }
        let listed = scores.map { s -> String in
            let e = table.entries[s.entry]
            let around = stride(from: max(0, s.entry - 2), through: min(table.entries.count - 1, s.entry + 2), by: 1)
                .filter { $0 != s.entry }.map { table.entries[$0].name }
            return "  position \(all.firstIndex(of: s.entry)! + 1): \(e.name) (\(String(UnicodeScalar(e.type)))) near \(around.joined(separator: ", ")); \(s.score) symbols of this object nearby"
        }
        throw BuildError(.ambiguousSymbol, "\(user) refers to \(name), which \(objectName) has \(all.count) times, and the object's neighbouring symbols do not single one out:\n" + listed.joined(separator: "\n"))
    }

    /// The names an object defines (functions and data), for `neighbours`.
    public static func names(definedBy index: ObjectIndex) -> Set<String> {
        Set(index.elements.map(\.name))
    }
}
