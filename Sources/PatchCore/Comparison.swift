// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// What happened to one function or data object between the two builds.
public enum Status: String, Sendable {
    case unchanged, changed, new, removed
    /// Changed or new, but excluded by the author (`KPATCH_IGNORE_FUNCTION`,
    /// `KPATCH_IGNORE_SECTION`).
    case ignored
}

/// The verdict on one element, with the reason in words.
public struct ElementVerdict: Sendable {
    public let name: String
    public let kind: Element.Kind
    public let status: Status
    public let reason: String
    /// The element in the patched object (nil when removed).
    public let patched: Int?
    /// The element in the original object (nil when new).
    public let original: Int?
}

/// Stage 2: every element compared by its bytes outside relocation fields,
/// its relocations (type, target after correlation, addend) and its entries
/// in special sections.
public struct Comparison: Sendable {
    public let verdicts: [ElementVerdict]
    /// Patched element → verdict index.
    let verdictOfPatched: [Int: Int]

    public func verdict(patched element: Int) -> ElementVerdict? {
        verdictOfPatched[element].map { verdicts[$0] }
    }

    /// The same verdicts with the author's exclusions applied: a changed or
    /// new element the directives name becomes `ignored`.
    func applying(_ directives: PatchDirectives, patched: ObjectIndex) -> Comparison {
        guard !directives.ignoredElements.isEmpty else { return self }
        var list = verdicts
        for (e, v) in verdictOfPatched where directives.ignoredElements.contains(e) {
            let old = list[v]
            guard old.status == .changed || old.status == .new else { continue }
            let section = patched.file.sections[patched.elements[e].section].name
            let why =
                directives.ignoredSections.contains(section)
                ? "in \(section), which KPATCH_IGNORE_SECTION excludes" : "excluded by KPATCH_IGNORE_FUNCTION"
            list[v] = ElementVerdict(
                name: old.name, kind: old.kind, status: .ignored,
                reason: "\(old.status.rawValue) (\(old.reason)), \(why)", patched: old.patched, original: old.original)
        }
        return Comparison(verdicts: list, verdictOfPatched: verdictOfPatched)
    }
}

/// A relocation target in terms both objects share: correlated names,
/// string contents, section names.
enum Identity: Hashable, CustomStringConvertible {
    case element(String, Int64)
    case external(String, Int64)
    case merged([UInt8], Int64)
    case anonymous(String, Int64, Int)
    case absolute(String, Int64)

    var description: String {
        func plus(_ a: Int64) -> String { a == 0 ? "" : a > 0 ? "+\(a)" : "\(a)" }
        switch self {
        case .element(let n, let a), .external(let n, let a), .absolute(let n, let a): return n + plus(a)
        case .merged(let bytes, let a):
            let text = String(decoding: bytes.prefix(96), as: UTF8.self).replacingNewlines()
            return "\"\(text)\(bytes.count > 96 ? "…" : "")\"" + plus(a)
        case .anonymous(let s, let a, _): return s + plus(a)
        }
    }
}

extension String {
    func replacingNewlines() -> String {
        var out = ""
        for c in self { out += c == "\n" ? "\\n" : String(c) }
        return out
    }
}

struct Comparer {
    let original: ObjectIndex
    let patched: ObjectIndex
    let correlation: Correlation
    let originalTables: [SpecialTable]
    let patchedTables: [SpecialTable]
    /// Special-table entries per owner element, per side.
    let originalEntries: [Int: [(table: Int, entry: Int)]]
    let patchedEntries: [Int: [(table: Int, entry: Int)]]

    init(
        original: ObjectIndex, patched: ObjectIndex, correlation: Correlation,
        originalTables: [SpecialTable], patchedTables: [SpecialTable]
    ) {
        self.original = original
        self.patched = patched
        self.correlation = correlation
        self.originalTables = originalTables
        self.patchedTables = patchedTables
        originalEntries = Comparer.entriesByOwner(originalTables)
        patchedEntries = Comparer.entriesByOwner(patchedTables)
    }

    static func entriesByOwner(_ tables: [SpecialTable]) -> [Int: [(table: Int, entry: Int)]] {
        var result: [Int: [(table: Int, entry: Int)]] = [:]
        for (t, table) in tables.enumerated() {
            for (i, entry) in table.entries.enumerated() {
                if let owner = entry.owner { result[owner, default: []].append((t, i)) }
            }
        }
        return result
    }

    // MARK: - Identities

    func identity(_ target: Target, in index: ObjectIndex, isPatched: Bool) -> Identity {
        switch target {
        case .element(let e, let addend):
            let element = index.elements[e]
            if isPatched {
                if let o = correlation.originalOf[e] { return .element(original.elements[o].name, addend) }
                return .element("(new) " + element.name, addend)
            }
            return .element(element.name, addend)
        case .external(let name, let addend):
            return .external(name, addend)
        case .merged(let section, let offset, let addend):
            let s = index.file.sections[section]
            let data = index.file.data(s)
            var bytes: [UInt8] = []
            if s.has(SectionFlags.strings) {
                var i = Int(offset)
                while i < data.count && data[i] != 0 {
                    bytes.append(data[i])
                    i += 1
                }
            } else {
                let end = min(Int(offset) + Int(max(s.entrySize, 1)), data.count)
                bytes = data.slice(Int(offset)..<end).array
            }
            return .merged(bytes, addend)
        case .anonymous(let section, let addend):
            let s = index.file.sections[section]
            var hasher = Hasher()
            index.file.data(s).withUnsafeBytes { hasher.combine(bytes: $0) }
            return .anonymous(Correlation.normalize(s.name), addend, hasher.finalize())
        case .absolute(let name, let addend):
            return .absolute(name, addend)
        }
    }

    // MARK: - Comparing

    struct Difference {
        var reason: String
        var lineOnly: Bool
    }

    /// Compares one correlated pair; nil when they are the same.
    func compare(original o: Int, patched p: Int) -> Difference? {
        let a = original.elements[o]
        let b = patched.elements[p]
        if a.kind != b.kind {
            return Difference(reason: "was a \(a.kind.rawValue), now a \(b.kind.rawValue)", lineOnly: false)
        }
        let sectionA = original.file.sections[a.section]
        let sectionB = patched.file.sections[b.section]
        if a.kind == .data && (sectionA.has(SectionFlags.write) != sectionB.has(SectionFlags.write)) {
            return Difference(reason: "moved from \(sectionA.name) to \(sectionB.name)", lineOnly: false)
        }
        if a.size != b.size {
            return Difference(reason: "size changed from \(a.size) to \(b.size) bytes", lineOnly: false)
        }
        let relocsA = Array(original.relocations(in: a.section, from: a.start, to: a.end))
        let relocsB = Array(patched.relocations(in: b.section, from: b.start, to: b.end))
        let bytesA = original.bytes(of: a)
        let bytesB = patched.bytes(of: b)
        var masked = [Bool](repeating: false, count: bytesA.count)
        for (r, e) in [(relocsA, a), (relocsB, b)].flatMap({ list in list.0.map { ($0, list.1) } }) {
            let size = original.rules.architecture.kind(r.type)?.size ?? 4
            let at = Int(r.offset - e.start)
            for k in 0..<max(size, 1) where at + k < masked.count { masked[at + k] = true }
        }
        var differing: [Int] = []
        if bytesA.count == bytesB.count {
            for i in 0..<bytesA.count where !masked[i] && bytesA[i] != bytesB[i] { differing.append(i) }
        }
        if relocsA.count != relocsB.count {
            return Difference(reason: "has \(relocsB.count) relocations, had \(relocsA.count)", lineOnly: false)
        }
        for (k, (ra, rb)) in zip(relocsA, relocsB).enumerated() {
            let offA = ra.offset - a.start
            let offB = rb.offset - b.start
            if offA != offB || ra.type != rb.type {
                return Difference(reason: "relocation \(k) at offset \(offB) differs (was at \(offA))", lineOnly: false)
            }
            let ia = identity(ra.target, in: original, isPatched: false)
            let ib = identity(rb.target, in: patched, isPatched: true)
            if ia != ib {
                return Difference(
                    reason: "relocation \(k) at offset \(offB) now points at \(ib), was \(ia)", lineOnly: false)
            }
        }
        var lineOnly = false
        if !differing.isEmpty {
            if a.kind == .function && lineImmediatesOnly(differing, bytesA, bytesB, relocs: relocsB, element: b) {
                lineOnly = true
            } else if a.kind == .data, let field = original.rules.dataLineFields[sectionA.name],
                Comparer.lineFieldOnly(differing, bytesA, bytesB, field: field)
            {
                lineOnly = true
            } else {
                return Difference(reason: "bytes differ at offset \(differing[0])", lineOnly: false)
            }
        }
        if a.kind == .function {
            if let special = compareEntries(original: o, patched: p) {
                if !special.lineOnly { return special }
                lineOnly = true
            }
        }
        return lineOnly ? Difference(reason: "line numbers only", lineOnly: true) : nil
    }

    /// Whether the bytes differ only in the line-number bits of a
    /// little-endian 32-bit field.
    static func lineFieldOnly(_ differing: [Int], _ a: [UInt8], _ b: [UInt8], field: (offset: Int, mask: UInt32))
        -> Bool
    {
        guard differing.allSatisfy({ $0 >= field.offset && $0 < field.offset + 4 }), field.offset + 4 <= a.count else {
            return false
        }
        var va: UInt32 = 0
        var vb: UInt32 = 0
        for k in 0..<4 {
            va |= UInt32(a[field.offset + k]) << (8 * k)
            vb |= UInt32(b[field.offset + k]) << (8 * k)
        }
        return (va ^ vb) & ~field.mask == 0
    }

    /// Whether every differing byte lies in the 32-bit immediate of a
    /// `mov $imm32, %reg` whose value feeds a call to a function that takes
    /// `__LINE__` (such as `__might_sleep`).
    func lineImmediatesOnly(
        _ positions: [Int], _ a: [UInt8], _ b: [UInt8],
        relocs: [ResolvedRelocation], element: Element
    ) -> Bool {
        let names = patched.rules.lineNumberFunctions
        guard !names.isEmpty else { return false }
        for pos in positions {
            var ok = false
            for q in max(0, pos - 4)...max(0, pos - 1) where q < pos {
                let opcode = b[q]
                guard opcode >= 0xb8 && opcode <= 0xbf, a[q] == opcode, pos < q + 5, q + 5 <= b.count else { continue }
                let window = UInt64(q) + element.start..<UInt64(q) + element.start + 64
                let feedsLineCall = relocs.contains { r in
                    guard window.contains(r.offset) else { return false }
                    switch identity(r.target, in: patched, isPatched: true) {
                    case .external(let n, _), .element(let n, _): return names.contains(n)
                    default: return false
                    }
                }
                if feedsLineCall {
                    ok = true
                    break
                }
            }
            if !ok { return false }
        }
        return true
    }

    /// Compares the special-section entries owned by a function pair.
    func compareEntries(original o: Int, patched p: Int) -> Difference? {
        let ea = originalEntries[o] ?? []
        let eb = patchedEntries[p] ?? []
        var lineOnly = false
        var byTableA: [String: [(table: Int, entry: Int)]] = [:]
        var byTableB: [String: [(table: Int, entry: Int)]] = [:]
        for x in ea { byTableA[originalTables[x.table].rule.name, default: []].append(x) }
        for x in eb { byTableB[patchedTables[x.table].rule.name, default: []].append(x) }
        for name in Set(byTableA.keys).union(byTableB.keys).sorted() {
            let la = byTableA[name] ?? []
            let lb = byTableB[name] ?? []
            if la.count != lb.count {
                return Difference(reason: "has \(lb.count) \(name) entries, had \(la.count)", lineOnly: false)
            }
            for (x, y) in zip(la, lb) {
                let ta = originalTables[x.table]
                let tb = patchedTables[y.table]
                let entryA = ta.entries[x.entry]
                let entryB = tb.entries[y.entry]
                let relocsA = Array(original.relocations(in: ta.section, from: entryA.start, to: entryA.end))
                let relocsB = Array(patched.relocations(in: tb.section, from: entryB.start, to: entryB.end))
                if relocsA.count != relocsB.count {
                    return Difference(
                        reason: "a \(name) entry has \(relocsB.count) relocations, had \(relocsA.count)",
                        lineOnly: false)
                }
                for (ra, rb) in zip(relocsA, relocsB) {
                    let ia = identity(ra.target, in: original, isPatched: false)
                    let ib = identity(rb.target, in: patched, isPatched: true)
                    if ra.offset - entryA.start != rb.offset - entryB.start || ra.type != rb.type || ia != ib {
                        return Difference(reason: "a \(name) entry now refers to \(ib), was \(ia)", lineOnly: false)
                    }
                }
                let da = original.file.data(original.file.sections[ta.section])
                let db = patched.file.data(patched.file.sections[tb.section])
                var masked = Set<Int>()
                for r in relocsA {
                    let size = original.rules.architecture.kind(r.type)?.size ?? 4
                    for k in 0..<size { masked.insert(Int(r.offset - entryA.start) + k) }
                }
                for i in 0..<ta.rule.entrySize where !masked.contains(i) {
                    guard da[Int(entryA.start) + i] != db[Int(entryB.start) + i] else { continue }
                    if let line = ta.rule.lineField, i >= line.offset && i < line.offset + line.size {
                        lineOnly = true
                    } else {
                        return Difference(reason: "a \(name) entry differs at byte \(i)", lineOnly: false)
                    }
                }
            }
        }
        return lineOnly ? Difference(reason: "line numbers only", lineOnly: true) : nil
    }

    // MARK: - The stage

    func run() -> Comparison {
        var verdicts: [ElementVerdict] = []
        var ofPatched: [Int: Int] = [:]
        var differences: [Int: Difference] = [:]
        for e in patched.elements {
            if let o = correlation.originalOf[e.index], let d = compare(original: o, patched: e.index) {
                differences[e.index] = d
            }
        }
        // A compiler-split child and its parent change together.
        var byName: [String: Int] = [:]
        for e in patched.elements where e.kind == .function { byName[e.name] = e.index }
        var propagated: [Int: String] = [:]
        for e in patched.elements where e.kind == .function {
            guard let parentName = Correlation.parentName(of: e.name), let parent = byName[parentName] else { continue }
            let childChanged =
                (differences[e.index].map { !$0.lineOnly } ?? false) || correlation.originalOf[e.index] == nil
            if childChanged && correlation.originalOf[parent] != nil && (differences[parent]?.lineOnly ?? true) {
                propagated[parent] = "its part \(e.name) changed"
            }
        }
        for e in patched.elements {
            let status: Status
            var reason: String
            if let o = correlation.originalOf[e.index] {
                if let why = propagated[e.index] {
                    status = .changed
                    reason = why
                } else if let d = differences[e.index] {
                    status = d.lineOnly ? .unchanged : .changed
                    reason = d.reason
                } else {
                    status = .unchanged
                    reason = ""
                }
                let originalName = original.elements[o].name
                if originalName != e.name {
                    reason =
                        reason.isEmpty
                        ? "named \(originalName) in the original" : "\(reason) (named \(originalName) in the original)"
                }
                ofPatched[e.index] = verdicts.count
                verdicts.append(
                    ElementVerdict(
                        name: e.name, kind: e.kind, status: status, reason: reason,
                        patched: e.index, original: o))
            } else {
                ofPatched[e.index] = verdicts.count
                verdicts.append(
                    ElementVerdict(
                        name: e.name, kind: e.kind, status: .new,
                        reason: "not in the original object", patched: e.index, original: nil))
            }
        }
        for e in original.elements where correlation.patchedOf[e.index] == nil {
            verdicts.append(
                ElementVerdict(
                    name: e.name, kind: e.kind, status: .removed,
                    reason: "not in the patched object", patched: nil, original: e.index))
        }
        return Comparison(verdicts: verdicts, verdictOfPatched: ofPatched)
    }
}
