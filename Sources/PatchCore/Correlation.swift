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
        struct Key: Hashable { let kind: Element.Kind; let name: String }
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
        // Still ambiguous (both referenced from the same functions, e.g.
        // after inlining): pair them by the order in which each correlated
        // referrer first uses them. Every referrer must agree.
        for (os, ps) in ambiguous {
            let openO = os.filter { patchedOf[$0] == nil }
            let openP = Set(ps.filter { originalOf[$0] == nil })
            guard !openO.isEmpty, !openP.isEmpty else { continue }
            let openOSet = Set(openO)
            var votes: [Int: Set<Int>] = [:]
            let sharedReferrers = Set(openO.flatMap { referrersO[$0] ?? [] })
            for fo in sharedReferrers {
                guard let fp = patchedOf[fo] else { continue }
                let orderO = firstUses(original, of: fo, among: openOSet)
                let orderP = firstUses(patched, of: fp, among: openP)
                guard orderO.count == orderP.count else { continue }
                for (a, b) in zip(orderO, orderP) { votes[a, default: []].insert(b) }
            }
            var claimed: [Int: Int] = [:]
            for (o, choices) in votes where choices.count == 1 { claimed[choices.first!, default: 0] += 1 }
            for (o, choices) in votes where choices.count == 1 {
                let p = choices.first!
                if claimed[p] == 1 && originalOf[p] == nil && patchedOf[o] == nil { link(p, o) }
            }
        }
        return Correlation(originalOf: originalOf, patchedOf: patchedOf)
    }

    /// The elements of `among` that `element` references, in order of first use.
    static func firstUses(_ index: ObjectIndex, of element: Int, among: Set<Int>) -> [Int] {
        let e = index.elements[element]
        var seen: Set<Int> = []
        var order: [Int] = []
        for r in index.relocations(in: e.section, from: e.start, to: e.end) {
            if case .element(let t, _) = r.target, among.contains(t), seen.insert(t).inserted { order.append(t) }
        }
        return order
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
