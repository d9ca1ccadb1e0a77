// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// Stage 3: what the patch object must contain, and what cannot be
/// live-patched. Changed and new functions come in with their compiler-split
/// children, new data they need, the unnamed read-only data and strings they
/// use, and their entries in special sections. Everything else is referenced.
public struct Selection: Sendable {
    /// Patched elements to copy, in patched order.
    public let elements: [Int]
    /// Patched sections to copy whole: strings, constants, unnamed read-only data.
    public let wholeSections: [Int]
    /// Kept entries per special table (index into the patched tables).
    let entries: [Int: [Int]]
    public let refusals: [Refusal]
    /// Changed functions without an entry call, carried under their own
    /// name instead of redirected (their callers are redirected).
    let carried: Set<Int>
}

struct Selector {
    let original: ObjectIndex
    let patched: ObjectIndex
    let correlation: Correlation
    let comparison: Comparison
    let tables: [SpecialTable]
    let originalTables: [SpecialTable]
    var directives = PatchDirectives()

    func run() -> Selection {
        let rules = patched.rules
        var refusals: [Refusal] = []
        var included = Set<Int>()
        var whole = Set<Int>()
        var keptEntries: [Int: Set<Int>] = [:]
        var queue: [Int] = []

        func include(_ e: Int) {
            if included.insert(e).inserted { queue.append(e) }
        }

        // Seeds: changed and new functions.
        var byName: [String: [Int]] = [:]
        for e in patched.elements where e.kind == .function { byName[e.name, default: []].append(e.index) }
        for v in comparison.verdicts where v.kind == .function && (v.status == .changed || v.status == .new) {
            guard let p = v.patched else { continue }
            let element = patched.elements[p]
            let sectionName = patched.file.sections[element.section].name
            if let reason = rules.frozenReason(sectionName) {
                refusals.append(
                    Refusal(
                        symbol: v.name,
                        reason: "\(v.status == .new ? "new" : "changed") function in \(sectionName): \(reason)"))
                continue
            }
            include(p)
        }
        // Callbacks are part of the patch whether or not they are new.
        for e in directives.callbackElements { include(e) }
        for name in directives.forced {
            refusals.append(
                Refusal(
                    symbol: name,
                    reason:
                        "KPATCH_FORCE_UNSAFE asks to skip the consistency check, which the kernel's livepatch core cannot do: every task switches only once its stack is clear of patched functions. Remove the macro; if the function never leaves some stack, patch its callers instead, or use a callback to make the change safe"
                ))
        }
        // Changed notrace helpers are carried; their callers are redirected.
        let carry = carriedFunctions(included: included, byName: byName)
        for caller in carry.callers.sorted() { include(caller) }
        refusals += carry.refusals
        // Compiler-split children come with their parents.
        for e in patched.elements where e.kind == .function {
            if let parent = Correlation.parentName(of: e.name), let ps = byName[parent],
                ps.contains(where: { included.contains($0) }),
                !directives.ignoredElements.contains(e.index)
            {
                include(e.index)
            }
        }

        // Everything the included code and entries refer to.
        func follow(_ r: ResolvedRelocation, from user: String) {
            switch r.target {
            case .element(let t, _):
                if correlation.originalOf[t] == nil || CompilerLocals.carriedByValue(patched.elements[t], in: patched) {
                    include(t)
                }
            case .merged(let section, _, _):
                if whole.insert(section).inserted { queue.append(-1 - section) }
            case .anonymous(let section, let addend):
                let s = patched.file.sections[section]
                // `.data.rel.ro*` is constant once relocated (a table of
                // pointers in PIC code): the patch carries its own copy.
                let constant = s.name == ".data.rel.ro" || s.name.hasPrefix(".data.rel.ro.")
                if (s.has(SectionFlags.write) && !constant) || s.type == SectionType.nobits {
                    refusals.append(
                        Refusal(
                            symbol: user,
                            reason:
                                "refers to unnamed writable data in \(s.name) at offset \(addend), which a patch cannot share with the running code"
                        ))
                } else if rules.special(s.name)?.policy == .drop {
                    break
                } else if whole.insert(section).inserted {
                    queue.append(-1 - section)
                }
            case .external, .absolute:
                break
            }
            if rules.refuseThreadLocal, let kind = rules.architecture.kind(r.type),
                kind.name.contains("TPOFF") || kind.name.contains("TLS") || kind.name.contains("DTP")
            {
                refusals.append(
                    Refusal(
                        symbol: user, reason: "uses thread-local storage (\(kind.name)), which a patch cannot reach"))
            }
        }
        var tablesChanged = true
        while !queue.isEmpty || tablesChanged {
            while let next = queue.popLast() {
                if next >= 0 {
                    let e = patched.elements[next]
                    for r in patched.relocations(in: e.section, from: e.start, to: e.end) { follow(r, from: e.name) }
                } else {
                    let section = -1 - next
                    let s = patched.file.sections[section]
                    for r in patched.relocations(in: section, from: 0, to: s.size) { follow(r, from: s.name) }
                }
            }
            tablesChanged = false
            for (t, table) in tables.enumerated() {
                for (i, entry) in table.entries.enumerated() {
                    guard let owner = entry.owner, included.contains(owner), !(keptEntries[t]?.contains(i) ?? false)
                    else { continue }
                    keptEntries[t, default: []].insert(i)
                    tablesChanged = true
                    for r in patched.relocations(in: table.section, from: entry.start, to: entry.end) {
                        follow(r, from: "\(table.rule.name) entry of \(patched.elements[owner].name)")
                    }
                }
            }
        }

        // Data that changed cannot be patched: running code holds the old values.
        for v in comparison.verdicts where v.kind == .data {
            guard let p = v.patched else { continue }
            let element = patched.elements[p]
            let sectionName = patched.file.sections[element.section].name
            if v.status == .changed && !CompilerLocals.carriedByValue(element, in: patched) {
                let what = v.reason.hasPrefix("size") ? v.reason : "initializer changed (\(v.reason))"
                refusals.append(
                    Refusal(
                        symbol: v.name,
                        reason:
                            "existing data in \(sectionName): \(what); live patches cannot change data the running code already uses"
                    ))
            } else if v.status == .new && included.contains(p), let reason = rules.frozenReason(sectionName) {
                refusals.append(Refusal(symbol: v.name, reason: "new data in \(sectionName): \(reason)"))
            } else if v.status == .new && included.contains(p) && rules.refuseThreadLocal && element.isThreadLocal {
                refusals.append(
                    Refusal(
                        symbol: v.name, reason: "new thread-local variable; a patch cannot add thread-local storage"))
            }
        }
        for p in included.sorted() {
            let e = patched.elements[p]
            let v = comparison.verdict(patched: p)
            if rules.refuseIndirectFunctions && e.isIndirectFunction {
                refusals.append(
                    Refusal(
                        symbol: e.name,
                        reason: "is an ifunc (GNU indirect function), resolved once at load time; it cannot be patched")
                )
            }
            if patched.file.sections[e.section].has(SectionFlags.group) && v?.status == .changed {
                refusals.append(
                    Refusal(
                        symbol: e.name,
                        reason:
                            "changed inside section group \(patched.file.sections[e.section].name); COMDAT code is shared between objects and cannot be patched in one of them"
                    ))
            }
            // The livepatch core redirects a function through its fentry call.
            if let entry = rules.requiredEntryCall, e.kind == .function,
                v?.status == .changed || carry.callers.contains(p), !carry.carried.contains(p),
                Correlation.parentName(of: e.name) == nil
            {
                if !hasEntryCall(e) {
                    refusals.append(
                        Refusal(
                            symbol: e.name,
                            reason:
                                "changed function has no \(entry) call at its entry, so it cannot be redirected (notrace or compiled without -mfentry). Hint: the kernel's `inline` implies notrace; put the fixed body in a function of a new name and call it from the callers, which the patch then replaces (code that runs only at boot needs no live patch)"
                        ))
                }
            }
        }
        refusals += unselectedChanges(included: included, whole: whole)
        var seen = Set<String>()
        refusals = refusals.filter { seen.insert($0.symbol + "\u{0}" + $0.reason).inserted }
        return Selection(
            elements: included.sorted(), wholeSections: whole.sorted(),
            entries: keptEntries.mapValues { $0.sorted() }, refusals: refusals, carried: carry.carried)
    }

    /// Sections outside elements, special tables and copied data whose
    /// contents changed: nothing selected them, so the patch would miss them.
    func unselectedChanges(included: Set<Int>, whole: Set<Int>) -> [Refusal] {
        let rules = patched.rules
        var refusals: [Refusal] = []
        var originalByName: [String: Int] = [:]
        for s in original.file.sections.dropFirst() { originalByName[Correlation.normalize(s.name)] = s.index }
        let comparer = Comparer(
            original: original, patched: patched, correlation: correlation,
            originalTables: originalTables, patchedTables: tables)
        for s in patched.file.sections.dropFirst() {
            guard s.size > 0, s.isAllocated, !rules.isIgnored(s.name), rules.special(s.name) == nil,
                patched.elementsBySection[s.index] == nil, !s.has(SectionFlags.merge), !whole.contains(s.index),
                !s.isRelocationSection, s.type != SectionType.group
            else { continue }
            guard let o = originalByName[Correlation.normalize(s.name)] else {
                refusals.append(
                    Refusal(
                        symbol: s.name,
                        reason:
                            "new section not selected for inclusion: it holds no function or named data the patch could carry"
                    ))
                continue
            }
            let os = original.file.sections[o]
            var same = os.size == s.size && os.type == s.type
            if same && s.type != SectionType.nobits {
                let ra = original.relocations(in: o, from: 0, to: os.size)
                let rb = patched.relocations(in: s.index, from: 0, to: s.size)
                same =
                    ra.count == rb.count
                    && zip(ra, rb).allSatisfy { x, y in
                        x.offset == y.offset && x.type == y.type
                            && comparer.identity(x.target, in: original, isPatched: false)
                                == comparer.identity(y.target, in: patched, isPatched: true)
                    }
                if same {
                    var masked = Set<UInt64>()
                    for r in rb {
                        for k in 0..<UInt64(rules.architecture.kind(r.type)?.size ?? 4) { masked.insert(r.offset + k) }
                    }
                    let da = original.file.data(os)
                    let db = patched.file.data(s)
                    for i in 0..<db.count where !masked.contains(UInt64(i)) && da[i] != db[i] {
                        same = false
                        break
                    }
                }
            }
            if !same {
                refusals.append(
                    Refusal(
                        symbol: s.name,
                        reason:
                            "changed section not selected for inclusion: it holds no function or named data the patch could carry"
                    ))
            }
        }
        return refusals
    }
}
