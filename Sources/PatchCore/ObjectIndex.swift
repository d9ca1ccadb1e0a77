// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// A function or data object: a named byte range of one section. The unit
/// the diff correlates, compares and includes.
public struct Element: Sendable {
    public enum Kind: String, Sendable { case function, data }

    public let index: Int
    public let symbol: Int
    public let name: String
    public let kind: Kind
    public let section: Int
    public let start: UInt64
    public let end: UInt64
    public let isLocal: Bool
    public let isThreadLocal: Bool
    public let isIndirectFunction: Bool
    /// Whether the element is the only one in its section and spans it.
    public let ownsSection: Bool

    public var size: UInt64 { end - start }
}

/// Where a relocation points, resolved from "symbol + addend" (often a
/// section symbol with an offset) to the element or datum it means.
public enum Target: Equatable, Sendable {
    /// An element, with the relocation's addend relative to the element's start.
    case element(Int, addend: Int64)
    /// A symbol this object does not define.
    case external(String, addend: Int64)
    /// A datum in a mergeable section (strings, constants), found by content.
    case merged(section: Int, offset: UInt64, addend: Int64)
    /// Unnamed bytes of a section, by section and addend.
    case anonymous(section: Int, addend: Int64)
    /// No symbol (index 0) or an absolute symbol.
    case absolute(String, addend: Int64)
}

/// One relocation within an element or special entry, with its resolved target.
public struct ResolvedRelocation: Sendable {
    /// Offset within the section.
    public let offset: UInt64
    public let type: UInt32
    public let target: Target
    /// False for branches between functions of one section that the
    /// assembler resolved without a relocation; the diff adds them.
    public let explicit: Bool
}

/// An immutable index of one object for diffing: its elements, their
/// relocations resolved to targets, and its special-section entries.
public struct ObjectIndex: Sendable {
    public let file: ELFFile
    public let rules: TargetRules
    public let elements: [Element]
    /// Elements of each section, sorted by start.
    let elementsBySection: [Int: [Int]]
    let elementBySymbol: [Int: Int]
    /// Relocations of each section, sorted by offset, resolved.
    let relocationsBySection: [Int: [ResolvedRelocation]]
    /// The source file name (`STT_FILE`), if any.
    public let sourceFile: String?

    public init(_ file: ELFFile, rules: TargetRules) throws(PatchCoreError) {
        guard file.header.type == FileType.relocatable else {
            throw PatchCoreError(
                .unsupportedInput,
                "\(file.path): not a relocatable object (e_type \(file.header.type)); compile with -c")
        }
        guard file.symbolTableIndex != nil else {
            throw PatchCoreError(.unsupportedInput, "\(file.path): has no symbol table")
        }
        try ObjectChecks.requireConsistent(file)
        self.file = file
        self.rules = rules
        sourceFile = file.symbols.first { $0.type == SymbolType.file && !$0.name.isEmpty }?.name

        // Elements: every function and data object with a defined section.
        var elements: [Element] = []
        var bySection: [Int: [Int]] = [:]
        var bySymbol: [Int: Int] = [:]
        var candidates: [Int: [Symbol]] = [:]
        for symbol in file.symbols.dropFirst() {
            guard let section = symbol.definingSection, section < file.sections.count else { continue }
            let t = symbol.type
            guard
                t == SymbolType.function || t == SymbolType.object || t == SymbolType.tls
                    || t == SymbolType.gnuIfunc
            else { continue }
            // The author's directives to the diff are not part of the program.
            if rules.readsDirectives && file.sections[section].name.hasPrefix(PatchDirectives.sectionPrefix) {
                continue
            }
            candidates[section, default: []].append(symbol)
        }
        for (section, symbols) in candidates.sorted(by: { $0.key < $1.key }) {
            let header = file.sections[section]
            // Aliases share a start; keep one element per start, preferring
            // the global name, as the kernel's kallsyms lists both anyway.
            let sorted = symbols.sorted {
                $0.value != $1.value
                    ? $0.value < $1.value : ($0.isLocal ? 1 : 0, $0.index) < ($1.isLocal ? 1 : 0, $1.index)
            }
            var starts: [Symbol] = []
            for s in sorted where starts.last?.value != s.value { starts.append(s) }
            for (i, s) in starts.enumerated() {
                var end = s.value + s.size
                if s.size == 0 {
                    end = i + 1 < starts.count ? starts[i + 1].value : header.size
                }
                end = min(max(end, s.value), header.size)
                let element = Element(
                    index: elements.count, symbol: s.index, name: s.name,
                    kind: (s.type == SymbolType.function || s.type == SymbolType.gnuIfunc) ? .function : .data,
                    section: section, start: s.value, end: end, isLocal: s.isLocal,
                    isThreadLocal: s.type == SymbolType.tls || header.has(SectionFlags.tls),
                    isIndirectFunction: s.type == SymbolType.gnuIfunc,
                    ownsSection: starts.count == 1 && s.value == 0 && end == header.size)
                bySection[section, default: []].append(element.index)
                for alias in sorted where alias.value == s.value { bySymbol[alias.index] = element.index }
                elements.append(element)
            }
        }
        self.elements = elements
        elementsBySection = bySection
        elementBySymbol = bySymbol

        // Relocations, resolved.
        var relocations: [Int: [ResolvedRelocation]] = [:]
        for rs in file.relocationSections where rs.target > 0 && rs.symbolTable == file.symbolTableIndex {
            let target = file.sections[rs.target]
            if rules.isIgnored(target.name) { continue }
            var list: [ResolvedRelocation] = []
            list.reserveCapacity(rs.relocations.count)
            for r in rs.relocations {
                list.append(
                    ResolvedRelocation(
                        offset: r.offset, type: r.type,
                        target: ObjectIndex.resolve(
                            r, in: rs.target, file: file, rules: rules, bySection: bySection, elements: elements,
                            bySymbol: bySymbol),
                        explicit: true))
            }
            relocations[rs.target] = list.sorted { $0.offset < $1.offset }
        }
        // Branches between functions that share a section.
        for (section, members) in bySection where members.count > 1 && file.sections[section].isExecutable {
            let implicit = ObjectIndex.implicitBranches(
                section: section, members: members, elements: elements,
                file: file, explicit: relocations[section] ?? [],
                architecture: rules.architecture)
            if !implicit.isEmpty {
                relocations[section] = ((relocations[section] ?? []) + implicit).sorted { $0.offset < $1.offset }
            }
        }
        relocationsBySection = relocations
    }

    // MARK: - Queries

    /// The element with this symbol index.
    func element(forSymbol index: Int) -> Element? {
        elementBySymbol[index].map { elements[$0] }
    }

    /// The element covering `offset` of `section`.
    func element(in section: Int, at offset: UInt64) -> Int? {
        guard let members = elementsBySection[section] else { return nil }
        var best: Int?
        for m in members {
            let e = elements[m]
            if e.start <= offset && (offset < e.end || (e.start == e.end && offset == e.start)) { best = m }
            if e.start > offset { break }
        }
        return best
    }

    /// The relocations inside `[start, end)` of a section.
    public func relocations(in section: Int, from start: UInt64, to end: UInt64) -> ArraySlice<ResolvedRelocation> {
        guard let all = relocationsBySection[section] else { return [] }
        var lo = 0
        var hi = all.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if all[mid].offset < start { lo = mid + 1 } else { hi = mid }
        }
        var stop = lo
        while stop < all.count && all[stop].offset < end { stop += 1 }
        return all[lo..<stop]
    }

    /// The bytes of an element; zeros for `SHT_NOBITS`, as at run time.
    public func bytes(of element: Element) -> [UInt8] {
        let section = file.sections[element.section]
        guard section.type != SectionType.nobits else { return [UInt8](repeating: 0, count: Int(element.size)) }
        let data = file.data(section)
        return data.slice(Int(element.start)..<Int(element.end)).array
    }

    // MARK: - Resolution

    /// Resolves a relocation of any section, also one the rules ignore.
    func resolve(_ r: Relocation, in section: Int) -> Target {
        ObjectIndex.resolve(
            r, in: section, file: file, rules: rules, bySection: elementsBySection, elements: elements,
            bySymbol: elementBySymbol)
    }

    static func resolve(
        _ r: Relocation, in relocatedSection: Int, file: ELFFile, rules: TargetRules, bySection: [Int: [Int]],
        elements: [Element], bySymbol: [Int: Int]
    ) -> Target {
        guard r.symbol != 0, Int(r.symbol) < file.symbols.count else { return .absolute("", addend: r.addend) }
        let symbol = file.symbols[Int(r.symbol)]
        if symbol.isUndefined { return .external(symbol.name, addend: r.addend) }
        guard let sectionIndex = symbol.definingSection else { return .absolute(symbol.name, addend: r.addend) }
        if !symbol.isSection, let e = bySymbol[symbol.index] {
            return .element(e, addend: r.addend &+ Int64(bitPattern: symbol.value &- elements[e].start))
        }
        let section = file.sections[sectionIndex]
        let kind = rules.architecture.kind(r.type)
        // Addends are any 64-bit value (hostile input too): wrapping
        // arithmetic, and every candidate is range-checked before use.
        let base = Int64(bitPattern: symbol.value) &+ r.addend
        // In code, a PC-relative field's datum lies past the end of the
        // instruction: addend + 4 + any immediate after the field. In data
        // (exception tables, ORC), the field itself is the place: addend + 0.
        var candidates: [Int64] = [base]
        if let kind, kind.pcRelative, kind.size == 4, file.sections[relocatedSection].isExecutable {
            let code = file.data(file.sections[relocatedSection])
            if let after = InstructionQuirks.bytesAfterField(rules.architecture, code: code, offset: Int(r.offset)) {
                candidates = [base &+ 4 &+ Int64(after)]
            } else {
                candidates = [base &+ 4, base &+ 5, base &+ 8, base &+ 6, base]
            }
        }
        if section.has(SectionFlags.merge) {
            let data = file.data(section)
            if section.has(SectionFlags.strings) {
                let inRange = candidates.filter { $0 >= 0 && $0 < Int64(data.count) }
                // Prefer a string start; a pointer into a string's middle is
                // that string's tail.
                if let c = inRange.first(where: { $0 == 0 || data[Int($0) - 1] == 0 }) ?? inRange.first {
                    return .merged(
                        section: sectionIndex, offset: UInt64(c),
                        addend: r.addend &- (c &- Int64(bitPattern: symbol.value)))
                }
            } else if section.entrySize > 0, let c = candidates.first(where: { $0 >= 0 && $0 < Int64(data.count) }) {
                let offset = UInt64(c) / section.entrySize * section.entrySize
                return .merged(
                    section: sectionIndex, offset: offset,
                    addend: r.addend &- (Int64(offset) &- Int64(bitPattern: symbol.value)))
            }
            return .anonymous(section: sectionIndex, addend: base)
        }
        // An element covering the target, trying the likely offsets in order.
        if let members = bySection[sectionIndex] {
            for c in candidates where c >= 0 {
                for m in members {
                    let e = elements[m]
                    if UInt64(c) >= e.start && (UInt64(c) < e.end || (e.start == e.end && UInt64(c) == e.start)) {
                        return .element(m, addend: base &- Int64(bitPattern: e.start))
                    }
                }
            }
        }
        return .anonymous(section: sectionIndex, addend: base)
    }

    /// `call`/`jmp`/`jcc rel32` from one function to the start of another in
    /// the same section, which the assembler encodes without a relocation.
    /// Found by scanning for the opcodes; a false match would also have to
    /// land exactly on another function's first byte.
    static func implicitBranches(
        section: Int, members: [Int], elements: [Element], file: ELFFile,
        explicit: [ResolvedRelocation], architecture: Architecture
    ) -> [ResolvedRelocation] {
        guard architecture.machine == Machine.x86_64 else { return [] }
        let data = file.data(file.sections[section]).array
        guard !data.isEmpty else { return [] }
        var covered = [Bool](repeating: false, count: data.count)
        for r in explicit {
            let size = architecture.kind(r.type)?.size ?? 4
            for k in 0..<max(size, 1) where Int(r.offset) + k < covered.count { covered[Int(r.offset) + k] = true }
        }
        var starts: [Int: Int] = [:]
        for m in members { starts[Int(elements[m].start)] = m }
        var result: [ResolvedRelocation] = []
        for m in members {
            let e = elements[m]
            var p = Int(e.start)
            while p < Int(e.end) {
                var field = -1
                if data[p] == 0xe8 || data[p] == 0xe9 {
                    field = p + 1
                } else if data[p] == 0x0f && p + 1 < data.count && (data[p + 1] & 0xf0) == 0x80 {
                    field = p + 2
                }
                if field > 0 && field + 4 <= Int(e.end) && !covered[field..<field + 4].contains(true) {
                    let rel = Int32(
                        bitPattern: UInt32(data[field]) | UInt32(data[field + 1]) << 8
                            | UInt32(data[field + 2]) << 16 | UInt32(data[field + 3]) << 24)
                    let destination = field + 4 + Int(rel)
                    if let target = starts[destination], target != m {
                        result.append(
                            ResolvedRelocation(
                                offset: UInt64(field), type: architecture.pcRelative32,
                                target: .element(target, addend: -4), explicit: false))
                        p = field + 4
                        continue
                    }
                }
                p += 1
            }
        }
        return result
    }
}
