// SPDX-License-Identifier: GPL-2.0-only

/// The ELF header fields Suture uses.
public struct FileHeader: Sendable, Equatable {
    public let osABI: UInt8
    public let abiVersion: UInt8
    public let type: UInt16
    public let machine: UInt16
    public let version: UInt32
    public let entry: UInt64
    public let programHeaderOffset: UInt64
    public let sectionHeaderOffset: UInt64
    public let flags: UInt32
    public let programHeaderCount: Int
    public let sectionHeaderCount: Int
    public let sectionNameTableIndex: Int
}

/// One section header, with its name resolved.
public struct Section: Sendable, Equatable {
    public let index: Int
    public let name: String
    public let type: UInt32
    public let flags: UInt64
    public let address: UInt64
    public let offset: UInt64
    public let size: UInt64
    public let link: UInt32
    public let info: UInt32
    public let alignment: UInt64
    public let entrySize: UInt64

    public func has(_ flag: UInt64) -> Bool { flags & flag != 0 }
    public var isAllocated: Bool { has(SectionFlags.alloc) }
    public var isExecutable: Bool { has(SectionFlags.execInstr) }
    public var isRelocationSection: Bool { type == SectionType.rela || type == SectionType.rel }
    /// Whether the section occupies bytes in the file.
    public var hasFileData: Bool { type != SectionType.nobits && type != SectionType.null }
}

/// One symbol-table entry, with its name resolved and an extended section
/// index (`SHN_XINDEX`) already looked up.
public struct Symbol: Sendable, Equatable {
    public let index: Int
    public let name: String
    public let value: UInt64
    public let size: UInt64
    public let info: UInt8
    public let other: UInt8
    /// `st_shndx` as stored: a section index, or a reserved value such as
    /// `SHN_ABS`, `SHN_LIVEPATCH` or `SHN_XINDEX`.
    public let rawSectionIndex: UInt16
    /// The section index: `st_shndx`, or the `SHT_SYMTAB_SHNDX` entry when
    /// `st_shndx` is `SHN_XINDEX`. Reserved values (`SHN_ABS`, …) as is.
    public let sectionIndex: UInt32

    public init(
        index: Int, name: String, value: UInt64, size: UInt64, info: UInt8, other: UInt8,
        rawSectionIndex: UInt16, sectionIndex: UInt32? = nil
    ) {
        self.index = index
        self.name = name
        self.value = value
        self.size = size
        self.info = info
        self.other = other
        self.rawSectionIndex = rawSectionIndex
        self.sectionIndex = sectionIndex ?? UInt32(rawSectionIndex)
    }

    /// Whether `st_shndx` is a reserved value other than `SHN_XINDEX`
    /// (`SHN_ABS`, `SHN_COMMON`, `SHN_LIVEPATCH`, …).
    public var hasReservedSectionIndex: Bool {
        rawSectionIndex >= SpecialSection.loReserve && rawSectionIndex != SpecialSection.extended
    }

    public var type: UInt8 { info & 0xf }
    public var binding: UInt8 { info >> 4 }
    public var visibility: UInt8 { other & 0x3 }
    public var isUndefined: Bool { sectionIndex == UInt32(SpecialSection.undefined) }
    public var isLocal: Bool { binding == SymbolBinding.local }
    public var isFunction: Bool { type == SymbolType.function }
    public var isSection: Bool { type == SymbolType.section }

    /// The index of the defining section, nil for undefined and reserved indexes.
    public var definingSection: Int? {
        if rawSectionIndex == SpecialSection.undefined || hasReservedSectionIndex { return nil }
        return Int(sectionIndex)
    }
}

/// One relocation entry. `addend` is 0 for `SHT_REL`.
public struct Relocation: Sendable, Equatable {
    public let offset: UInt64
    public let type: UInt32
    /// Index into the symbol table the relocation section links to.
    public let symbol: UInt32
    public let addend: Int64

    public init(offset: UInt64, type: UInt32, symbol: UInt32, addend: Int64) {
        self.offset = offset
        self.type = type
        self.symbol = symbol
        self.addend = addend
    }
}

/// A relocation section with its entries.
public struct RelocationSection: Sendable {
    /// The relocation section's own index.
    public let section: Int
    /// The section the relocations apply to (`sh_info`), or 0.
    public let target: Int
    /// The symbol table the entries index (`sh_link`), or 0.
    public let symbolTable: Int
    public let relocations: [Relocation]
    public let hasAddends: Bool
}

/// One program header.
public struct ProgramHeader: Sendable, Equatable {
    public let type: UInt32
    public let flags: UInt32
    public let offset: UInt64
    public let virtualAddress: UInt64
    public let physicalAddress: UInt64
    public let fileSize: UInt64
    public let memorySize: UInt64
    public let alignment: UInt64
}

/// One note from a `SHT_NOTE` section or `PT_NOTE` segment.
public struct Note: Sendable, Equatable {
    public let name: String
    public let type: UInt32
    public let descriptor: [UInt8]
}
