// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// A changed static function without an entry call (the kernel's `inline`
/// implies notrace, so a helper kept out of line has no `__fentry__`)
/// cannot be redirected. It can still be carried: the patch holds the new
/// copy under the same local name, and every function of the object that
/// calls it is redirected to a patch copy that calls the new one. A caller
/// without an entry call of its own is carried the same way, up to the
/// first callers that can be redirected.
extension Selector {
    /// Whether a function's first bytes call the entry hook (`__fentry__`).
    func hasEntryCall(_ e: Element) -> Bool {
        guard let entry = patched.rules.requiredEntryCall else { return true }
        let window = e.start..<min(e.end, e.start + patched.rules.entryCallWindow)
        return patched.relocations(in: e.section, from: window.lowerBound, to: window.upperBound).contains {
            if case .external(let name, _) = $0.target { return name == entry }
            return false
        }
    }

    /// The carried functions and the callers to include, from the included
    /// changed functions; refusals for carried functions whose address data
    /// holds (a function pointer keeps reaching the old copy).
    func carriedFunctions(included: Set<Int>, byName: [String: [Int]]) -> (
        carried: Set<Int>, callers: Set<Int>, refusals: [Refusal]
    ) {
        guard patched.rules.requiredEntryCall != nil else { return ([], [], []) }
        func carriable(_ p: Int) -> Bool {
            let e = patched.elements[p]
            return e.kind == .function && e.isLocal && Correlation.parentName(of: e.name) == nil
                && comparison.verdict(patched: p)?.status != .new && !hasEntryCall(e)
        }
        var pending = included.filter { carriable($0) && comparison.verdict(patched: $0)?.status == .changed }
        var carried = Set<Int>()
        var callers = Set<Int>()
        var refusals: [Refusal] = []
        while let c = pending.popFirst() {
            guard carried.insert(c).inserted else { continue }
            for f in patched.elements where f.index != c {
                let uses = patched.relocations(in: f.section, from: f.start, to: f.end).contains {
                    if case .element(let t, _) = $0.target { return t == c }
                    return false
                }
                guard uses else { continue }
                guard f.kind == .function else {
                    refusals.append(
                        Refusal(
                            symbol: patched.elements[c].name,
                            reason:
                                "changed function has no \(patched.rules.requiredEntryCall ?? "entry") call at its entry, and \(f.name) holds its address, which would keep reaching the unpatched copy. Hint: put the fixed body in a function of a new name and point \(f.name) at it from a callback"
                        ))
                    continue
                }
                var caller = f.index
                if let parent = Correlation.parentName(of: f.name), let p = byName[parent]?.first { caller = p }
                guard caller != c, !carried.contains(caller) else { continue }
                // __init and __exit callers run only at boot or unload.
                let section = patched.file.sections[patched.elements[caller].section].name
                guard patched.rules.frozenReason(section) == nil else { continue }
                callers.insert(caller)
                if carriable(caller) { pending.insert(caller) }
            }
        }
        return (carried, callers, refusals)
    }
}
