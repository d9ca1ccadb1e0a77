// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Writes a `RelocatableObject` as an ELF64 little-endian file.
///
/// Layout: the ELF header, then each section's bytes at its alignment, then
/// the section header table. The writer generates `.symtab` (locals first,
/// `sh_info` = first non-local), `.strtab`, `.shstrtab` and, when more than
/// 0xff00 sections exist, `.symtab_shndx` with extended numbering.
public enum ELFWriter {
    public static func write(_ object: RelocatableObject, path: String = "<output>") throws(ELFError) -> [UInt8] {
        var plan = object
        // Generated tables exist exactly once.
        func ensure(_ content: ObjectSection.Content, _ make: () -> ObjectSection) {
            let present = plan.sections.contains { section in
                switch (section.content, content) {
                case (.symbolTable, .symbolTable), (.symbolNames, .symbolNames), (.sectionNames, .sectionNames):
                    return true
                default: return false
                }
            }
            if !present { plan.sections.append(make()) }
        }
        ensure(.symbolTable) {
            ObjectSection(
                name: ".symtab", type: SectionType.symtab, flags: 0, alignment: 8, entrySize: 24, content: .symbolTable)
        }
        ensure(.symbolNames) {
            ObjectSection(name: ".strtab", type: SectionType.strtab, flags: 0, alignment: 1, content: .symbolNames)
        }
        ensure(.sectionNames) {
            ObjectSection(name: ".shstrtab", type: SectionType.strtab, flags: 0, alignment: 1, content: .sectionNames)
        }

        let symtabID = SectionID(
            plan.sections.firstIndex {
                if case .symbolTable = $0.content { return true }
                return false
            }!)
        let strtabID = SectionID(
            plan.sections.firstIndex {
                if case .symbolNames = $0.content { return true }
                return false
            }!)
        let shstrtabID = SectionID(
            plan.sections.firstIndex {
                if case .sectionNames = $0.content { return true }
                return false
            }!)

        // Extended section numbering once indexes reach SHN_LORESERVE.
        let needsExtended = plan.sections.count + 1 >= Int(SpecialSection.loReserve)
        var shndxID: SectionID?
        if needsExtended {
            plan.sections.append(
                ObjectSection(
                    name: ".symtab_shndx", type: SectionType.symtabShndx, flags: 0,
                    alignment: 4, entrySize: 4, content: .noBits(0), link: .section(symtabID)))
            shndxID = SectionID(plan.sections.count - 1)
        }
        let sectionCount = plan.sections.count + 1
        func index(_ id: SectionID, user: String) throws(ELFError) -> UInt32 {
            guard id.value >= 0 && id.value < plan.sections.count else {
                throw ELFError(
                    .write, path: path,
                    "\(user) refers to section #\(id.value), but the object has \(plan.sections.count) sections")
            }
            return UInt32(id.value + 1)
        }

        // Symbol order: null, locals, then the rest; each in model order.
        var order: [Int] = []
        order.reserveCapacity(plan.symbols.count)
        for (i, s) in plan.symbols.enumerated() where s.isLocal { order.append(i) }
        let firstGlobal = order.count + 1
        for (i, s) in plan.symbols.enumerated() where !s.isLocal { order.append(i) }
        var finalIndex = [UInt32](repeating: 0, count: plan.symbols.count)
        for (position, i) in order.enumerated() { finalIndex[i] = UInt32(position + 1) }
        func symbolIndex(_ id: SymbolID?, user: String) throws(ELFError) -> UInt32 {
            guard let id else { return 0 }
            guard id.value >= 0 && id.value < plan.symbols.count else {
                throw ELFError(
                    .write, path: path,
                    "\(user) refers to symbol #\(id.value), but the object has \(plan.symbols.count) symbols")
            }
            return finalIndex[id.value]
        }

        // String tables.
        var symbolStrings = StringTableBuilder()
        var sectionStrings = StringTableBuilder()
        var symtab = ByteWriter()
        var shndx = ByteWriter()
        symtab.write([UInt8](repeating: 0, count: 24))
        if needsExtended { shndx.write([0, 0, 0, 0]) }
        for i in order {
            let s = plan.symbols[i]
            let nameOffset = symbolStrings.add(s.name)
            var raw: UInt16
            var extended: UInt32 = 0
            switch s.place {
            case .undefined: raw = 0
            case .reserved(let r): raw = r
            case .section(let id):
                let idx = try index(id, user: "symbol \(s.name)")
                if idx >= UInt32(SpecialSection.loReserve) {
                    raw = SpecialSection.extended
                    extended = idx
                } else {
                    raw = UInt16(idx)
                }
            }
            symtab.le32(nameOffset)
            symtab.byte(s.binding << 4 | (s.type & 0xf))
            symtab.byte(s.other)
            symtab.le16(raw)
            symtab.le64(s.value)
            symtab.le64(s.size)
            if needsExtended { shndx.le32(extended) }
        }

        // Section bodies.
        var bodies: [[UInt8]?] = []
        var links: [UInt32] = []
        var infos: [UInt32] = []
        var sizes: [UInt64] = []
        var names: [UInt32] = []
        let symtabBytes = symtab.bytes
        let shndxBytes = shndx.bytes
        for section in plan.sections { names.append(sectionStrings.add(section.name)) }
        for (n, section) in plan.sections.enumerated() {
            var body: [UInt8]? = nil
            var size: UInt64 = 0
            var link: UInt32 = 0
            var info: UInt32 = 0
            switch section.content {
            case .bytes(let bytes):
                body = bytes.array
                size = UInt64(bytes.count)
            case .noBits(let s):
                size = s
                if SectionID(n) == shndxID {
                    body = shndxBytes
                    size = UInt64(shndxBytes.count)
                }
            case .relocations(let target, let entries):
                var w = ByteWriter()
                let addends = section.type == SectionType.rela
                for (k, r) in entries.enumerated() {
                    let sym = try symbolIndex(r.symbol, user: "relocation \(k) of \(section.name)")
                    w.le64(r.offset)
                    w.le64(UInt64(sym) << 32 | UInt64(r.type))
                    if addends { w.le64(UInt64(bitPattern: r.addend)) }
                }
                body = w.bytes
                size = UInt64(body!.count)
                link = try index(symtabID, user: section.name)
                if let target { info = try index(target, user: "relocation section \(section.name)") }
            case .group(let flags, let signature, let members):
                var w = ByteWriter()
                w.le32(flags)
                for m in members { w.le32(try index(m, user: "group \(section.name)")) }
                body = w.bytes
                size = UInt64(body!.count)
                link = try index(symtabID, user: section.name)
                info = try symbolIndex(signature, user: "group \(section.name)")
            case .symbolTable:
                body = symtabBytes
                size = UInt64(symtabBytes.count)
                link = try index(strtabID, user: section.name)
                info = UInt32(firstGlobal)
            case .symbolNames:
                body = nil
            case .sectionNames:
                body = nil
            }
            switch section.link {
            case .none: break
            case .raw(let v): link = v
            case .section(let id): link = try index(id, user: "sh_link of \(section.name)")
            }
            switch section.info {
            case .none: break
            case .raw(let v): info = v
            case .section(let id): info = try index(id, user: "sh_info of \(section.name)")
            }
            bodies.append(body)
            links.append(link)
            infos.append(info)
            sizes.append(size)
        }
        let strtabBytes = symbolStrings.bytes
        bodies[strtabID.value] = strtabBytes
        sizes[strtabID.value] = UInt64(strtabBytes.count)
        let shstrtabBytes = sectionStrings.bytes
        bodies[shstrtabID.value] = shstrtabBytes
        sizes[shstrtabID.value] = UInt64(shstrtabBytes.count)

        // Layout.
        var out = ByteWriter()
        out.write([UInt8](repeating: 0, count: ELF64.headerSize))
        var offsets: [UInt64] = []
        for (n, section) in plan.sections.enumerated() {
            let align = max(section.alignment, 1)
            if let body = bodies[n] {
                out.pad(toMultipleOf: Int(min(align, 4096)))
                offsets.append(UInt64(out.count))
                out.write(body)
            } else {
                offsets.append(UInt64(out.count))
            }
        }
        out.pad(toMultipleOf: 8)
        let shoff = UInt64(out.count)
        // Section 0 carries the counts that do not fit in the header.
        out.write([UInt8](repeating: 0, count: 32))
        out.le64(sectionCount >= Int(SpecialSection.loReserve) ? UInt64(sectionCount) : 0)
        let shstrndx = shstrtabID.value + 1
        out.le32(shstrndx >= Int(SpecialSection.loReserve) ? UInt32(shstrndx) : 0)
        out.write([UInt8](repeating: 0, count: 20))
        for (n, section) in plan.sections.enumerated() {
            out.le32(names[n])
            out.le32(section.type)
            out.le64(section.flags)
            out.le64(section.address)
            out.le64(offsets[n])
            out.le64(sizes[n])
            out.le32(links[n])
            out.le32(infos[n])
            out.le64(section.alignment)
            out.le64(section.entrySize)
        }
        var bytes = out.bytes
        // The ELF header.
        var h = ByteWriter()
        h.write([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, plan.osABI, 0, 0, 0, 0, 0, 0, 0, 0])
        h.le16(plan.fileType)
        h.le16(plan.machine)
        h.le32(1)
        h.le64(0)  // e_entry
        h.le64(0)  // e_phoff
        h.le64(shoff)
        h.le32(plan.flags)
        h.le16(UInt16(ELF64.headerSize))
        h.le16(0)  // e_phentsize
        h.le16(0)  // e_phnum
        h.le16(UInt16(ELF64.sectionHeaderSize))
        h.le16(sectionCount >= Int(SpecialSection.loReserve) ? 0 : UInt16(sectionCount))
        h.le16(shstrndx >= Int(SpecialSection.loReserve) ? SpecialSection.extended : UInt16(shstrndx))
        let header = h.bytes
        bytes.replaceSubrange(0..<ELF64.headerSize, with: header)
        return bytes
    }

    /// Writes the object to a file atomically.
    public static func write(_ object: RelocatableObject, to path: String) throws(ELFError) {
        let bytes = try write(object, path: path)
        do {
            try FileSystem.writeAtomically(path, bytes)
        } catch {
            throw ELFError(.io, path: path, "cannot write: \(error.description)")
        }
    }
}

/// Builds a string table: offset 0 is the empty string, each distinct
/// string is stored once.
struct StringTableBuilder {
    private(set) var bytes: [UInt8] = [0]
    private var offsets: [String: UInt32] = ["": 0]

    mutating func add(_ s: String) -> UInt32 {
        if let existing = offsets[s] { return existing }
        let offset = UInt32(bytes.count)
        bytes.append(contentsOf: s.utf8)
        bytes.append(0)
        offsets[s] = offset
        return offset
    }
}

extension ByteWriter {
    mutating func le16(_ v: UInt16) {
        byte(UInt8(truncatingIfNeeded: v))
        byte(UInt8(truncatingIfNeeded: v >> 8))
    }
    mutating func le32(_ v: UInt32) { for i in 0..<4 { byte(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func le64(_ v: UInt64) { for i in 0..<8 { byte(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    mutating func pad(toMultipleOf alignment: Int) {
        guard alignment > 1 else { return }
        while count % alignment != 0 { byte(0) }
    }
}
