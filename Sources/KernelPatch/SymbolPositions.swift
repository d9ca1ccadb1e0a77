// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import TargetKernel

/// Finds a symbol's position (sympos) in the target's kallsyms: 0 when its
/// name is unique in its object, else its 1-based position among the
/// symbols of that name, in kallsyms order (`klp_find_object_symbol`).
public struct SymbolPositions: Sendable {
    public let table: KallsymsTable
    /// The kernel image, to read which symbol the running code refers to.
    public let image: RunningImage?

    public init(table: KallsymsTable, image: RunningImage? = nil) {
        self.table = table
        self.image = image
    }

    /// The position of `name` in `module` (nil: vmlinux).
    ///
    /// - Parameters:
    ///   - local: whether the wanted symbol is static; kallsyms marks those
    ///     with lower-case types, globals with upper case.
    ///   - neighbours: other symbols of the same object file. Several local
    ///     symbols can share a name; the right one sits among its own object's
    ///     symbols in kallsyms, which are contiguous.
    public func position(
        of name: String, in module: String?, local: Bool, neighbours: Set<String>,
        peers: [(name: String, offset: Int64)] = [], original: ObjectIndex? = nil,
        user: String
    ) throws(BuildError) -> Int {
        let all = table.occurrences(of: name, in: module)
        let objectName = (module.map { KlpObject.module($0) } ?? .vmlinux).name
        guard !all.isEmpty else {
            throw BuildError(
                .unresolvedSymbol,
                "\(user) refers to \(name), which \(objectName) neither exports nor lists in kallsyms; is the source the one this kernel was built from?"
            )
        }
        if all.count == 1 { return 0 }
        var candidates = all.filter { table.entries[$0].isGlobal != local }
        if candidates.isEmpty { candidates = all }
        if candidates.count == 1 { return all.firstIndex(of: candidates[0])! + 1 }
        // Best: the running image's own reference to it, from a function or
        // datum of the same object that kallsyms names once.
        if module == nil, let image, let original, let element = original.elements.first(where: { $0.name == name }),
            let hit = image.locate(element, in: original, table: table), let index = all.firstIndex(of: hit)
        {
            return index + 1
        }
        // Score each candidate by the object's other symbols around it:
        // - symbols that share the wanted one's section sit at the same
        //   distance in the kernel as in the object (strong evidence);
        // - other symbols of the object lie nearby in kallsyms order, the
        //   rarer their name in the kernel, the more they tell.
        let window = max(64, neighbours.count * 2)
        var scores: [(entry: Int, score: Double)] = []
        for c in candidates {
            let address = table.entries[c].address
            var score = 0.0
            for peer in peers where peer.name != name {
                let expected = UInt64(bitPattern: Int64(bitPattern: address) &+ peer.offset)
                if table.occurrences(of: peer.name, in: module).contains(where: {
                    table.entries[$0].address == expected
                }) {
                    score += 10
                }
            }
            let lo = max(0, c - window)
            let hi = min(table.entries.count - 1, c + window)
            for i in lo...hi where i != c {
                let e = table.entries[i]
                if e.module == module && neighbours.contains(e.name) {
                    score += 1 / Double(table.occurrences(of: e.name, in: module).count)
                }
            }
            scores.append((c, score))
        }
        scores.sort { $0.score > $1.score }
        if scores[0].score > 0 && (scores.count == 1 || scores[0].score > scores[1].score + 0.5) {
            return all.firstIndex(of: scores[0].entry)! + 1
        }
        let listed = scores.prefix(8).map { s -> String in
            let e = table.entries[s.entry]
            let around = stride(from: max(0, s.entry - 2), through: min(table.entries.count - 1, s.entry + 2), by: 1)
                .filter { $0 != s.entry }.map { table.entries[$0].name }
            let score = (s.score * 10).rounded() / 10
            return
                "  position \(all.firstIndex(of: s.entry)! + 1): \(e.name) (\(String(UnicodeScalar(e.type)))) near \(around.joined(separator: ", ")); score \(score)"
        }
        throw BuildError(
            .ambiguousSymbol,
            "\(user) refers to \(name), which \(objectName) has \(all.count) times, and the object's neighbouring symbols do not single one out:\n"
                + listed.joined(separator: "\n"))
    }

    /// The other symbols of `name`'s section in the original object, with
    /// their distance from it.
    public static func peers(of name: String, in index: ObjectIndex) -> [(name: String, offset: Int64)] {
        guard let element = index.elements.first(where: { $0.name == name }) else { return [] }
        return index.elements.filter { $0.section == element.section && $0.index != element.index }
            .map { ($0.name, Int64($0.start) - Int64(element.start)) }
    }

    /// The names an object defines (functions and data), for `neighbours`.
    public static func names(definedBy index: ObjectIndex) -> Set<String> {
        Set(index.elements.map(\.name))
    }
}
