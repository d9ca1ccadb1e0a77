// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import Testing

/// Truncated, corrupt and hostile files give an error that names the file
/// and the byte offset, and never crash.
@Suite struct BadInputTests {
    static func sampleObject() throws -> [UInt8] {
        let path = try Samples.compiled().first { $0.hasSuffix("/sample.o") }!
        return try FileSystem.read(path)
    }

    static func put32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }

    static func put64(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt64) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    static func get64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
    }

    /// Parses `bytes` and returns the error, which must name the file and an offset.
    static func failure(_ bytes: [UInt8], _ label: String) -> ELFError? {
        do {
            _ = try ELFFile.parse(bytes, path: "bad.o")
            return nil
        } catch {
            #expect(error.description.hasPrefix("bad.o: "), "\(label): \(error.description)")
            return error
        }
    }

    static func expectFailure(_ bytes: [UInt8], _ label: String, contains text: String, offset: UInt64? = nil) {
        guard let error = failure(bytes, label) else {
            Issue.record("\(label): parsed without error")
            return
        }
        #expect(error.description.contains(text), "\(label): \(error.description)")
        #expect(error.offset != nil, "\(label): no offset in \(error.description)")
        if let offset { #expect(error.offset == offset, "\(label): \(error.description)") }
    }

    /// Header fields and the section header table of the sample object.
    struct Layout {
        let shoff: Int
        let shnum: Int
        let sections: [Section]
        let file: ELFFile
        init(_ bytes: [UInt8]) throws {
            file = try ELFFile.parse(bytes)
            shoff = Int(file.header.sectionHeaderOffset)
            shnum = file.sections.count
            sections = file.sections
        }
        func header(_ index: Int) -> Int { shoff + index * 64 }
    }

    @Test func emptyAndForeignFiles() {
        Self.expectFailure([], "empty", contains: "not an ELF file", offset: 0)
        Self.expectFailure(Array("#!/bin/sh\necho hi\n".utf8), "script", contains: "bad magic", offset: 0)
        var elf32 = [UInt8](repeating: 0, count: 64)
        elf32[0...3] = [0x7f, 0x45, 0x4c, 0x46]
        elf32[4] = 1
        elf32[5] = 1
        Self.expectFailure(elf32, "ELF32", contains: "ELF32", offset: 4)
        elf32[4] = 2
        elf32[5] = 2
        Self.expectFailure(elf32, "big-endian", contains: "big-endian", offset: 5)
        Self.expectFailure(Array(elf32[0..<20]), "short header", contains: "too small")
    }

    @Test func everyTruncationIsAnError() throws {
        let bytes = try Self.sampleObject()
        var count = 0
        for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 700)) {
            guard let error = Self.failure(Array(bytes[0..<length]), "truncated to \(length)") else {
                Issue.record("truncated to \(length) bytes parsed without error")
                continue
            }
            #expect(error.offset != nil || error.kind == .notELF)
            count += 1
        }
        #expect(count > 500)
    }

    @Test func corruptHeaderFields() throws {
        let bytes = try Self.sampleObject()
        let layout = try Layout(bytes)

        var b = bytes
        Self.put64(&b, 40, UInt64(bytes.count + 100))
        Self.expectFailure(b, "e_shoff past the end", contains: "past the end of the file", offset: 40)

        b = bytes
        b[60] = 0xff
        b[61] = 0xfe
        Self.expectFailure(b, "absurd e_shnum", contains: "cannot fit", offset: 60)

        b = bytes
        b[62] = 0xf0
        b[63] = 0x00
        Self.expectFailure(b, "e_shstrndx out of range", contains: "e_shstrndx", offset: 62)

        b = bytes
        b[58] = 40
        Self.expectFailure(b, "e_shentsize", contains: "e_shentsize", offset: 58)
        _ = layout
    }

    @Test func corruptSections() throws {
        let bytes = try Self.sampleObject()
        let layout = try Layout(bytes)
        let text = layout.sections.first { $0.name.hasPrefix(".text.") && $0.size > 0 }!
        let h = layout.header(text.index)

        var b = bytes
        Self.put64(&b, h + 24, UInt64(bytes.count - 2))
        Self.expectFailure(b, "offset past end", contains: "extends past the end", offset: UInt64(h))

        b = bytes
        Self.put64(&b, h + 32, UInt64.max - 10)
        Self.expectFailure(b, "absurd size", contains: "extends past the end", offset: UInt64(h))

        // Make the section overlap the one before it in the file.
        let other = layout.sections.first {
            $0.index != text.index && $0.hasFileData && $0.size >= text.size && $0.index > 0
        }!
        b = bytes
        Self.put64(&b, h + 24, other.offset)
        Self.expectFailure(b, "overlap", contains: "overlaps")

        b = bytes
        Self.put32(&b, h, 0xffff_fff0)
        Self.expectFailure(b, "section name out of range", contains: "name offset", offset: nil)

        let symtab = layout.sections[layout.file.symbolTableIndex!]
        b = bytes
        Self.put64(&b, layout.header(symtab.index) + 56, 16)
        Self.expectFailure(b, "symtab entsize", contains: "entry size 16")

        b = bytes
        Self.put32(&b, layout.header(symtab.index) + 40, 0xffff)
        Self.expectFailure(b, "symtab link", contains: "sh_link")
    }

    /// Found by the fuzzer: an empty relocation section whose offset does
    /// not fit in an Int must not trap (its offset is never used).
    @Test func emptySectionWithAbsurdOffset() throws {
        let bytes = try Self.sampleObject()
        let layout = try Layout(bytes)
        let rela = layout.sections.first { $0.type == SectionType.rela }!
        var b = bytes
        Self.put64(&b, layout.header(rela.index) + 24, 0xffa9_d941_ae3f_cf38)
        Self.put64(&b, layout.header(rela.index) + 32, 0)
        let file = try ELFFile.parse(b)
        #expect(file.relocationSections.first { $0.section == rela.index }?.relocations.isEmpty == true)
        let symtab = layout.file.symbolTableIndex!
        Self.put64(&b, layout.header(Int(layout.sections[symtab].link)) + 24, 0xffff_ffff_ffff_0000)
        Self.put64(&b, layout.header(Int(layout.sections[symtab].link)) + 32, 0)
        Self.expectFailure(b, "empty string table", contains: "name offset")
    }

    @Test func corruptSymbolsAndRelocations() throws {
        let bytes = try Self.sampleObject()
        let layout = try Layout(bytes)
        let symtab = layout.sections[layout.file.symbolTableIndex!]
        let named = layout.file.symbols.first { !$0.name.isEmpty }!
        let entry = Int(symtab.offset) + named.index * 24

        var b = bytes
        Self.put32(&b, entry, 0x7fff_ffff)
        Self.expectFailure(b, "symbol name", contains: "name offset 2147483647")

        b = bytes
        b[entry + 6] = 0x00
        b[entry + 7] = 0x7f
        Self.expectFailure(b, "symbol section", contains: "refers to section 32512", offset: UInt64(entry + 6))

        let rela = layout.file.relocationSections.first { !$0.relocations.isEmpty }!
        let relaSection = layout.sections[rela.section]
        let r = Int(relaSection.offset)
        b = bytes
        Self.put32(&b, r + 12, 0x00ff_ffff)
        Self.expectFailure(b, "relocation symbol", contains: "refers to symbol 16777215", offset: UInt64(r + 12))

        b = bytes
        Self.put64(&b, layout.header(relaSection.index) + 32, relaSection.size - 1)
        Self.expectFailure(b, "relocation size", contains: "not a multiple of 24")
    }

    @Test func groupMembersOutOfRange() throws {
        let path = try Samples.compiled().first { $0.hasSuffix("groups.o") }!
        let bytes = try FileSystem.read(path)
        let file = try ELFFile.parse(bytes)
        let group = try #require(file.sections.first { $0.type == SectionType.group })
        var b = bytes
        Self.put32(&b, Int(group.offset) + 4, 9999)
        Self.expectFailure(b, "group member", contains: "lists section 9999", offset: group.offset + 4)
    }

    /// Random corruption of real files never traps; it parses or throws.
    @Test func randomCorruptionNeverCrashes() throws {
        let module = Samples.moduleSample().first { Samples.size($0) > 20_000 && Samples.size($0) < 100_000 }!
        let inputs = try [Self.sampleObject(), FileSystem.read(module)]
        var state: UInt64 = 0x5eed
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 17
        }
        var errors = 0
        for input in inputs {
            for _ in 0..<1500 {
                var b = input
                for _ in 0..<(1 + Int(next() % 8)) {
                    let position = Int(next() % UInt64(b.count))
                    b[position] = UInt8(truncatingIfNeeded: next())
                }
                if let file = try? ELFFile.parse(b) {
                    // Whatever parses must also dump and convert without trapping.
                    var out = ByteWriter()
                    ELFDump.writeJSON(file, to: &out)
                    _ = try? RelocatableObject(file)
                } else {
                    errors += 1
                }
            }
        }
        #expect(errors > 0)
    }
}
