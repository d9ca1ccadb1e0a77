// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// A symbol the patch object refers to but does not contain, with what the
/// next stage needs to decide how to resolve it (for the kernel: a klp
/// relocation for symbols that module loading cannot resolve).
public struct Reference: Sendable, Equatable {
    public enum Origin: String, Sendable {
        /// Defined in the original object with local binding (static).
        case local
        /// Defined in the original object with global or weak binding.
        case global
        /// Not defined in the original object at all.
        case external
    }

    /// The name in the original object (and so in the running program).
    public let name: String
    public let origin: Origin
    public let kind: Element.Kind?
    /// The section that defines it in the original object, if any.
    public let section: String?
}

/// A function of the patch: which original function it replaces.
public struct PatchedFunction: Sendable, Equatable {
    /// The function's name in the original object (what to redirect).
    public let originalName: String
    /// The symbol of the new code in the patch object.
    public let symbol: String
    public let isNew: Bool
    /// Whether the function is local (static) in the original object.
    public let isLocal: Bool
}

/// Stage 4's result: the relocatable patch object and what the next stage
/// needs to know about it.
public struct PatchObject: Sendable {
    public var object: RelocatableObject
    public let references: [Reference]
    /// Changed functions (to redirect) and new functions (to carry).
    public let functions: [PatchedFunction]
    /// The original object's source file name (`STT_FILE`).
    public let sourceFile: String?
    /// Callbacks: stage and the symbol of their code in the patch object.
    public var callbacks: [(stage: PatchDirectives.Stage, symbol: String)] = []
    /// Names of the sections in the patch object, in order.
    public var includedSections: [String] { object.sections.map(\.name) }
}

/// Stage 4: writes the selected elements, sections and special entries into
/// a new relocatable object. Relocations are rewritten to point at the
/// included copies or at undefined references to the original symbols.
struct Emitter {
    let original: ObjectIndex
    let patched: ObjectIndex
    let correlation: Correlation
    let comparison: Comparison
    let selection: Selection
    let tables: [SpecialTable]
    var directives = PatchDirectives()

    func run() throws(PatchCoreError) -> PatchObject {
        let file = patched.file
        var out = RelocatableObject(machine: file.header.machine)
        out.osABI = file.header.osABI
        var references: [Reference] = []
        var referenceSymbols: [String: SymbolID] = [:]
        var elementSymbols: [Int: SymbolID] = [:]
        var sectionSymbols: [Int: SymbolID] = [:]  // patched whole section → its copy's section symbol
        var pendingRelocations: [(section: SectionID, source: Int, from: UInt64, to: UInt64, shift: Int64)] = []

        if let source = patched.sourceFile {
            out.add(
                ObjectSymbol(
                    name: source, type: SymbolType.file, binding: SymbolBinding.local,
                    place: .reserved(SpecialSection.absolute)))
        }

        // Elements.
        for p in selection.elements {
            let e = patched.elements[p]
            let s = file.sections[e.section]
            let name: String
            if e.ownsSection || CompilerLocals.keepsSectionName(s.name) {
                name = s.name
            } else {
                let base =
                    s.isExecutable
                    ? ".text"
                    : s.type == SectionType.nobits
                        ? ".bss"
                        : s.has(SectionFlags.write) ? ".data" : ".rodata"
                name = "\(base).\(e.name)"
            }
            let flags = s.flags & ~SectionFlags.group
            var section = ObjectSection(
                name: name, type: s.type, flags: flags, alignment: max(s.alignment, 1),
                entrySize: s.entrySize, content: .noBits(e.size))
            if s.type != SectionType.nobits {
                section.content = .bytes(file.data(s).slice(Int(e.start)..<Int(e.end)))
            }
            let id = out.add(section)
            let symbol = file.symbols[e.symbol]
            elementSymbols[p] = out.add(
                ObjectSymbol(
                    name: e.name, value: 0, size: e.size, type: symbol.type,
                    binding: symbol.binding, other: symbol.other, place: .section(id)))
            pendingRelocations.append((id, e.section, e.start, e.end, -Int64(e.start)))
        }
        // Whole sections (strings, constants, unnamed read-only data).
        for w in selection.wholeSections {
            let s = file.sections[w]
            var section = ObjectSection(
                name: s.name, type: s.type, flags: s.flags & ~SectionFlags.group,
                alignment: max(s.alignment, 1), entrySize: s.entrySize, content: .noBits(s.size))
            if s.type != SectionType.nobits { section.content = .bytes(file.data(s)) }
            let id = out.add(section)
            sectionSymbols[w] = out.add(
                ObjectSymbol(
                    name: "", type: SymbolType.section, binding: SymbolBinding.local,
                    place: .section(id)))
            pendingRelocations.append((id, w, 0, s.size, 0))
        }
        // Special entries, in their original order.
        for (t, table) in tables.enumerated() {
            guard let kept = selection.entries[t], !kept.isEmpty else { continue }
            let s = file.sections[table.section]
            let data = file.data(s)
            var bytes: [UInt8] = []
            var parallelBytes: [UInt8] = []
            let id = out.add(
                ObjectSection(
                    name: s.name, type: s.type, flags: s.flags & ~SectionFlags.group,
                    alignment: max(s.alignment, 1), entrySize: s.entrySize, content: .noBits(0)))
            for i in kept {
                let entry = table.entries[i]
                let shift = Int64(bytes.count) - Int64(entry.start)
                bytes += data.slice(Int(entry.start)..<Int(entry.end)).array
                pendingRelocations.append((id, table.section, entry.start, entry.end, shift))
                if let p = table.parallelSection, let rule = table.rule.parallel {
                    let pdata = file.data(file.sections[p])
                    parallelBytes += pdata.slice(i * rule.entrySize..<(i + 1) * rule.entrySize).array
                }
            }
            out.sections[id.value].content = .bytes(ELFBytes(bytes))
            if let p = table.parallelSection {
                let ps = file.sections[p]
                out.add(
                    ObjectSection(
                        name: ps.name, type: ps.type, flags: ps.flags & ~SectionFlags.group,
                        alignment: max(ps.alignment, 1), entrySize: ps.entrySize,
                        content: .bytes(ELFBytes(parallelBytes))))
            }
        }

        // References to what the patch does not carry.
        func reference(_ name: String, origin: Reference.Origin, kind: Element.Kind?, section: String?) -> SymbolID {
            if let existing = referenceSymbols[name] { return existing }
            let id = out.add(
                ObjectSymbol(name: name, type: SymbolType.notype, binding: SymbolBinding.global, place: .undefined))
            referenceSymbols[name] = id
            references.append(Reference(name: name, origin: origin, kind: kind, section: section))
            return id
        }

        var relocationsByOutput: [SectionID: [ObjectRelocation]] = [:]
        // Relocations, rewritten.
        func mapTarget(_ target: Target) throws(PatchCoreError) -> (SymbolID?, Int64) {
            let symbol: SymbolID?
            var addend: Int64
            switch target {
            case .element(let t, let a):
                addend = a
                if let included = elementSymbols[t] {
                    symbol = included
                } else if let o = correlation.originalOf[t] {
                    let oe = original.elements[o]
                    let os = original.file.symbols[oe.symbol]
                    symbol = reference(
                        oe.name, origin: os.isLocal ? .local : .global, kind: oe.kind,
                        section: original.file.sections[oe.section].name)
                } else {
                    throw PatchCoreError(
                        .unsupportedInput, "internal: \(patched.elements[t].name) is new but was not selected")
                }
            case .external(let name, let a):
                addend = a
                symbol = reference(name, origin: .external, kind: nil, section: nil)
            case .merged(let section, let offset, let a):
                guard let s = sectionSymbols[section] else {
                    throw PatchCoreError(.unsupportedInput, "internal: \(file.sections[section].name) was not selected")
                }
                symbol = s
                addend = Int64(offset) &+ a
            case .anonymous(let section, let a):
                addend = a
                if let s = sectionSymbols[section] {
                    symbol = s
                } else {
                    // Dropped special data (e.g. .printk_index targets): keep the
                    // bytes pointing nowhere rather than at the wrong place.
                    symbol = nil
                }
            case .absolute(let name, let a):
                addend = a
                symbol = name.isEmpty ? nil : reference(name, origin: .external, kind: nil, section: nil)
            }
            return (symbol, addend)
        }
        // Unwind tables of the included functions (user space: C++
        // exceptions must unwind through the new code).
        if patched.rules.carriesUnwindTables {
            var unwind: [(section: SectionID, offset: UInt64, type: UInt32, target: Target)] = []
            try carryUnwindTables(
                into: &out, elementSymbols: &elementSymbols, sectionSymbols: &sectionSymbols,
                pendingRelocations: &pendingRelocations, relocations: &unwind)
            for u in unwind {
                let (symbol, addend) = try mapTarget(u.target)
                relocationsByOutput[u.section, default: []].append(
                    ObjectRelocation(offset: u.offset, type: u.type, symbol: symbol, addend: addend))
            }
        }
        for pending in pendingRelocations {
            for r in patched.relocations(in: pending.source, from: pending.from, to: pending.to) {
                let (symbol, addend) = try mapTarget(r.target)
                relocationsByOutput[pending.section, default: []].append(
                    ObjectRelocation(
                        offset: UInt64(Int64(r.offset) + pending.shift), type: r.type, symbol: symbol, addend: addend))
            }
        }
        // A new local that happens to share its name with a referenced original
        // symbol (gcc numbering) gets a distinct name, so the two never mix.
        for (_, id) in elementSymbols where referenceSymbols[out.symbols[id.value].name] != nil {
            out.symbols[id.value].name += ".patch"
        }
        for (section, entries) in relocationsByOutput.sorted(by: { $0.key < $1.key }) {
            let name = out.sections[section.value].name
            out.add(.rela(".rela" + name, target: section, entries.sorted { $0.offset < $1.offset }))
        }

        // What the next stage needs, also kept in the object for `suture diff -o`.
        var manifest = "# suture patch object: name<TAB>origin<TAB>kind<TAB>section\n"
        if let source = patched.sourceFile { manifest += "source\t\(source)\n" }
        for r in references {
            manifest += "reference\t\(r.name)\t\(r.origin.rawValue)\t\(r.kind?.rawValue ?? "-")\t\(r.section ?? "-")\n"
        }
        var functions: [PatchedFunction] = []
        for p in selection.elements where patched.elements[p].kind == .function {
            let e = patched.elements[p]
            if Correlation.parentName(of: e.name) != nil { continue }
            let verdict = comparison.verdict(patched: p)
            let originalName = correlation.originalOf[p].map { original.elements[$0].name } ?? e.name
            let isLocal = correlation.originalOf[p].map { original.elements[$0].isLocal } ?? e.isLocal
            let symbolName = elementSymbols[p].map { out.symbols[$0.value].name } ?? e.name
            functions.append(
                PatchedFunction(
                    originalName: originalName, symbol: symbolName,
                    isNew: verdict?.status == .new || selection.carried.contains(p), isLocal: isLocal))
            manifest += "function\t\(originalName)\t\(verdict?.status.rawValue ?? "?")\t\(symbolName)\n"
        }
        var callbacks: [(stage: PatchDirectives.Stage, symbol: String)] = []
        for (callback, e) in zip(directives.callbacks, directives.callbackElements) {
            guard let id = elementSymbols[e] else {
                throw PatchCoreError(
                    .unsupportedInput,
                    "internal: the \(callback.stage.rawValue) callback \(callback.function) was not selected")
            }
            callbacks.append((callback.stage, out.symbols[id.value].name))
            manifest += "callback\t\(callback.stage.rawValue)\t\(out.symbols[id.value].name)\n"
        }
        out.add(
            ObjectSection(
                name: ".suture.manifest", type: SectionType.progbits, flags: 0,
                content: .bytes(ELFBytes(Array(manifest.utf8)))))
        var patch = PatchObject(
            object: out, references: references, functions: functions, sourceFile: patched.sourceFile)
        patch.callbacks = callbacks
        return patch
    }
}
