// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Turns bytes into the parts of an `ELFFile`, checking every offset,
/// size, index and string against the file before using it.
struct ELFParser {
    let storage: MappedFile
    let reader: ByteReader
    var path: String { storage.path }

    init(storage: MappedFile) {
        self.storage = storage
        reader = ByteReader(bytes: storage.bytes, path: storage.path)
    }

    struct Result {
        var header: FileHeader
        var sections: [Section] = []
        var programHeaders: [ProgramHeader] = []
        var symbols: [Symbol] = []
        var symbolTableIndex: Int?
        var dynamicSymbols: [Symbol] = []
        var dynamicSymbolTableIndex: Int?
        var relocationSections: [RelocationSection] = []
    }

    func malformed(_ offset: Int, _ message: String) -> ELFError {
        ELFError(.malformed, path: path, offset: UInt64(offset), message)
    }

    func parse() throws(ELFError) -> Result {
        var result = Result(header: try parseHeader())
        result.programHeaders = try parseProgramHeaders(result.header)
        result.sections = try parseSections(result.header)
        try checkOverlaps(result.sections, header: result.header)
        // Section 0 is the null section whatever its header says.
        for section in result.sections.dropFirst()
        where section.type == SectionType.symtab || section.type == SectionType.dynsym {
            let table = try parseSymbols(section, sections: result.sections, header: result.header)
            if section.type == SectionType.symtab {
                guard result.symbolTableIndex == nil else {
                    throw malformed(
                        sectionHeaderOffset(result.header, section.index),
                        "a second SHT_SYMTAB section (\(section.name)); only one is allowed")
                }
                result.symbols = table
                result.symbolTableIndex = section.index
            } else {
                guard result.dynamicSymbolTableIndex == nil else {
                    throw malformed(
                        sectionHeaderOffset(result.header, section.index),
                        "a second SHT_DYNSYM section (\(section.name)); only one is allowed")
                }
                result.dynamicSymbols = table
                result.dynamicSymbolTableIndex = section.index
            }
        }
        for section in result.sections.dropFirst() where section.isRelocationSection {
            result.relocationSections.append(try parseRelocations(section, result: result))
        }
        for section in result.sections.dropFirst() where section.type == SectionType.group {
            try checkGroup(section, sections: result.sections, symbolCount: result.symbols.count, header: result.header)
        }
        return result
    }

    // MARK: - Header

    func parseHeader() throws(ELFError) -> FileHeader {
        guard reader.count >= 4 else {
            throw ELFError(.notELF, path: path, offset: 0, "not an ELF file: only \(reader.count) bytes")
        }
        let magic = (try reader.u32(0, "ELF magic"))
        guard magic == 0x464c_457f else {
            throw ELFError(
                .notELF, path: path, offset: 0,
                "not an ELF file: bad magic 0x\(String(UInt32(bigEndian: magic), radix: 16))")
        }
        guard reader.count >= ELF64.headerSize else {
            throw ELFError(
                .truncated, path: path, offset: 0,
                "file is \(reader.count) bytes, too small for the 64-byte ELF64 header")
        }
        let fileClass = try reader.u8(4, "EI_CLASS")
        guard fileClass == 2 else {
            throw ELFError(
                .unsupported, path: path, offset: 4,
                fileClass == 1 ? "ELF32 files are not supported, only ELF64" : "invalid ELF class \(fileClass)")
        }
        let encoding = try reader.u8(5, "EI_DATA")
        guard encoding == 1 else {
            throw ELFError(
                .unsupported, path: path, offset: 5,
                encoding == 2 ? "big-endian ELF is not supported" : "invalid data encoding \(encoding)")
        }
        let header = FileHeader(
            osABI: try reader.u8(7, "EI_OSABI"),
            abiVersion: try reader.u8(8, "EI_ABIVERSION"),
            type: try reader.u16(16, "e_type"),
            machine: try reader.u16(18, "e_machine"),
            version: try reader.u32(20, "e_version"),
            entry: try reader.u64(24, "e_entry"),
            programHeaderOffset: try reader.u64(32, "e_phoff"),
            sectionHeaderOffset: try reader.u64(40, "e_shoff"),
            flags: try reader.u32(48, "e_flags"),
            programHeaderCount: Int(try reader.u16(56, "e_phnum")),
            sectionHeaderCount: Int(try reader.u16(60, "e_shnum")),
            sectionNameTableIndex: Int(try reader.u16(62, "e_shstrndx")))
        let phentsize = try reader.u16(54, "e_phentsize")
        if header.programHeaderCount > 0 && Int(phentsize) != ELF64.programHeaderSize {
            throw malformed(54, "e_phentsize is \(phentsize), expected \(ELF64.programHeaderSize)")
        }
        let shentsize = try reader.u16(58, "e_shentsize")
        if header.sectionHeaderOffset != 0 && Int(shentsize) != ELF64.sectionHeaderSize {
            throw malformed(58, "e_shentsize is \(shentsize), expected \(ELF64.sectionHeaderSize)")
        }
        return header
    }

    func sectionHeaderOffset(_ header: FileHeader, _ index: Int) -> Int {
        Int(truncatingIfNeeded: header.sectionHeaderOffset) &+ index &* ELF64.sectionHeaderSize
    }

    /// The bytes of a section in the file. `parseSections` checked the
    /// range of every section with data; an empty section may carry any
    /// offset, so it maps to an empty range instead.
    func fileRange(_ section: Section) -> Range<Int> {
        guard section.index > 0, section.hasFileData, section.size > 0 else { return 0..<0 }
        return Int(section.offset)..<Int(section.offset + section.size)
    }

    // MARK: - Program headers

    func parseProgramHeaders(_ header: FileHeader) throws(ELFError) -> [ProgramHeader] {
        guard header.programHeaderCount > 0 else { return [] }
        let table = try reader.range(
            offset: header.programHeaderOffset,
            size: UInt64(header.programHeaderCount * ELF64.programHeaderSize),
            at: 32, "the program header table (\(header.programHeaderCount) entries)")
        var result: [ProgramHeader] = []
        result.reserveCapacity(header.programHeaderCount)
        for i in 0..<header.programHeaderCount {
            let o = table.lowerBound + i * ELF64.programHeaderSize
            let ph = ProgramHeader(
                type: reader.uncheckedU32(o), flags: reader.uncheckedU32(o + 4),
                offset: reader.uncheckedU64(o + 8), virtualAddress: reader.uncheckedU64(o + 16),
                physicalAddress: reader.uncheckedU64(o + 24), fileSize: reader.uncheckedU64(o + 32),
                memorySize: reader.uncheckedU64(o + 40), alignment: reader.uncheckedU64(o + 48))
            if ph.type != SegmentType.null && ph.fileSize > 0 {
                _ = try reader.range(offset: ph.offset, size: ph.fileSize, at: o, "program header \(i)")
            }
            result.append(ph)
        }
        return result
    }

    // MARK: - Sections

    func parseSections(_ header: FileHeader) throws(ELFError) -> [Section] {
        guard header.sectionHeaderOffset != 0 else { return [] }
        // Extended numbering: counts that do not fit live in section 0.
        _ = try reader.range(
            offset: header.sectionHeaderOffset, size: UInt64(ELF64.sectionHeaderSize),
            at: 40, "section header 0")
        let first = Int(header.sectionHeaderOffset)
        var count = header.sectionHeaderCount
        if count == 0 { count = Int(clamping: reader.uncheckedU64(first + 32)) }
        var nameIndex = header.sectionNameTableIndex
        if nameIndex == Int(SpecialSection.extended) { nameIndex = Int(reader.uncheckedU32(first + 40)) }
        guard count > 0 else { return [] }
        guard count <= reader.count / ELF64.sectionHeaderSize else {
            throw malformed(60, "\(count) section headers cannot fit in a file of \(reader.count) bytes")
        }
        let table = try reader.range(
            offset: header.sectionHeaderOffset,
            size: UInt64(count * ELF64.sectionHeaderSize),
            at: 40, "the section header table (\(count) entries)")
        if table.lowerBound < ELF64.headerSize {
            throw malformed(40, "the section header table at offset \(table.lowerBound) overlaps the ELF header")
        }
        guard nameIndex < count else {
            throw malformed(62, "e_shstrndx is \(nameIndex), but there are only \(count) sections")
        }
        let nameHeader = table.lowerBound + nameIndex * ELF64.sectionHeaderSize
        let nameType = reader.uncheckedU32(nameHeader + 4)
        var names: Range<Int> = 0..<0
        if nameIndex != 0 {
            guard nameType == SectionType.strtab else {
                throw malformed(
                    nameHeader, "section name table (section \(nameIndex)) has type \(nameType), not SHT_STRTAB")
            }
            names = try reader.range(
                offset: reader.uncheckedU64(nameHeader + 24),
                size: reader.uncheckedU64(nameHeader + 32),
                at: nameHeader, "the section name table")
        }
        var sections: [Section] = []
        sections.reserveCapacity(count)
        for i in 0..<count {
            let o = table.lowerBound + i * ELF64.sectionHeaderSize
            let nameOffset = reader.uncheckedU32(o)
            let name =
                nameIndex == 0
                ? ""
                : try reader.string(
                    in: names, at: nameOffset, tableName: "the section name table", user: "section \(i)")
            let section = Section(
                index: i, name: name, type: reader.uncheckedU32(o + 4), flags: reader.uncheckedU64(o + 8),
                address: reader.uncheckedU64(o + 16), offset: reader.uncheckedU64(o + 24),
                size: reader.uncheckedU64(o + 32), link: reader.uncheckedU32(o + 40),
                info: reader.uncheckedU32(o + 44), alignment: reader.uncheckedU64(o + 48),
                entrySize: reader.uncheckedU64(o + 56))
            if i > 0 && section.hasFileData && section.size > 0 {
                _ = try reader.range(offset: section.offset, size: section.size, at: o, "section \(i) (\(name))")
            }
            if i > 0 && linksToSection(section.type) && Int(section.link) >= count {
                throw malformed(
                    o + 40, "section \(i) (\(name)) has sh_link \(section.link), but there are only \(count) sections")
            }
            sections.append(section)
        }
        return sections
    }

    /// Section types whose `sh_link` must name another section.
    func linksToSection(_ type: UInt32) -> Bool {
        switch type {
        case SectionType.symtab, SectionType.dynsym, SectionType.rela, SectionType.rel,
            SectionType.group, SectionType.symtabShndx, SectionType.hash, SectionType.gnuHash,
            SectionType.dynamic:
            return true
        default:
            return false
        }
    }

    /// No two sections with file data may share bytes, nor overlap the
    /// ELF header or the section header table.
    func checkOverlaps(_ sections: [Section], header: FileHeader) throws(ELFError) {
        var ranges: [(start: UInt64, end: UInt64, index: Int)] = []
        ranges.reserveCapacity(sections.count)
        for s in sections where s.index > 0 && s.hasFileData && s.size > 0 {
            ranges.append((s.offset, s.offset + s.size, s.index))
        }
        let tableStart = header.sectionHeaderOffset
        let tableEnd = tableStart + UInt64(sections.count * ELF64.sectionHeaderSize)
        ranges.sort { $0.start < $1.start }
        var previous: (start: UInt64, end: UInt64, index: Int)?
        for r in ranges {
            if r.start < UInt64(ELF64.headerSize) {
                throw malformed(
                    sectionHeaderOffset(header, r.index),
                    "section \(r.index) (\(sections[r.index].name)) overlaps the ELF header")
            }
            if r.start < tableEnd && tableStart < r.end {
                throw malformed(
                    sectionHeaderOffset(header, r.index),
                    "section \(r.index) (\(sections[r.index].name)) overlaps the section header table")
            }
            if let p = previous, r.start < p.end {
                throw malformed(
                    sectionHeaderOffset(header, r.index),
                    "section \(r.index) (\(sections[r.index].name)) overlaps section \(p.index) (\(sections[p.index].name))"
                )
            }
            if previous == nil || r.end > previous!.end { previous = r }
        }
    }

    // MARK: - Symbols

    func parseSymbols(_ section: Section, sections: [Section], header: FileHeader) throws(ELFError) -> [Symbol] {
        let headerOffset = sectionHeaderOffset(header, section.index)
        guard section.entrySize == UInt64(ELF64.symbolSize) else {
            throw malformed(
                headerOffset + 56,
                "symbol table \(section.name) has entry size \(section.entrySize), expected \(ELF64.symbolSize)")
        }
        guard section.size % UInt64(ELF64.symbolSize) == 0 else {
            throw malformed(
                headerOffset + 32,
                "symbol table \(section.name) size \(section.size) is not a multiple of \(ELF64.symbolSize)")
        }
        let linked = sections[Int(section.link)]
        guard linked.type == SectionType.strtab else {
            throw malformed(
                headerOffset + 40,
                "symbol table \(section.name) links to section \(section.link) (\(linked.name)), which is not a string table"
            )
        }
        let strings = fileRange(linked)
        // Extended section indexes for this table, if any.
        var extended: Range<Int>?
        for s in sections.dropFirst() where s.type == SectionType.symtabShndx && Int(s.link) == section.index {
            extended = fileRange(s)
        }
        let count = Int(section.size) / ELF64.symbolSize
        let base = fileRange(section).lowerBound
        var symbols: [Symbol] = []
        symbols.reserveCapacity(count)
        for i in 0..<count {
            let o = base + i * ELF64.symbolSize
            let nameOffset = reader.uncheckedU32(o)
            let info = reader.bytes[o + 4]
            let other = reader.bytes[o + 5]
            let raw = reader.uncheckedU16(o + 6)
            var index = UInt32(raw)
            if raw == SpecialSection.extended {
                guard let extended, extended.count >= (i + 1) * 4 else {
                    throw malformed(
                        o + 6,
                        "symbol \(i) of \(section.name) uses SHN_XINDEX, but there is no SHT_SYMTAB_SHNDX entry for it")
                }
                index = reader.uncheckedU32(extended.lowerBound + i * 4)
            }
            let name =
                nameOffset == 0
                ? ""
                : try reader.string(
                    in: strings, at: nameOffset, tableName: linked.name, user: "symbol \(i) of \(section.name)")
            let reserved = raw >= SpecialSection.loReserve && raw != SpecialSection.extended
            if !reserved && index != 0 && Int(index) >= sections.count {
                throw malformed(
                    o + 6,
                    "symbol \(i) (\(name)) of \(section.name) refers to section \(index), but there are only \(sections.count) sections"
                )
            }
            symbols.append(
                Symbol(
                    index: i, name: name, value: reader.uncheckedU64(o + 8), size: reader.uncheckedU64(o + 16),
                    info: info, other: other, rawSectionIndex: raw, sectionIndex: index))
        }
        return symbols
    }

    // MARK: - Relocations

    func parseRelocations(_ section: Section, result: Result) throws(ELFError) -> RelocationSection {
        let headerOffset = sectionHeaderOffset(result.header, section.index)
        let withAddend = section.type == SectionType.rela
        let entrySize = withAddend ? ELF64.relaSize : ELF64.relSize
        guard section.entrySize == UInt64(entrySize) else {
            throw malformed(
                headerOffset + 56,
                "relocation section \(section.name) has entry size \(section.entrySize), expected \(entrySize)")
        }
        guard section.size % UInt64(entrySize) == 0 else {
            throw malformed(
                headerOffset + 32,
                "relocation section \(section.name) size \(section.size) is not a multiple of \(entrySize)")
        }
        let link = Int(section.link)
        var symbolCount = 0
        if link != 0 {
            if link == result.symbolTableIndex {
                symbolCount = result.symbols.count
            } else if link == result.dynamicSymbolTableIndex {
                symbolCount = result.dynamicSymbols.count
            } else {
                throw malformed(
                    headerOffset + 40,
                    "relocation section \(section.name) links to section \(link) (\(result.sections[link].name)), which is not a symbol table"
                )
            }
        }
        let target = Int(section.info)
        if target >= result.sections.count && section.flags & SectionFlags.infoLink != 0 {
            throw malformed(
                headerOffset + 44,
                "relocation section \(section.name) applies to section \(target), but there are only \(result.sections.count) sections"
            )
        }
        let count = Int(section.size) / entrySize
        let base = fileRange(section).lowerBound
        var relocations: [Relocation] = []
        relocations.reserveCapacity(count)
        for i in 0..<count {
            let o = base + i * entrySize
            let info = reader.uncheckedU64(o + 8)
            let symbol = UInt32(truncatingIfNeeded: info >> 32)
            if Int(symbol) >= max(symbolCount, 1) && !(symbol == 0) {
                throw malformed(
                    o + 12,
                    "relocation \(i) of \(section.name) refers to symbol \(symbol), but \(link == 0 ? "the section has no symbol table" : "\(result.sections[link].name) has \(symbolCount) symbols")"
                )
            }
            relocations.append(
                Relocation(
                    offset: reader.uncheckedU64(o), type: UInt32(truncatingIfNeeded: info), symbol: symbol,
                    addend: withAddend ? Int64(bitPattern: reader.uncheckedU64(o + 16)) : 0))
        }
        return RelocationSection(
            section: section.index, target: target < result.sections.count ? target : 0,
            symbolTable: link, relocations: relocations, hasAddends: withAddend)
    }

    // MARK: - Groups

    func checkGroup(_ section: Section, sections: [Section], symbolCount: Int, header: FileHeader) throws(ELFError) {
        let headerOffset = sectionHeaderOffset(header, section.index)
        guard section.size % 4 == 0, section.size >= 4 else {
            throw malformed(
                headerOffset + 32, "group section \(section.name) size \(section.size) is not a positive multiple of 4")
        }
        if Int(section.info) >= max(symbolCount, 1) {
            throw malformed(
                headerOffset + 44,
                "group section \(section.name) names signature symbol \(section.info), but the symbol table has \(symbolCount) symbols"
            )
        }
        let base = fileRange(section).lowerBound
        for i in 1..<Int(section.size / 4) {
            let member = reader.uncheckedU32(base + i * 4)
            if member == 0 || Int(member) >= sections.count {
                throw malformed(
                    base + i * 4,
                    "group section \(section.name) lists section \(member), but there are only \(sections.count) sections"
                )
            }
        }
    }
}
