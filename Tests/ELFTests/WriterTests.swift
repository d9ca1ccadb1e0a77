// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import Testing

/// The writer: read → write → read keeps everything; rewrites of linked
/// modules are accepted by binutils; objects written from scratch link and run.
@Suite struct WriterTests {
    /// Sections, symbols and relocations of two files are the same, up to
    /// file offsets and the layout of generated string tables.
    static func expectSame(_ a: ELFFile, _ b: ELFFile, _ label: String) {
        let generated: Set<UInt32> = [SectionType.symtab, SectionType.strtab, SectionType.symtabShndx]
        let keptA = a.sections.filter { $0.type != SectionType.symtabShndx }
        #expect(keptA.count == b.sections.count, "\(label): section count")
        for (x, y) in zip(keptA, b.sections) {
            #expect(x.name == y.name, "\(label): section name")
            #expect(
                x.type == y.type && x.flags == y.flags && x.alignment == y.alignment && x.entrySize == y.entrySize,
                "\(label): section \(x.name) header")
            if !generated.contains(x.type) && !x.isRelocationSection {
                #expect(a.data(x) == b.data(y), "\(label): section \(x.name) contents")
                #expect(x.size == y.size)
            }
        }
        func describe(_ f: ELFFile, _ s: Symbol) -> String {
            let place = s.definingSection.map { f.sections[$0].name } ?? "raw \(s.rawSectionIndex)"
            return "\(s.name)|\(s.value)|\(s.size)|\(s.info)|\(s.other)|\(place)"
        }
        #expect(a.symbols.map { describe(a, $0) } == b.symbols.map { describe(b, $0) }, "\(label): symbols")
        #expect(a.relocationSections.count == b.relocationSections.count)
        for (x, y) in zip(a.relocationSections, b.relocationSections) {
            let xs = x.relocations.map {
                "\($0.offset)|\($0.type)|\(a.displayName(of: a.symbols[Int($0.symbol)]))|\($0.addend)"
            }
            let ys = y.relocations.map {
                "\($0.offset)|\($0.type)|\(b.displayName(of: b.symbols[Int($0.symbol)]))|\($0.addend)"
            }
            #expect(xs == ys, "\(label): relocations of \(a.sections[x.section].name)")
            #expect(a.sections[x.target].name == b.sections[y.target].name)
        }
    }

    static func roundTrip(_ path: String) throws -> ELFFile {
        let original = try ELFFile.open(path)
        let bytes = try ELFWriter.write(RelocatableObject(original))
        let again = try ELFFile.parse(bytes, path: path + " (rewritten)")
        expectSame(original, again, path)
        return again
    }

    @Test func roundTripOfModulesAndObjects() throws {
        let objects = try Samples.compiled().filter { $0.hasSuffix(".o") }
        for path in Samples.moduleSample(count: 15) + objects {
            _ = try Self.roundTrip(path)
        }
    }

    @Test func executablesAreNotRewritten() throws {
        let exe = try Samples.compiled().first { $0.hasSuffix("sample-exe") }!
        #expect(throws: ELFError.self) { try RelocatableObject(ELFFile.open(exe)) }
    }

    /// What the kernel build does to a linked module: add a klp relocation
    /// section and SHN_LIVEPATCH symbols. binutils must accept the result.
    @Test func rewriteOfALinkedModuleAddsKlpRelocations() throws {
        let module = Samples.moduleSample(count: 5).first { Samples.size($0) < 2_000_000 }!
        let file = try ELFFile.open(module)
        var object = try RelocatableObject(file)
        let text = try #require(object.section(named: ".text"))
        // A local symbol added after globals must still be written first.
        let local = object.add(
            ObjectSymbol(
                name: "suture_local_marker", type: SymbolType.notype,
                binding: SymbolBinding.local, place: .section(text)))
        let klp = object.add(
            ObjectSymbol(
                name: ".klp.sym.vmlinux.saved_command_line,0", type: SymbolType.object,
                binding: SymbolBinding.global, place: .reserved(SpecialSection.livepatch)))
        object.add(
            ObjectSection.rela(
                ".klp.rela.vmlinux..text", target: text,
                flags: SectionFlags.alloc | SectionFlags.infoLink | SectionFlags.relaLivepatch,
                [
                    ObjectRelocation(offset: 16, type: 2, symbol: klp, addend: -4),
                    ObjectRelocation(offset: 24, type: 2, symbol: local, addend: 0),
                ]))
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let out = Path.join(dir.path, "rewritten.ko")
        try ELFWriter.write(object, to: out)

        let readelf = try Command.run(["readelf", "-aW", out])
        #expect(readelf.termination.succeeded)
        #expect(readelf.stderrText.isEmpty, "readelf warnings: \(readelf.stderrText)")
        #expect(readelf.stdoutText.contains("OS [0xff20] .klp.sym.vmlinux.saved_command_line,0"))
        let linked = try Command.run(["ld", "-r", "-o", Path.join(dir.path, "relinked.o"), out])
        #expect(linked.termination.succeeded, "ld -r: \(linked.stderrText)")
        let modinfo = try Command.output(["modinfo", "-F", "vermagic", out])
        #expect(modinfo.trimmingWhitespace() == file.modinfoValue("vermagic")?.trimmingWhitespace())

        let again = try ELFFile.open(out)
        let symtab = again.sections[again.symbolTableIndex!]
        let firstGlobal = Int(symtab.info)
        #expect(again.symbols[..<firstGlobal].allSatisfy { $0.isLocal }, "locals must come first")
        #expect(again.symbols[firstGlobal...].allSatisfy { !$0.isLocal })
        let klpSection = try #require(again.section(named: ".klp.rela.vmlinux..text"))
        #expect(klpSection.flags & SectionFlags.relaLivepatch != 0)
        let entries = try #require(again.relocationSections.first { $0.section == klpSection.index })
        #expect(again.sections[entries.target].name == ".text")
        let target = again.symbols[Int(entries.relocations[0].symbol)]
        #expect(target.name == ".klp.sym.vmlinux.saved_command_line,0")
        #expect(target.rawSectionIndex == SpecialSection.livepatch)
        #expect(again.symbols[Int(entries.relocations[1].symbol)].name == "suture_local_marker")
        // Everything that was there is still there.
        #expect(again.relocationSections.count == file.relocationSections.count + 1)
    }

    /// An object written from nothing links with gcc and runs.
    @Test func objectWrittenFromScratchLinksAndRuns() throws {
        var object = RelocatableObject(machine: Machine.x86_64)
        // int answer(void) { return helper() + 0x29 - 0x29 + 42 - 42 + value; } in machine code:
        //   call helper; add eax, [rip+value]; ret
        let code: [UInt8] = [0xe8, 0, 0, 0, 0, 0x03, 0x05, 0, 0, 0, 0, 0xc3]
        let text = object.add(
            .progbits(".text.answer", flags: SectionFlags.alloc | SectionFlags.execInstr, alignment: 16, code))
        let data = object.add(
            .progbits(".data.value", flags: SectionFlags.alloc | SectionFlags.write, alignment: 4, [0x20, 0, 0, 0]))
        object.add(
            ObjectSymbol(
                name: "scratch.c", type: SymbolType.file, binding: SymbolBinding.local,
                place: .reserved(SpecialSection.absolute)))
        let value = object.add(
            ObjectSymbol(
                name: "value", size: 4, type: SymbolType.object,
                binding: SymbolBinding.local, place: .section(data)))
        object.add(
            ObjectSymbol(
                name: "answer", size: UInt64(code.count), type: SymbolType.function,
                binding: SymbolBinding.global, place: .section(text)))
        let helper = object.add(
            ObjectSymbol(
                name: "helper", type: SymbolType.notype,
                binding: SymbolBinding.global, place: .undefined))
        object.add(
            .rela(
                ".rela.text.answer", target: text,
                [
                    ObjectRelocation(offset: 1, type: 4, symbol: helper, addend: -4),
                    ObjectRelocation(offset: 7, type: 2, symbol: value, addend: -4),
                ]))
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let objectPath = Path.join(dir.path, "answer.o")
        try ELFWriter.write(object, to: objectPath)
        let main = Path.join(dir.path, "main.c")
        try FileSystem.write(
            main, "int helper(void) { return 10; }\nint answer(void);\nint main(void) { return answer(); }\n")
        let exe = Path.join(dir.path, "answer")
        _ = try Command.output(["gcc", "-o", exe, main, objectPath])
        let run = try Command.run([exe])
        #expect(run.termination == .exited(42), "10 from helper + 32 from value")
        let readelf = try Command.run(["readelf", "-aW", objectPath])
        #expect(readelf.stderrText.isEmpty, "readelf warnings: \(readelf.stderrText)")
        _ = try Self.roundTrip(objectPath)
    }

    /// More than 0xff00 sections need extended numbering; the writer must
    /// produce it and the reader must read it back (as binutils does).
    @Test func extendedSectionNumbering() throws {
        var object = RelocatableObject(machine: Machine.x86_64)
        var last = SectionID(0)
        for i in 0..<65_300 {
            last = object.add(.progbits(".text.f\(i)", flags: SectionFlags.alloc | SectionFlags.execInstr, [0xc3]))
        }
        object.add(
            ObjectSymbol(
                name: "last_function", size: 1, type: SymbolType.function,
                binding: SymbolBinding.global, place: .section(last)))
        let bytes = try ELFWriter.write(object)
        let file = try ELFFile.parse(bytes)
        #expect(file.sections.count > 65_300)
        let symbol = try #require(file.symbols.first { $0.name == "last_function" })
        #expect(symbol.rawSectionIndex == SpecialSection.extended)
        #expect(file.sections[Int(symbol.sectionIndex)].name == ".text.f65299")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = Path.join(dir.path, "many.o")
        try FileSystem.write(path, bytes)
        let nm = try Command.output(["nm", path])
        #expect(nm.contains("T last_function"))
    }
}
