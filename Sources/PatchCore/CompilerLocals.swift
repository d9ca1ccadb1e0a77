// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// Objects the compiler makes for the source's macros rather than the
/// author's own variables: `__func__` strings, switch tables, dynamic-debug
/// descriptors, once-flags, lockdep keys. Their names carry compiler
/// numbers that change from build to build, so each kind is treated for
/// what it is:
///
/// | kind | example | in the patch |
/// |---|---|---|
/// | read-only | `__func__.3`, `__PRETTY_FUNCTION__.1`, `CSWTCH.12` | correlated by content, carried by value |
/// | writable, existing | `__already_done.0` (`.data.once`), `__key.4`, `__warned.2` | a reference to the running copy |
/// | writable, new | a new `WARN_ONCE`'s `__already_done.N` | the patch's own |
/// | dynamic debug (modules) | `__UNIQUE_ID_ddebug417.2` in `__dyndbg` | the patch's own copy, with its key |
///
/// kpatch keeps a similar list (`is_special_static`); the difference here is
/// that read-only ones are always copied, so no symbol lookup is needed.
public enum CompilerLocals {
    /// Name stems of read-only objects that gcc or the kernel's macros
    /// generate inside functions.
    static let readOnlyStems: Set<String> = ["__func__", "__FUNCTION__", "__PRETTY_FUNCTION__", "CSWTCH"]

    /// The name without its compiler number: `__func__.12` → `__func__`.
    static func stem(_ name: String) -> Substring {
        name.prefix { $0 != "." }
    }

    /// Whether `element` is a read-only compiler-generated local: the
    /// patch carries its bytes instead of referring to the running copy.
    public static func isReadOnly(_ element: Element, in index: ObjectIndex) -> Bool {
        guard element.kind == .data, element.isLocal else { return false }
        let section = index.file.sections[element.section]
        guard !section.has(SectionFlags.write), section.type != SectionType.nobits else { return false }
        return readOnlyStems.contains(String(stem(element.name)))
    }

    /// Whether `element` is a dynamic-debug descriptor (`struct _ddebug`
    /// in `__dyndbg`), whose static key a `pr_debug` site branches on.
    public static func isDynamicDebugDescriptor(_ element: Element, in index: ObjectIndex) -> Bool {
        element.kind == .data && index.file.sections[element.section].name == "__dyndbg"
    }

    /// Sections whose name the loader looks for, so an element copied out of
    /// them keeps it: the patch module's `__dyndbg` descriptors are then
    /// registered with dynamic debug like any module's, and its `pr_debug`
    /// sites can be turned on in `dynamic_debug/control`.
    static func keepsSectionName(_ name: String) -> Bool {
        name == "__dyndbg"
    }

    /// Whether included code that refers to `element` gets its own copy of
    /// it in the patch, even when the element exists in the original.
    static func carriedByValue(_ element: Element, in index: ObjectIndex) -> Bool {
        if isReadOnly(element, in: index) { return true }
        return index.rules.copiesDynamicDebug && isDynamicDebugDescriptor(element, in: index)
    }

    /// Pairs read-only compiler locals of the two builds by name stem and
    /// content, where that pairing is unique on both sides: `__func__.3`
    /// holding "foo" is the original's `__func__.5` holding "foo", whatever
    /// gcc numbered them this time.
    static func correlateByContent(
        _ original: ObjectIndex, _ patched: ObjectIndex,
        link: (_ patched: Int, _ original: Int) -> Void
    ) {
        struct Key: Hashable {
            let stem: Substring
            let bytes: [UInt8]
        }
        func groups(_ index: ObjectIndex) -> [Key: [Int]] {
            var result: [Key: [Int]] = [:]
            for e in index.elements where isReadOnly(e, in: index) {
                result[Key(stem: stem(e.name), bytes: index.bytes(of: e)), default: []].append(e.index)
            }
            return result
        }
        let o = groups(original)
        let p = groups(patched)
        for (key, os) in o where os.count == 1 {
            if let ps = p[key], ps.count == 1 { link(ps[0], os[0]) }
        }
    }
}

/// Names whose numbers come from `__COUNTER__`, which any new macro use
/// earlier in the file shifts: BTF ID symbols and dynamic-debug
/// descriptors. Other `__UNIQUE_ID_*` names are left alone.
public enum CounterNames {
    static let prefixes = ["__BTF_ID__", "__UNIQUE_ID_ddebug"]

    /// `__BTF_ID__struct__sock__316268` → `__BTF_ID__struct__sock__#`;
    /// `__UNIQUE_ID_ddebug417.2` → `__UNIQUE_ID_ddebug#.2`.
    public static func normalize(_ name: String) -> String {
        guard let prefix = prefixes.first(where: { name.hasPrefix($0) }) else { return name }
        let head = name.prefix { $0 != "." }
        let tail = name[head.endIndex...]
        var digits = head.endIndex
        while digits > head.startIndex, head[head.index(before: digits)].isASCII,
            head[head.index(before: digits)].isNumber
        {
            digits = head.index(before: digits)
        }
        guard digits < head.endIndex, head.distance(from: head.startIndex, to: digits) >= prefix.count else {
            return name
        }
        return String(head[..<digits]) + "#" + tail
    }
}

extension TargetRules {
    /// The same rules for the objects of a loadable module: dynamic-debug
    /// descriptors are copied into the patch, since a jump label of the
    /// patch cannot refer to the module's own key (the kernel applies
    /// jump labels before it resolves the module's klp relocations).
    public func forModule() -> TargetRules {
        var rules = self
        rules.copiesDynamicDebug = true
        return rules
    }
}
