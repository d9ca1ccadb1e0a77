// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// `suture elf`: sections, symbols and relocations, as JSON or as text.
///
/// The JSON is written straight into a `ByteWriter`, without an
/// intermediate tree, because kernel modules hold hundreds of thousands of
/// relocations and this path is benchmarked against readelf.
public enum ELFDump {
    public static func writeJSON(_ file: ELFFile, to out: inout ByteWriter) {
        let machine = file.header.machine
        out.write("{\"sections\":[")
        for (i, s) in file.sections.enumerated() {
            if i > 0 { out.byte(UInt8(ascii: ",")) }
            out.write("{\"index\":")
            out.decimal(s.index)
            out.write(",\"name\":")
            out.jsonString(s.name)
            out.write(",\"type\":")
            out.jsonString(ReadelfNames.sectionType(s.type, machine: machine))
            out.write(",\"flags\":")
            out.decimal(s.flags)
            out.write(",\"addr\":")
            out.decimal(s.address)
            out.write(",\"offset\":")
            out.decimal(s.offset)
            out.write(",\"size\":")
            out.decimal(s.size)
            out.write(",\"link\":")
            out.decimal(UInt64(s.link))
            out.write(",\"info\":")
            out.decimal(UInt64(s.info))
            out.write(",\"align\":")
            out.decimal(s.alignment)
            out.write(",\"entsize\":")
            out.decimal(s.entrySize)
            out.byte(UInt8(ascii: "}"))
        }
        out.write("],\"symbols\":")
        writeSymbols(file.symbols, file: file, to: &out)
        out.write(",\"dynamicSymbols\":")
        writeSymbols(file.dynamicSymbols, file: file, to: &out)
        out.write(",\"relocations\":[")
        var first = true
        let arch = file.architecture
        var typeNames: [UInt32: String] = [:]
        // Display names per symbol table, computed once.
        var namesByTable: [Int: [String]] = [:]
        for rs in file.relocationSections {
            let names: [String]
            if let cached = namesByTable[rs.symbolTable] {
                names = cached
            } else {
                names = file.symbolTable(for: rs).map { file.displayName(of: $0) }
                namesByTable[rs.symbolTable] = names
            }
            let sectionName = file.sections[rs.section].name
            for r in rs.relocations {
                if !first { out.byte(UInt8(ascii: ",")) }
                first = false
                out.write("{\"section\":")
                out.jsonString(sectionName)
                out.write(",\"offset\":")
                out.decimal(r.offset)
                out.write(",\"type\":")
                if let name = typeNames[r.type] {
                    out.jsonString(name)
                } else {
                    let name = arch.relocationName(r.type)
                    typeNames[r.type] = name
                    out.jsonString(name)
                }
                out.write(",\"symbol\":")
                if r.symbol == 0 || Int(r.symbol) >= names.count {
                    out.write("null")
                } else {
                    out.jsonString(names[Int(r.symbol)])
                }
                out.write(",\"addend\":")
                out.decimal(r.addend)
                out.byte(UInt8(ascii: "}"))
                out.flushIfNeeded()
            }
        }
        out.write("]}\n")
    }

    private static func writeSymbols(_ symbols: [Symbol], file: ELFFile, to out: inout ByteWriter) {
        out.byte(UInt8(ascii: "["))
        let osABI = file.header.osABI
        for (i, s) in symbols.enumerated() {
            if i > 0 { out.byte(UInt8(ascii: ",")) }
            out.write("{\"index\":")
            out.decimal(s.index)
            // As readelf: a section symbol without a name shows its section's.
            out.write(",\"name\":")
            out.jsonString(s.name.isEmpty && s.isSection ? file.displayName(of: s) : s.name)
            out.write(",\"value\":")
            out.decimal(s.value)
            out.write(",\"size\":")
            out.decimal(s.size)
            out.write(",\"type\":")
            out.jsonString(ReadelfNames.symbolType(s.type, osABI: osABI))
            out.write(",\"bind\":")
            out.jsonString(ReadelfNames.binding(s.binding, osABI: osABI))
            out.write(",\"visibility\":")
            out.jsonString(ReadelfNames.visibility(s.visibility))
            out.write(",\"section\":")
            switch ReadelfNames.symbolSection(s) {
            case .index(let n): out.decimal(n)
            case .name(let text): out.jsonString(text)
            }
            out.byte(UInt8(ascii: "}"))
            out.flushIfNeeded()
        }
        out.byte(UInt8(ascii: "]"))
    }

    /// A human-readable listing in the spirit of `readelf -SsrW`.
    public static func writeText(_ file: ELFFile, to out: inout ByteWriter) {
        let machine = file.header.machine
        let osABI = file.header.osABI
        func pad(_ s: String, _ width: Int) -> String {
            s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
        }
        func hex(_ v: UInt64, _ width: Int) -> String {
            let s = String(v, radix: 16)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        out.write(
            "\(file.path): ELF64 \(file.architecture.name), \(file.sections.count) sections, \(file.symbols.count) symbols\n\n"
        )
        out.write(
            "Sections:\n  [Nr] Name                           Type             Address          Off      Size     ES Flg Lk Inf Al\n"
        )
        for s in file.sections {
            out.write(
                "  [\(pad(String(s.index), 2))] \(pad(s.name, 30)) \(pad(ReadelfNames.sectionType(s.type, machine: machine), 16)) "
                    + "\(hex(s.address, 16)) \(hex(s.offset, 6)) \(hex(s.size, 6)) \(hex(s.entrySize, 2)) \(pad(flagLetters(s.flags), 3)) "
                    + "\(pad(String(s.link), 2)) \(pad(String(s.info), 3)) \(s.alignment)\n")
        }
        for (title, table) in [("Symbols (.symtab)", file.symbols), ("Symbols (.dynsym)", file.dynamicSymbols)]
        where !table.isEmpty {
            out.write("\n\(title):\n   Num:    Value          Size Type    Bind   Vis      Ndx Name\n")
            for s in table {
                let ndx: String
                switch ReadelfNames.symbolSection(s) {
                case .index(let n): ndx = String(n)
                case .name(let n): ndx = n
                }
                out.write(
                    "\(pad(String(s.index), 6)): \(hex(s.value, 16)) \(pad(String(s.size), 5)) "
                        + "\(pad(ReadelfNames.symbolType(s.type, osABI: osABI), 7)) \(pad(ReadelfNames.binding(s.binding, osABI: osABI), 6)) "
                        + "\(pad(ReadelfNames.visibility(s.visibility), 8)) \(pad(ndx, 4)) \(s.name.isEmpty && s.isSection ? file.displayName(of: s) : s.name)\n"
                )
                out.flushIfNeeded()
            }
        }
        for rs in file.relocationSections {
            let table = file.symbolTable(for: rs)
            out.write("\nRelocation section '\(file.sections[rs.section].name)' (\(rs.relocations.count) entries):\n")
            out.write("    Offset             Type               Symbol + Addend\n")
            for r in rs.relocations {
                let name =
                    r.symbol == 0 || Int(r.symbol) >= table.count ? "" : file.displayName(of: table[Int(r.symbol)])
                let sign = r.addend < 0 ? "-" : "+"
                let magnitude = r.addend < 0 ? UInt64(bitPattern: 0 &- r.addend) : UInt64(r.addend)
                out.write(
                    "  \(hex(r.offset, 16))  \(pad(file.architecture.relocationName(r.type), 18)) \(name) \(sign) \(String(magnitude, radix: 16))\n"
                )
                out.flushIfNeeded()
            }
        }
    }

    /// readelf's section flag letters.
    public static func flagLetters(_ flags: UInt64) -> String {
        let letters: [(UInt64, Character)] = [
            (SectionFlags.write, "W"), (SectionFlags.alloc, "A"), (SectionFlags.execInstr, "X"),
            (SectionFlags.merge, "M"), (SectionFlags.strings, "S"), (SectionFlags.infoLink, "I"),
            (SectionFlags.linkOrder, "L"), (SectionFlags.osNonconforming, "O"), (SectionFlags.group, "G"),
            (SectionFlags.tls, "T"), (SectionFlags.compressed, "C"), (SectionFlags.exclude, "E"),
        ]
        var s = ""
        for (bit, letter) in letters where flags & bit != 0 { s.append(letter) }
        if flags & 0x0ff0_0000 != 0 { s.append("o") }
        if flags & SectionFlags.x86_64Large != 0 { s.append("l") }
        return s
    }
}
