// SPDX-License-Identifier: GPL-2.0-only

/// A relocatable object as a value to build or edit, then write with
/// `ELFWriter`. Unlike `ELFFile`, which mirrors bytes on disk, this model
/// refers to sections and symbols by identity, so sections and symbols can
/// be added, removed and reordered while the writer computes every final
/// index (`sh_link`, `sh_info`, `st_shndx`, relocation symbol indexes,
/// group members).
public struct RelocatableObject: Sendable {
    public var fileType: UInt16 = FileType.relocatable
    public var machine: UInt16
    public var osABI: UInt8 = 0
    public var flags: UInt32 = 0
    /// Sections in output order; `SectionID(n)` is `sections[n]`. The null
    /// section is implicit.
    public var sections: [ObjectSection] = []
    /// Symbols; `SymbolID(n)` is `symbols[n]`. The null symbol is implicit.
    /// The writer emits locals first (as ELF requires) and keeps the order
    /// within locals and within the others.
    public var symbols: [ObjectSymbol] = []

    public init(machine: UInt16) {
        self.machine = machine
    }

    @discardableResult
    public mutating func add(_ section: ObjectSection) -> SectionID {
        sections.append(section)
        return SectionID(sections.count - 1)
    }

    @discardableResult
    public mutating func add(_ symbol: ObjectSymbol) -> SymbolID {
        symbols.append(symbol)
        return SymbolID(symbols.count - 1)
    }

    /// Removes sections and renumbers every reference to the others.
    /// Fails when a kept section or symbol still refers to a removed one.
    public mutating func removeSections(_ ids: Set<SectionID>) throws(ELFError) {
        guard !ids.isEmpty else { return }
        var map: [Int: SectionID] = [:]
        var next = 0
        for i in sections.indices where !ids.contains(SectionID(i)) {
            map[i] = SectionID(next)
            next += 1
        }
        func remap(_ id: SectionID, user: String) throws(ELFError) -> SectionID {
            guard let new = map[id.value] else {
                throw ELFError(
                    .write, path: "<object>",
                    "\(user) refers to section \(sections[id.value].name), which is being removed")
            }
            return new
        }
        var kept: [ObjectSection] = []
        for (i, var section) in sections.enumerated() where !ids.contains(SectionID(i)) {
            switch section.content {
            case .relocations(let target, let entries):
                section.content = .relocations(
                    target: try target.map { (t) throws(ELFError) in try remap(t, user: section.name) },
                    entries: entries)
            case .group(let flags, let signature, let members):
                var newMembers: [SectionID] = []
                for m in members { newMembers.append(try remap(m, user: section.name)) }
                section.content = .group(flags: flags, signature: signature, members: newMembers)
            default: break
            }
            if case .section(let id) = section.link { section.link = .section(try remap(id, user: section.name)) }
            if case .section(let id) = section.info { section.info = .section(try remap(id, user: section.name)) }
            kept.append(section)
        }
        for i in symbols.indices {
            if case .section(let id) = symbols[i].place {
                symbols[i].place = .section(try remap(id, user: "symbol \(symbols[i].name)"))
            }
        }
        sections = kept
    }

    /// The first section with this name.
    public func section(named name: String) -> SectionID? {
        sections.firstIndex { $0.name == name }.map(SectionID.init)
    }

    /// The first symbol with this name.
    public func symbol(named name: String) -> SymbolID? {
        symbols.firstIndex { $0.name == name }.map(SymbolID.init)
    }
}

/// A section's identity inside a `RelocatableObject`.
public struct SectionID: Hashable, Sendable, Comparable {
    public let value: Int
    public init(_ value: Int) { self.value = value }
    public static func < (a: SectionID, b: SectionID) -> Bool { a.value < b.value }
}

/// A symbol's identity inside a `RelocatableObject`.
public struct SymbolID: Hashable, Sendable, Comparable {
    public let value: Int
    public init(_ value: Int) { self.value = value }
    public static func < (a: SymbolID, b: SymbolID) -> Bool { a.value < b.value }
}

/// One section of a `RelocatableObject`.
public struct ObjectSection: Sendable {
    public var name: String
    public var type: UInt32
    public var flags: UInt64
    public var address: UInt64 = 0
    public var alignment: UInt64
    public var entrySize: UInt64
    public var content: Content
    /// `sh_link` of sections whose content is `.bytes` or `.noBits`.
    public var link: Reference = .none
    /// `sh_info` of sections whose content is `.bytes` or `.noBits`.
    public var info: Reference = .none

    public enum Content: Sendable {
        /// Bytes written as they are.
        case bytes(ELFBytes)
        /// `SHT_NOBITS` of this size.
        case noBits(UInt64)
        /// Relocations for `target`: `SHT_RELA` when `addends`, else `SHT_REL`.
        /// The writer sets `sh_link` to the symbol table and `sh_info` to the target.
        case relocations(target: SectionID?, entries: [ObjectRelocation])
        /// A section group (`SHT_GROUP`): its flag word, signature symbol and members.
        case group(flags: UInt32, signature: SymbolID, members: [SectionID])
        /// The symbol table, generated from `symbols`.
        case symbolTable
        /// The string table of symbol names, generated.
        case symbolNames
        /// The string table of section names, generated.
        case sectionNames
    }

    /// A `sh_link`/`sh_info` value: nothing, a raw number, or a section.
    public enum Reference: Sendable, Equatable {
        case none
        case raw(UInt32)
        case section(SectionID)
    }

    public init(
        name: String, type: UInt32, flags: UInt64, alignment: UInt64 = 1, entrySize: UInt64 = 0,
        content: Content, link: Reference = .none, info: Reference = .none
    ) {
        self.name = name
        self.type = type
        self.flags = flags
        self.alignment = alignment
        self.entrySize = entrySize
        self.content = content
        self.link = link
        self.info = info
    }

    /// A `SHT_PROGBITS` section with these bytes.
    public static func progbits(_ name: String, flags: UInt64, alignment: UInt64 = 1, _ bytes: [UInt8]) -> ObjectSection
    {
        ObjectSection(
            name: name, type: SectionType.progbits, flags: flags, alignment: alignment, content: .bytes(ELFBytes(bytes))
        )
    }

    /// A `SHT_RELA` section for `target`.
    public static func rela(
        _ name: String, target: SectionID, flags: UInt64 = SectionFlags.infoLink,
        _ entries: [ObjectRelocation]
    ) -> ObjectSection {
        ObjectSection(
            name: name, type: SectionType.rela, flags: flags, alignment: 8, entrySize: UInt64(ELF64.relaSize),
            content: .relocations(target: target, entries: entries))
    }
}

/// One symbol of a `RelocatableObject`.
public struct ObjectSymbol: Sendable, Equatable {
    public var name: String
    public var value: UInt64
    public var size: UInt64
    public var type: UInt8
    public var binding: UInt8
    public var other: UInt8
    public var place: Place

    /// Where a symbol is defined.
    public enum Place: Sendable, Equatable {
        case undefined
        case section(SectionID)
        /// A reserved `st_shndx` such as `SHN_ABS`, `SHN_COMMON` or `SHN_LIVEPATCH`.
        case reserved(UInt16)
    }

    public init(
        name: String, value: UInt64 = 0, size: UInt64 = 0, type: UInt8, binding: UInt8,
        other: UInt8 = 0, place: Place
    ) {
        self.name = name
        self.value = value
        self.size = size
        self.type = type
        self.binding = binding
        self.other = other
        self.place = place
    }

    public var isLocal: Bool { binding == SymbolBinding.local }
}

/// One relocation of a `RelocatableObject`.
public struct ObjectRelocation: Sendable, Equatable {
    public var offset: UInt64
    public var type: UInt32
    /// nil for relocations against no symbol (index 0).
    public var symbol: SymbolID?
    public var addend: Int64

    public init(offset: UInt64, type: UInt32, symbol: SymbolID?, addend: Int64) {
        self.offset = offset
        self.type = type
        self.symbol = symbol
        self.addend = addend
    }
}
