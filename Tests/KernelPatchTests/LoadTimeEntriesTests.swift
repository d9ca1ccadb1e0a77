// SPDX-License-Identifier: GPL-2.0-only
import ELF
import KernelPatch
import TargetKernel
import Testing

/// A module's tracepoint in patched code: its `__jump_table` entry is taken
/// out whole (bytes and relocations) and the later entries move up.
@Suite struct LoadTimeEntriesTests {
    @Test func removingAnEntryMovesTheLaterOnesUp() throws {
        var object = RelocatableObject(machine: 62)
        let text = object.add(
            .progbits(
                ".text.f", flags: SectionFlags.alloc | SectionFlags.execInstr, [UInt8](repeating: 0x90, count: 64)))
        let table = object.add(
            .progbits("__jump_table", flags: SectionFlags.alloc | SectionFlags.write, (0..<48).map { UInt8($0) }))
        object.symbols.append(ObjectSymbol(name: "", type: 0, binding: 0, place: .undefined))
        object.symbols.append(
            ObjectSymbol(
                name: "f", size: 64, type: SymbolType.function, binding: SymbolBinding.local, place: .section(text)))
        object.symbols.append(ObjectSymbol(name: "key_a", type: 0, binding: SymbolBinding.global, place: .undefined))
        object.symbols.append(
            ObjectSymbol(name: "__tracepoint_t", type: 0, binding: SymbolBinding.global, place: .undefined))
        object.symbols.append(ObjectSymbol(name: "key_c", type: 0, binding: SymbolBinding.global, place: .undefined))
        func entry(_ i: UInt64, key: Int) -> [ObjectRelocation] {
            [
                ObjectRelocation(offset: i * 16, type: 2, symbol: SymbolID(1), addend: Int64(i)),
                ObjectRelocation(offset: i * 16 + 4, type: 2, symbol: SymbolID(1), addend: Int64(i) + 8),
                ObjectRelocation(offset: i * 16 + 8, type: 24, symbol: SymbolID(key), addend: 0),
            ]
        }
        let rela = object.add(
            ObjectSection(
                name: ".rela__jump_table", type: SectionType.rela, flags: 0, alignment: 8, entrySize: 24,
                content: .relocations(target: table, entries: entry(0, key: 2) + entry(1, key: 3) + entry(2, key: 4))))

        let result = try #require(LoadTimeEntries.removing(entriesAt: [16], size: 16, of: table.value, from: object))
        guard case .bytes(let bytes) = result.sections[table.value].content else {
            Issue.record("__jump_table is no longer bytes")
            return
        }
        #expect(bytes.withUnsafeBytes { Array($0) } == (0..<16).map { UInt8($0) } + (32..<48).map { UInt8($0) })
        guard case .relocations(_, let entries) = result.sections[rela.value].content else {
            Issue.record("the relocations are gone")
            return
        }
        #expect(entries.map(\.offset) == [0, 4, 8, 16, 20, 24])
        #expect(
            entries.compactMap(\.symbol).map(\.value) == [1, 1, 2, 1, 1, 4],
            "the tracepoint's key is no longer referred to")
        #expect(entries[3].addend == 2, "the third entry moved up whole")
        // Not a whole number of entries: nothing is guessed.
        #expect(LoadTimeEntries.removing(entriesAt: [0], size: 20, of: table.value, from: object) == nil)
    }

    /// 6.5 and later keep each export as a record of `.export_symbol`
    /// (license, namespace, reference), labelled `__export_symbol_NAME`.
    @Test func exportRecordsOf612() throws {
        func object(_ exports: [(String, gpl: Bool)]) throws -> ELFFile {
            var object = RelocatableObject(machine: 62)
            var bytes: [UInt8] = []
            var labels: [(String, UInt64)] = []
            for (name, gpl) in exports {
                labels.append((name, UInt64(bytes.count)))
                bytes += (gpl ? Array("GPL".utf8) : []) + [0, 0]
                while bytes.count % 8 != 0 { bytes.append(0) }
                bytes += [UInt8](repeating: 0, count: 8)
            }
            let table = object.add(.progbits(".export_symbol", flags: SectionFlags.alloc, alignment: 8, bytes))
            object.symbols.append(ObjectSymbol(name: "", type: 0, binding: 0, place: .undefined))
            for (name, offset) in labels {
                object.symbols.append(
                    ObjectSymbol(
                        name: "__export_symbol_" + name, value: offset, type: 0, binding: SymbolBinding.local,
                        place: .section(table)))
            }
            return try ELFFile.parse(try ELFWriter.write(object))
        }
        let original = try object([("drm_panel_init", gpl: false)])
        let patched = try object([
            ("drm_panel_init", gpl: false), ("__devm_drm_panel_alloc", gpl: false), ("x_gpl", gpl: true),
        ])
        let added = NewExports.added(original: original, patched: patched)
        #expect(added.map(\.name) == ["__devm_drm_panel_alloc", "x_gpl"])
        #expect(added.map(\.gpl) == [false, true])
        #expect(added.last?.macro == "EXPORT_SYMBOL_GPL")
    }
}

/// On kernels that run objtool on the linked module, a patch object's own
/// site lists are moved out of objtool's way (it skips lists a module has).
@Suite struct SiteListTests {
    @Test func siteListsAreLeftToObjtoolAtLink() {
        var object = RelocatableObject(machine: 62)
        let returns = object.add(.progbits(".return_sites", flags: SectionFlags.alloc, [0, 0, 0, 0]))
        object.add(
            ObjectSection(
                name: ".rela.return_sites", type: SectionType.rela, flags: 0, alignment: 8, entrySize: 24,
                content: .relocations(target: returns, entries: [])))
        object.add(.progbits(".orc_unwind_ip", flags: SectionFlags.alloc, [0, 0, 0, 0]))
        object.add(.progbits(".text.kept", flags: SectionFlags.alloc, [0xc3]))
        LivepatchModule.setAsideObjtoolOutput(&object)
        let names = object.sections.map(\.name)
        #expect(
            names.suffix(4) == [
                ".discard.suture.return_sites", ".rela.discard.suture.return_sites", ".discard.suture.orc_unwind_ip",
                ".text.kept",
            ])
    }
}
