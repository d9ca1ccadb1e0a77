// SPDX-License-Identifier: GPL-2.0-only

// The raw ELF64 format, mirroring <elf.h>: numbers only, no behaviour.
// Names follow elf.h so they can be looked up there.

/// `e_type` values.
public enum FileType {
    public static let none: UInt16 = 0
    public static let relocatable: UInt16 = 1  // ET_REL
    public static let executable: UInt16 = 2  // ET_EXEC
    public static let shared: UInt16 = 3  // ET_DYN
    public static let core: UInt16 = 4  // ET_CORE
}

/// `e_machine` values Suture knows.
public enum Machine {
    public static let x86_64: UInt16 = 62  // EM_X86_64
    public static let aarch64: UInt16 = 183  // EM_AARCH64
}

/// `sh_type` values.
public enum SectionType {
    public static let null: UInt32 = 0
    public static let progbits: UInt32 = 1
    public static let symtab: UInt32 = 2
    public static let strtab: UInt32 = 3
    public static let rela: UInt32 = 4
    public static let hash: UInt32 = 5
    public static let dynamic: UInt32 = 6
    public static let note: UInt32 = 7
    public static let nobits: UInt32 = 8
    public static let rel: UInt32 = 9
    public static let shlib: UInt32 = 10
    public static let dynsym: UInt32 = 11
    public static let initArray: UInt32 = 14
    public static let finiArray: UInt32 = 15
    public static let preinitArray: UInt32 = 16
    public static let group: UInt32 = 17
    public static let symtabShndx: UInt32 = 18
    public static let relr: UInt32 = 19
    public static let gnuAttributes: UInt32 = 0x6fff_fff5
    public static let gnuHash: UInt32 = 0x6fff_fff6
    public static let gnuLiblist: UInt32 = 0x6fff_fff7
    public static let checksum: UInt32 = 0x6fff_fff8
    public static let gnuVerdef: UInt32 = 0x6fff_fffd
    public static let gnuVerneed: UInt32 = 0x6fff_fffe
    public static let gnuVersym: UInt32 = 0x6fff_ffff
    public static let llvmAddrsig: UInt32 = 0x6fff_4c03
    public static let x86_64Unwind: UInt32 = 0x7000_0001
}

/// `sh_flags` bits.
public enum SectionFlags {
    public static let write: UInt64 = 0x1
    public static let alloc: UInt64 = 0x2
    public static let execInstr: UInt64 = 0x4
    public static let merge: UInt64 = 0x10
    public static let strings: UInt64 = 0x20
    public static let infoLink: UInt64 = 0x40
    public static let linkOrder: UInt64 = 0x80
    public static let osNonconforming: UInt64 = 0x100
    public static let group: UInt64 = 0x200
    public static let tls: UInt64 = 0x400
    public static let compressed: UInt64 = 0x800
    public static let gnuRetain: UInt64 = 0x20_0000
    public static let x86_64Large: UInt64 = 0x1000_0000
    public static let exclude: UInt64 = 0x8000_0000
    /// `SHF_RELA_LIVEPATCH`: a klp relocation section the kernel's livepatch
    /// core applies itself (`klp_apply_section_relocs`).
    public static let relaLivepatch: UInt64 = 0x0010_0000
}

/// Reserved section indexes (`st_shndx`).
public enum SpecialSection {
    public static let undefined: UInt16 = 0  // SHN_UNDEF
    public static let loReserve: UInt16 = 0xff00  // SHN_LORESERVE
    /// `SHN_LIVEPATCH`: a symbol the livepatch core resolves through kallsyms.
    public static let livepatch: UInt16 = 0xff20
    public static let absolute: UInt16 = 0xfff1  // SHN_ABS
    public static let common: UInt16 = 0xfff2  // SHN_COMMON
    public static let extended: UInt16 = 0xffff  // SHN_XINDEX
}

/// `ST_TYPE` values.
public enum SymbolType {
    public static let notype: UInt8 = 0
    public static let object: UInt8 = 1
    public static let function: UInt8 = 2
    public static let section: UInt8 = 3
    public static let file: UInt8 = 4
    public static let common: UInt8 = 5
    public static let tls: UInt8 = 6
    public static let gnuIfunc: UInt8 = 10
}

/// `ST_BIND` values.
public enum SymbolBinding {
    public static let local: UInt8 = 0
    public static let global: UInt8 = 1
    public static let weak: UInt8 = 2
    public static let gnuUnique: UInt8 = 10
}

/// `ST_VISIBILITY` values.
public enum SymbolVisibility {
    public static let `default`: UInt8 = 0
    public static let `internal`: UInt8 = 1
    public static let hidden: UInt8 = 2
    public static let protected: UInt8 = 3
}

/// `p_type` values.
public enum SegmentType {
    public static let null: UInt32 = 0
    public static let load: UInt32 = 1
    public static let dynamic: UInt32 = 2
    public static let interp: UInt32 = 3
    public static let note: UInt32 = 4
    public static let tls: UInt32 = 7
    public static let gnuEhFrame: UInt32 = 0x6474_e550
    public static let gnuStack: UInt32 = 0x6474_e551
    public static let gnuRelro: UInt32 = 0x6474_e552
}

/// Note types Suture reads.
public enum NoteType {
    public static let gnuBuildID: UInt32 = 3  // NT_GNU_BUILD_ID
}

/// Fixed sizes of ELF64 structures.
public enum ELF64 {
    public static let headerSize = 64
    public static let sectionHeaderSize = 64
    public static let programHeaderSize = 56
    public static let symbolSize = 24
    public static let relaSize = 24
    public static let relSize = 16
}
