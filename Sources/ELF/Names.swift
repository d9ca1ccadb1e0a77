// SPDX-License-Identifier: GPL-2.0-only

/// Names of ELF constants spelled exactly as GNU readelf prints them, so
/// that Suture's output can be compared with readelf's.
public enum ReadelfNames {
    public static func sectionType(_ type: UInt32, machine: UInt16) -> String {
        switch type {
        case SectionType.null: return "NULL"
        case SectionType.progbits: return "PROGBITS"
        case SectionType.symtab: return "SYMTAB"
        case SectionType.strtab: return "STRTAB"
        case SectionType.rela: return "RELA"
        case SectionType.hash: return "HASH"
        case SectionType.dynamic: return "DYNAMIC"
        case SectionType.note: return "NOTE"
        case SectionType.nobits: return "NOBITS"
        case SectionType.rel: return "REL"
        case SectionType.shlib: return "SHLIB"
        case SectionType.dynsym: return "DYNSYM"
        case SectionType.initArray: return "INIT_ARRAY"
        case SectionType.finiArray: return "FINI_ARRAY"
        case SectionType.preinitArray: return "PREINIT_ARRAY"
        case SectionType.group: return "GROUP"
        case SectionType.symtabShndx: return "SYMTAB SECTION INDICES"
        case SectionType.relr: return "RELR"
        case SectionType.gnuHash: return "GNU_HASH"
        case SectionType.gnuVerdef: return "VERDEF"
        case SectionType.gnuVerneed: return "VERNEED"
        case SectionType.gnuVersym: return "VERSYM"
        case SectionType.gnuAttributes: return "GNU_ATTRIBUTES"
        case SectionType.gnuLiblist: return "GNU_LIBLIST"
        case SectionType.checksum: return "CHECKSUM"
        case SectionType.llvmAddrsig: return "LLVM_ADDRSIG"
        case 0x6fff_fffa: return "SUNW_move"
        case 0x6fff_fffc: return "SUNW_syminfo"
        case SectionType.x86_64Unwind where machine == Machine.x86_64: return "X86_64_UNWIND"
        case 0x7000_0000...0x7fff_ffff: return "LOPROC+0x" + String(type - 0x7000_0000, radix: 16)
        case 0x6000_0000...0x6fff_ffff: return "LOOS+0x" + String(type - 0x6000_0000, radix: 16)
        case 0x8000_0000...0xffff_ffff: return "LOUSER+0x" + String(type - 0x8000_0000, radix: 16)
        default: return "<unknown>: " + String(type, radix: 16)
        }
    }

    public static func symbolType(_ type: UInt8, osABI: UInt8) -> String {
        switch type {
        case SymbolType.notype: return "NOTYPE"
        case SymbolType.object: return "OBJECT"
        case SymbolType.function: return "FUNC"
        case SymbolType.section: return "SECTION"
        case SymbolType.file: return "FILE"
        case SymbolType.common: return "COMMON"
        case SymbolType.tls: return "TLS"
        case 8: return "RELC"
        case 9: return "SRELC"
        case SymbolType.gnuIfunc where osABI == 0 || osABI == 3 || osABI == 9: return "IFUNC"
        case 13...15: return "<processor specific>: \(type)"
        case 10...12: return "<OS specific>: \(type)"
        default: return "<unknown>: \(type)"
        }
    }

    public static func binding(_ binding: UInt8, osABI: UInt8) -> String {
        switch binding {
        case SymbolBinding.local: return "LOCAL"
        case SymbolBinding.global: return "GLOBAL"
        case SymbolBinding.weak: return "WEAK"
        case SymbolBinding.gnuUnique where osABI == 0 || osABI == 3: return "UNIQUE"
        case 13...15: return "<processor specific>: \(binding)"
        case 10...12: return "<OS specific>: \(binding)"
        default: return "<unknown>: \(binding)"
        }
    }

    public static func visibility(_ visibility: UInt8) -> String {
        switch visibility & 3 {
        case SymbolVisibility.default: return "DEFAULT"
        case SymbolVisibility.internal: return "INTERNAL"
        case SymbolVisibility.hidden: return "HIDDEN"
        default: return "PROTECTED"
        }
    }

    /// A symbol's section as `suture elf --json` spells it: the index, or
    /// `UND`, `ABS`, `COM`, or the hex value of another reserved index.
    public static func symbolSection(_ symbol: Symbol) -> SymbolSectionName {
        guard symbol.hasReservedSectionIndex || symbol.rawSectionIndex == SpecialSection.undefined else {
            return .index(Int(symbol.sectionIndex))
        }
        switch symbol.rawSectionIndex {
        case SpecialSection.undefined: return .name("UND")
        case SpecialSection.absolute: return .name("ABS")
        case SpecialSection.common: return .name("COM")
        default: return .name("0x" + String(symbol.rawSectionIndex, radix: 16))
        }
    }

    public enum SymbolSectionName: Equatable {
        case index(Int)
        case name(String)
    }
}
