// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// Stage 1: which element of the patched object is which element of the
/// original. Elements match by name, with compiler-generated numbers
/// ignored (`foo.isra.0` ≙ `foo.isra.1`, `calls.0` ≙ `calls.1`); where that
/// is ambiguous (static locals, several `.part` clones), by the correlated
/// elements that reference them.
public struct Correlation: Sendable {
    /// Patched element → original element.
    public let originalOf: [Int: Int]
    /// Original element → patched element.
    public let patchedOf: [Int: Int]

    /// The name with every all-digit component replaced, so compiler
    /// renumbering does not matter: `foo.isra.3` → `foo.isra.#`.
    public static func normalize(_ name: String) -> String {
        guard name.contains(".") else { return name }
        var parts = name.split(separator: ".", omittingEmptySubsequences: false)
        for i in parts.indices where i > 0 && !parts[i].isEmpty && parts[i].allSatisfy({ $0.isASCII && $0.isNumber }) {
            parts[i] = "#"
        }
        return parts.joined(separator: ".")
    }

    /// The parent of a compiler-split child (`foo.cold` → `foo`), if the name is one.
    public static func parentName(of name: String) -> String? {
        guard let range = name.firstRange(of: ".cold") else { return nil }
        let rest = name[range.upperBound...]
        guard rest.isEmpty || (rest.first == "." && rest.dropFirst().allSatisfy { $0.isNumber }) else { return nil }
        return String(name[..<range.lowerBound])
    }

    static func correlate(_ original: ObjectIndex, _ patched: ObjectIndex) -> Correlation {
        var originalOf: [Int: Int] = [:]
        var patchedOf: [Int: Int] = [:]
        func link(_ p: Int, _ o: Int) {
            originalOf[p] = o
            patchedOf[o] = p
        }
        struct Key: Hashable {
            let kind: Element.Kind
            let name: String
        }
        func groups(_ index: ObjectIndex, normalized: Bool) -> [Key: [Int]] {
            var result: [Key: [Int]] = [:]
            for e in index.elements {
                result[Key(kind: e.kind, name: normalized ? normalize(e.name) : e.name), default: []].append(e.index)
            }
            return result
        }
        // Exact names that are unique on both sides. Names with compiler
        // numbers are left out: `calls.2` may be another function's static
        // local after gcc renumbered them.
        let exactO = groups(original, normalized: false)
        let exactP = groups(patched, normalized: false)
        for (key, os) in exactO where os.count == 1 && normalize(key.name) == key.name {
            if let ps = exactP[key], ps.count == 1 { link(ps[0], os[0]) }
        }
        // Normalized names that are unique on both sides.
        let normO = groups(original, normalized: true)
        let normP = groups(patched, normalized: true)
        var ambiguous: [(os: [Int], ps: [Int])] = []
        for (key, osAll) in normO {
            guard let psAll = normP[key] else { continue }
            let os = osAll.filter { patchedOf[$0] == nil }
            let ps = psAll.filter { originalOf[$0] == nil }
            if os.isEmpty || ps.isEmpty { continue }
            if os.count == 1 && ps.count == 1 { link(ps[0], os[0]) } else { ambiguous.append((os, ps)) }
        }
        // The rest through their referrers: an original element matches the
        // patched one that the correlated referrers reference in the same way.
        guard !ambiguous.isEmpty else { return Correlation(originalOf: originalOf, patchedOf: patchedOf) }
        let referrersO = referrers(original)
        let referrersP = referrers(patched)
        var progress = true
        while progress {
            progress = false
            for (os, ps) in ambiguous {
                for o in os where patchedOf[o] == nil {
                    let mapped = Set((referrersO[o] ?? []).compactMap { patchedOf[$0] })
                    guard !mapped.isEmpty else { continue }
                    let candidates = ps.filter { p in
                        originalOf[p] == nil && !(referrersP[p] ?? []).isDisjoint(with: mapped)
                    }
                    if candidates.count == 1 {
                        // The match must be mutual: no other original element
                        // of the group claims the same patched element.
                        let rivals = os.filter { other in
                            other != o && patchedOf[other] == nil
                                && !Set((referrersO[other] ?? []).compactMap { patchedOf[$0] })
                                    .isDisjoint(with: referrersP[candidates[0]] ?? [])
                        }
                        if rivals.isEmpty {
                            link(candidates[0], o)
                            progress = true
                        }
                    }
                }
            }
        }
        // Still ambiguous (several candidates used by the same functions, as
        // after inlining, or when the patch adds a static local next to an
        // old one): align the relocation sequences of each correlated
        // referrer pair, with the ambiguous elements as wildcards, and let
        // the aligned uses vote. Every vote for an element must agree.
        for (os, ps) in ambiguous {
            let openO = Set(os.filter { patchedOf[$0] == nil })
            let openP = Set(ps.filter { originalOf[$0] == nil })
            guard !openO.isEmpty, !openP.isEmpty else { continue }
            var votes: [Int: Set<Int>] = [:]
            let sharedReferrers = Set(openO.flatMap { referrersO[$0] ?? [] })
            for fo in sharedReferrers.sorted() {
                guard let fp = patchedOf[fo] else { continue }
                for (a, b) in alignedUses(original, fo, patched, fp) where openO.contains(a) && openP.contains(b) {
                    votes[a, default: []].insert(b)
                }
            }
            var claimed: [Int: Int] = [:]
            for (_, choices) in votes where choices.count == 1 { claimed[choices.first!, default: 0] += 1 }
            for (o, choices) in votes.sorted(by: { $0.key < $1.key }) where choices.count == 1 {
                let p = choices.first!
                if claimed[p] == 1 && originalOf[p] == nil && patchedOf[o] == nil { link(p, o) }
            }
        }
        return Correlation(originalOf: originalOf, patchedOf: patchedOf)
    }

    /// Pairs (original element, patched element) used at aligned places of
    /// two versions of one function: the longest common subsequence of
    /// their relocation targets, where every target is named without
    /// compiler numbers (so static locals of one name match each other).
    static func alignedUses(_ original: ObjectIndex, _ fo: Int, _ patched: ObjectIndex, _ fp: Int) -> [(Int, Int)] {
        func sequence(_ index: ObjectIndex, _ f: Int) -> [(token: String, element: Int?)] {
            let e = index.elements[f]
            return index.relocations(in: e.section, from: e.start, to: e.end).map { r in
                switch r.target {
                case .element(let t, _): return ("e:" + normalize(index.elements[t].name), t)
                case .external(let n, _): return ("x:" + n, nil)
                case .merged(let section, let offset, _):
                    let data = index.file.data(index.file.sections[section])
                    var bytes: [UInt8] = []
                    var i = Int(offset)
                    while i < data.count && data[i] != 0 && bytes.count < 64 {
                        bytes.append(data[i])
                        i += 1
                    }
                    return ("s:" + String(decoding: bytes, as: UTF8.self), nil)
                case .anonymous(let section, _): return ("a:" + normalize(index.file.sections[section].name), nil)
                case .absolute(let n, _): return ("abs:" + n, nil)
                }
            }
        }
        let a = sequence(original, fo)
        let b = sequence(patched, fp)
        guard !a.isEmpty, !b.isEmpty, a.count * b.count <= 4_000_000 else { return [] }
        // Strings are the best anchors, and a patch often edits one: two
        // strings with a common start of 12 bytes or more count as the same.
        func same(_ x: String, _ y: String) -> Bool {
            if x == y { return true }
            guard x.hasPrefix("s:"), y.hasPrefix("s:") else { return false }
            var n = 0
            for (c, d) in zip(x.utf8.dropFirst(2), y.utf8.dropFirst(2)) {
                if c != d { break }
                n += 1
            }
            return n >= 12
        }
        // Longest common subsequence by dynamic programming.
        var table = [[Int32]](repeating: [Int32](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                table[i][j] =
                    same(a[i].token, b[j].token) ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
            }
        }
        var pairs: [(Int, Int)] = []
        var i = 0
        var j = 0
        while i < a.count && j < b.count {
            if same(a[i].token, b[j].token) && table[i][j] == table[i + 1][j + 1] + 1 {
                if let x = a[i].element, let y = b[j].element { pairs.append((x, y)) }
                i += 1
                j += 1
            } else if table[i + 1][j] >= table[i][j + 1] {
                i += 1
            } else {
                j += 1
            }
        }
        return pairs
    }

    /// Element → the elements whose relocations point at it.
    static func referrers(_ index: ObjectIndex) -> [Int: Set<Int>] {
        var result: [Int: Set<Int>] = [:]
        for e in index.elements {
            for r in index.relocations(in: e.section, from: e.start, to: e.end) {
                if case .element(let target, _) = r.target, target != e.index {
                    result[target, default: []].insert(e.index)
                }
            }
        }
        return result
    }
}
