// SPDX-License-Identifier: GPL-2.0-only

extension RelocatableObject {
    /// Converts a parsed relocatable object (a `.o` or a linked `.ko`) into
    /// the editable model, keeping every section, symbol and relocation.
    /// Writing it back gives the same sections, symbols and relocations;
    /// only file offsets and string-table layout may change.
    public init(_ file: ELFFile) throws(ELFError) {
        guard file.header.type == FileType.relocatable else {
            throw ELFError(
                .unsupported, path: file.path, offset: 16,
                "only relocatable objects (ET_REL: .o and .ko files) can be rewritten; e_type is \(file.header.type)")
        }
        self.init(machine: file.header.machine)
        osABI = file.header.osABI
        flags = file.header.flags
        let symtab = file.symbolTableIndex
        let symbolNames = symtab.map { Int(file.sections[$0].link) }
        let sectionNames = file.header.sectionNameTableIndex
        // Old section index → new identity; sections we regenerate get none.
        var ids = [SectionID?](repeating: nil, count: file.sections.count)
        var next = 0
        for section in file.sections.dropFirst() where section.type != SectionType.symtabShndx {
            ids[section.index] = SectionID(next)
            next += 1
        }
        func id(_ index: Int, for user: Section) throws(ELFError) -> SectionID {
            guard index > 0, index < ids.count, let id = ids[index] else {
                throw ELFError(
                    .malformed, path: file.path,
                    "section \(user.index) (\(user.name)) refers to section \(index), which cannot be kept")
            }
            return id
        }
        func symbolID(_ index: UInt32) -> SymbolID? { index == 0 ? nil : SymbolID(Int(index) - 1) }

        for section in file.sections.dropFirst() where section.type != SectionType.symtabShndx {
            var out = ObjectSection(
                name: section.name, type: section.type, flags: section.flags,
                alignment: section.alignment, entrySize: section.entrySize, content: .noBits(section.size))
            out.address = section.address
            if section.index == symtab {
                out.content = .symbolTable
            } else if section.index == sectionNames {
                out.content = .sectionNames
            } else if section.index == symbolNames {
                out.content = .symbolNames
            } else if section.type == SectionType.dynsym {
                throw ELFError(
                    .unsupported, path: file.path, "section \(section.name): dynamic symbol tables cannot be rewritten")
            } else if section.isRelocationSection && section.link != 0 && Int(section.link) == symtab {
                guard let relocations = file.relocationSections.first(where: { $0.section == section.index }) else {
                    throw ELFError(.malformed, path: file.path, "relocation section \(section.name) was not parsed")
                }
                let target: SectionID? = section.info == 0 ? nil : try id(Int(section.info), for: section)
                out.content = .relocations(
                    target: target,
                    entries: relocations.relocations.map {
                        ObjectRelocation(
                            offset: $0.offset, type: $0.type, symbol: symbolID($0.symbol), addend: $0.addend)
                    })
            } else if section.type == SectionType.group {
                let data = file.data(section)
                var members: [SectionID] = []
                for i in 1..<Int(section.size / 4) {
                    members.append(try id(Int(data.u32(at: i * 4)), for: section))
                }
                guard let signature = symbolID(section.info) else {
                    throw ELFError(.malformed, path: file.path, "group section \(section.name) has no signature symbol")
                }
                out.content = .group(flags: data.u32(at: 0), signature: signature, members: members)
            } else {
                out.content = section.type == SectionType.nobits ? .noBits(section.size) : .bytes(file.data(section))
                if section.has(SectionFlags.linkOrder) && section.link != 0 {
                    out.link = .section(try id(Int(section.link), for: section))
                } else if section.link != 0 {
                    out.link = .raw(section.link)
                }
                if section.has(SectionFlags.infoLink) && section.info != 0 {
                    out.info = .section(try id(Int(section.info), for: section))
                } else if section.info != 0 {
                    out.info = .raw(section.info)
                }
            }
            sections.append(out)
        }

        for symbol in file.symbols.dropFirst() {
            let place: ObjectSymbol.Place
            if symbol.rawSectionIndex == SpecialSection.undefined {
                place = .undefined
            } else if symbol.hasReservedSectionIndex {
                place = .reserved(symbol.rawSectionIndex)
            } else {
                guard let sid = ids[Int(symbol.sectionIndex)] else {
                    throw ELFError(
                        .malformed, path: file.path,
                        "symbol \(symbol.index) (\(symbol.name)) is defined in section \(symbol.sectionIndex), which cannot be kept"
                    )
                }
                place = .section(sid)
            }
            symbols.append(
                ObjectSymbol(
                    name: symbol.name, value: symbol.value, size: symbol.size,
                    type: symbol.type, binding: symbol.binding, other: symbol.other, place: place))
        }
    }
}
