// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore

/// Merges the patch objects of several source files into one relocatable
/// object: sections and symbols side by side, one undefined symbol per
/// referenced target symbol, and references between the parts bound to the
/// part that defines them.
struct PatchMerge {
    /// One source file's patch object, with the file name its static
    /// symbols are qualified by.
    struct Part {
        let patch: PatchObject
        let file: String
    }

    private(set) var object = RelocatableObject(machine: Machine.x86_64)
    private(set) var references: [PatchManifest.Reference] = []
    /// (part, original function name) → the new code's symbol name in `object`.
    private(set) var newSymbols: [String: String] = [:]

    static func key(_ part: Int, _ name: String) -> String { "\(part)\u{0}\(name)" }

    init(_ parts: [Part]) throws(ProcessError) {
        // Pass 1: sections and defined symbols of every part.
        var sectionMaps: [[Int: SectionID]] = []
        var symbolMaps: [[Int: SymbolID]] = []
        var definedGlobals: [String: SymbolID] = [:]
        var usedNames = Set<String>()
        for part in parts {
            let source = part.patch.object
            var sections: [Int: SectionID] = [:]
            for (i, s) in source.sections.enumerated() {
                if s.name == ".suture.manifest" { continue }
                switch s.content {
                case .symbolTable, .symbolNames, .sectionNames, .relocations: continue
                default: break
                }
                var copy = s
                if case .section(let id) = s.link, let mapped = sections[id.value] { copy.link = .section(mapped) }
                sections[i] = object.add(copy)
            }
            var symbols: [Int: SymbolID] = [:]
            for (i, s) in source.symbols.enumerated() where s.place != .undefined {
                var copy = s
                if case .section(let id) = s.place {
                    guard let mapped = sections[id.value] else { continue }
                    copy.place = .section(mapped)
                }
                if !s.isLocal && s.type != SymbolType.file {
                    if definedGlobals[s.name] != nil {
                        throw ProcessError(.build, "two patched files define the global symbol \(s.name)")
                    }
                }
                let id = object.add(copy)
                if !s.isLocal && s.type != SymbolType.file { definedGlobals[s.name] = id }
                if s.type != SymbolType.file && s.type != SymbolType.section && !s.name.isEmpty {
                    usedNames.insert(s.name)
                }
                symbols[i] = id
            }
            sectionMaps.append(sections)
            symbolMaps.append(symbols)
        }

        // Pass 2: undefined symbols, one per target symbol.
        var undefinedByKey: [String: SymbolID] = [:]
        for (p, part) in parts.enumerated() {
            let source = part.patch.object
            for (i, s) in source.symbols.enumerated() where s.place == .undefined {
                let ref = part.patch.references.first { $0.name == s.name }
                let origin: PatchManifest.Reference.Origin
                switch ref?.origin {
                case .local?: origin = .local
                case .global?: origin = .global
                default: origin = .external
                }
                if origin != .local, let defined = definedGlobals[s.name] {
                    symbolMaps[p][i] = defined
                    continue
                }
                let key = origin == .local ? "l:\(part.file)\u{0}\(s.name)" : "g:\(s.name)"
                if let existing = undefinedByKey[key] {
                    symbolMaps[p][i] = existing
                    continue
                }
                var name = s.name
                var n = 1
                while usedNames.contains(name) {
                    name = "\(s.name).suture.\(n)"
                    n += 1
                }
                usedNames.insert(name)
                let id = object.add(
                    ObjectSymbol(name: name, type: SymbolType.notype, binding: SymbolBinding.global, place: .undefined))
                undefinedByKey[key] = id
                symbolMaps[p][i] = id
                references.append(
                    PatchManifest.Reference(
                        symbol: name, name: s.name,
                        file: origin == .local ? part.file : nil, origin: origin))
            }
        }

        // Pass 3: relocations, with every index remapped.
        for (p, part) in parts.enumerated() {
            for s in part.patch.object.sections {
                guard case .relocations(let target, let entries) = s.content else { continue }
                guard let t = target, let mapped = sectionMaps[p][t.value] else { continue }
                var out: [ObjectRelocation] = []
                for r in entries {
                    var copy = r
                    if let symbol = r.symbol {
                        guard let m = symbolMaps[p][symbol.value] else {
                            throw ProcessError(
                                .build, "\(part.file): a relocation in \(s.name) refers to a symbol that was not kept")
                        }
                        copy.symbol = m
                    }
                    out.append(copy)
                }
                object.add(.rela(s.name, target: mapped, out))
            }
        }

        // The new code of each replaced function gets a name unique in the object.
        var counts: [String: Int] = [:]
        for s in object.symbols where s.place != .undefined && !s.name.isEmpty { counts[s.name, default: 0] += 1 }
        for (p, part) in parts.enumerated() {
            for f in part.patch.functions where !f.isNew {
                guard
                    let oldID = part.patch.object.symbols.firstIndex(where: {
                        $0.name == f.symbol && $0.place != .undefined
                    }),
                    let id = symbolMaps[p][oldID]
                else {
                    throw ProcessError(.build, "\(part.file): the patch object has no code for \(f.originalName)")
                }
                var name = object.symbols[id.value].name
                if counts[name, default: 0] > 1 {
                    var n = 1
                    while usedNames.contains("\(name).suture.\(n)") { n += 1 }
                    name = "\(name).suture.\(n)"
                    usedNames.insert(name)
                    object.symbols[id.value].name = name
                }
                newSymbols[PatchMerge.key(p, f.originalName)] = name
            }
        }
    }

    /// Adds the manifest section.
    mutating func addManifest(_ manifest: PatchManifest) {
        object.add(
            ObjectSection(
                name: PatchManifest.sectionName, type: SectionType.progbits, flags: 0,
                content: .bytes(ELFBytes(Array(manifest.json.serialized(pretty: true).utf8 + [0x0a])))))
    }
}
