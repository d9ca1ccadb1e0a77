// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// A parsed, immutable ELF64 little-endian file: header, sections,
/// symbol tables, relocations and program headers, all validated on open.
///
/// Section contents are not copied; they stay in the file mapping, which
/// lives as long as this value or any `ELFBytes` taken from it.
public struct ELFFile: Sendable {
    public let path: String
    public let storage: MappedFile
    public let header: FileHeader
    public let architecture: Architecture
    public let sections: [Section]
    public let programHeaders: [ProgramHeader]
    /// `.symtab`, including the null symbol at index 0; empty if absent.
    public let symbols: [Symbol]
    public let symbolTableIndex: Int?
    /// `.dynsym`, including the null symbol at index 0; empty if absent.
    public let dynamicSymbols: [Symbol]
    public let dynamicSymbolTableIndex: Int?
    /// Every `SHT_RELA`/`SHT_REL` section, in section order.
    public let relocationSections: [RelocationSection]

    /// Opens and parses a file. Compressed kernel modules (`.ko.xz`,
    /// `.ko.zst`, `.ko.gz`) are recognised by their magic and decompressed
    /// in memory first.
    public static func open(_ path: String) throws(ELFError) -> ELFFile {
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch {
            throw ELFError(.io, path: path, "cannot read: \(error.errno?.shortDescription ?? error.description)")
        }
        if Decompression.format(of: file.bytes) != nil,
            let bytes = try Decompression.decompress(bytes: Array(file.bytes), path: path)
        {
            // From the bytes already read, not the file opened again.
            return try ELFFile(storage: MappedFile(bytes: bytes, path: path))
        }
        return try ELFFile(storage: file)
    }

    /// Parses bytes already in memory (tests, fuzzing, generated objects).
    public static func parse(_ bytes: [UInt8], path: String = "<memory>") throws(ELFError) -> ELFFile {
        try ELFFile(storage: MappedFile(bytes: bytes, path: path))
    }

    public init(storage: MappedFile) throws(ELFError) {
        let parsed = try ELFParser(storage: storage).parse()
        self.storage = storage
        path = storage.path
        header = parsed.header
        architecture = Architecture.forMachine(parsed.header.machine)
        sections = parsed.sections
        programHeaders = parsed.programHeaders
        symbols = parsed.symbols
        symbolTableIndex = parsed.symbolTableIndex
        dynamicSymbols = parsed.dynamicSymbols
        dynamicSymbolTableIndex = parsed.dynamicSymbolTableIndex
        relocationSections = parsed.relocationSections
    }

    // MARK: - Queries

    /// The contents of a section; empty for `SHT_NOBITS`.
    public func data(_ section: Section) -> ELFBytes {
        guard section.index > 0, section.hasFileData, section.size > 0 else { return .empty }
        // The parser checked that the range lies inside the file.
        return ELFBytes(storage: storage, start: Int(section.offset), count: Int(section.size))
    }

    /// The first section with this name.
    public func section(named name: String) -> Section? {
        sections.dropFirst().first { $0.name == name }
    }

    /// The relocation section that applies to section `index`, if any.
    public func relocations(for index: Int) -> RelocationSection? {
        relocationSections.first { $0.target == index && $0.section != 0 }
    }

    /// The symbol table a relocation section indexes.
    public func symbolTable(for relocations: RelocationSection) -> [Symbol] {
        if relocations.symbolTable == dynamicSymbolTableIndex { return dynamicSymbols }
        return symbols
    }

    /// The name readelf shows for a relocation's symbol: the symbol's name,
    /// or for a section symbol its section's name.
    public func displayName(of symbol: Symbol) -> String {
        if symbol.isSection, symbol.name.isEmpty, let index = symbol.definingSection, index < sections.count {
            return sections[index].name
        }
        return symbol.name
    }

    /// The name of a section index, or a placeholder for out-of-range indexes.
    public func sectionName(_ index: Int) -> String {
        index >= 0 && index < sections.count ? sections[index].name : "section \(index)"
    }
}
