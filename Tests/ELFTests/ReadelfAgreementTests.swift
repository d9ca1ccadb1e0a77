// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import Testing

/// `suture elf --json` must agree with `readelf -SsrW` on real files.
@Suite struct ReadelfAgreementTests {
    /// The JSON dump of a file, parsed back.
    static func dump(_ file: ELFFile) throws -> JSON {
        var out = ByteWriter()
        ELFDump.writeJSON(file, to: &out)
        return try JSON.parse(out.finish())
    }

    static func compare(_ path: String) throws {
        let file = try ELFFile.open(path)
        let json = try dump(file)
        let reference = try ReadelfView.load(path)
        #expect(reference.warnings.isEmpty, "readelf warned on \(path): \(reference.warnings)")

        // Sections.
        let sections = json["sections"]!.arrayValue!
        #expect(sections.count == reference.sections.count, "\(path): section count")
        for (mine, theirs) in zip(sections, reference.sections) {
            let flags = UInt64(mine["flags"]!.intValue!)
            let name = mine["name"]!.stringValue!
            #expect(mine["index"]!.intValue! == Int64(theirs.index))
            #expect(name == theirs.name, "\(path): section \(theirs.index) name")
            #expect(mine["type"]!.stringValue! == theirs.type, "\(path): section \(name) type")
            #expect(UInt64(mine["addr"]!.intValue!) == theirs.address)
            #expect(UInt64(mine["offset"]!.intValue!) == theirs.offset, "\(path): \(name) offset")
            #expect(UInt64(mine["size"]!.intValue!) == theirs.size, "\(path): \(name) size")
            #expect(UInt64(mine["entsize"]!.intValue!) == theirs.entrySize)
            #expect(UInt32(mine["link"]!.intValue!) == theirs.link)
            #expect(UInt32(mine["info"]!.intValue!) == theirs.info)
            #expect(UInt64(mine["align"]!.intValue!) == theirs.alignment)
            #expect(
                Set(ELFDump.flagLetters(flags)) == Set(theirs.flags),
                "\(path): \(name) flags \(flags) vs \(theirs.flags)")
        }

        // Symbols of both tables.
        for (key, table) in [("symbols", ".symtab"), ("dynamicSymbols", ".dynsym")] {
            let mine = json[key]!.arrayValue!
            let theirs = reference.symbols[table] ?? []
            #expect(mine.count == theirs.count, "\(path): \(table) count")
            for (m, t) in zip(mine, theirs) {
                let name = m["name"]!.stringValue!
                #expect(name == t.name, "\(path): \(table) symbol \(t.index) name")
                #expect(UInt64(bitPattern: m["value"]!.intValue!) == t.value, "\(path): \(name) value")
                #expect(UInt64(m["size"]!.intValue!) == t.size, "\(path): \(name) size")
                #expect(m["type"]!.stringValue! == t.type, "\(path): \(name) type")
                #expect(m["bind"]!.stringValue! == t.bind, "\(path): \(name) bind")
                #expect(m["visibility"]!.stringValue! == t.visibility, "\(path): \(name) visibility")
                let section: String
                if let n = m["section"]!.intValue {
                    section = String(n)
                } else {
                    let s = m["section"]!.stringValue!
                    // readelf spells other reserved indexes "OS [0xff20]", "PRC[0xff00]" …
                    if s.hasPrefix("0x"), let v = UInt32(s.dropFirst(2), radix: 16) {
                        let padded =
                            "0x" + String(repeating: "0", count: max(0, 4 - String(v, radix: 16).count))
                            + String(v, radix: 16)
                        section =
                            v >= 0xff20 && v <= 0xff3f
                            ? "OS [\(padded)]" : v < 0xff20 ? "PRC[\(padded)]" : "RSV[\(padded)]"
                    } else {
                        section = s
                    }
                }
                #expect(section == t.section, "\(path): \(name) section \(section) vs \(t.section)")
            }
        }

        // Relocations, in order.
        let relocations = json["relocations"]!.arrayValue!
        #expect(relocations.count == reference.relocations.count, "\(path): relocation count")
        for (m, t) in zip(relocations, reference.relocations) {
            #expect(m["section"]!.stringValue! == t.section)
            #expect(UInt64(bitPattern: m["offset"]!.intValue!) == t.offset, "\(path): \(t.section) offset")
            #expect(m["type"]!.stringValue! == t.type, "\(path): \(t.section)+\(t.offset) type")
            #expect(m["symbol"]!.stringValue == t.symbol, "\(path): \(t.section)+\(t.offset) symbol")
            #expect(m["addend"]!.intValue! == t.addend, "\(path): \(t.section)+\(t.offset) addend")
        }
    }

    @Test func sampleOfInstalledModules() throws {
        let sample = Samples.moduleSample()
        #expect(sample.count >= 30, "too few kernel modules installed to sample")
        for path in sample { try Self.compare(path) }
    }

    @Test func objectsCompiledByGCC() throws {
        for path in try Samples.compiled() { try Self.compare(path) }
    }

    @Test func compressedModulesReadLikeTheirOriginal() throws {
        let original = Samples.moduleSample(count: 5)[1]
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for (tool, suffix) in [(["xz", "-c"], ".ko.xz"), (["zstd", "-qc"], ".ko.zst")] {
            let compressed = Path.join(dir.path, "module" + suffix)
            let result = try Command.run(tool + [original])
            #expect(result.termination.succeeded)
            try FileSystem.write(compressed, result.stdout)
            let a = try Self.dump(ELFFile.open(original))
            let b = try Self.dump(ELFFile.open(compressed))
            #expect(a == b, "\(suffix) differs from the uncompressed module")
        }
    }

    @Test func buildIDAndModinfo() throws {
        let module = Samples.moduleSample(count: 5)[0]
        let file = try ELFFile.open(module)
        let id = try file.buildID()
        let readelf = try Command.output(["readelf", "-n", module])
        let expected = readelf.split(separator: "\n").first { $0.contains("Build ID:") }?
            .split(separator: " ").last.map(String.init)
        #expect(id.map(hexString) == expected)
        let modinfo = try Command.output(["modinfo", "-F", "vermagic", module]).trimmingWhitespace()
        #expect(file.modinfoValue("vermagic")?.trimmingWhitespace() == modinfo)
    }
}
