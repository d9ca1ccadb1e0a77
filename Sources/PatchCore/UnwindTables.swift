// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// Carrying unwind tables into the patch object (user space).
///
/// The patched object's `.eh_frame` holds one FDE per function section; the
/// FDEs of the included functions are copied with their CIEs into a new
/// `.eh_frame` that ends with a zero terminator, ready for libgcc's
/// `__register_frame_info`. What the copies point to comes along: the
/// `.gcc_except_table` sections holding their LSDAs (call sites, landing
/// pads, type tables; `.cold` parts have their own FDE and LSDA), and the
/// `DW.ref.*` words through which a CIE names its personality routine (or an
/// LSDA a type) indirectly. Every relocation is mapped as code relocations
/// are, so a pointer into an included function follows the copy.
extension Emitter {
    func carryUnwindTables(
        into out: inout RelocatableObject, elementSymbols: inout [Int: SymbolID],
        sectionSymbols: inout [Int: SymbolID],
        pendingRelocations: inout [(section: SectionID, source: Int, from: UInt64, to: UInt64, shift: Int64)],
        relocations: inout [(section: SectionID, offset: UInt64, type: UInt32, target: Target)]
    ) throws(PatchCoreError) {
        let file = patched.file
        guard let frameIndex = file.sections.firstIndex(where: { $0.name == ".eh_frame" }) else { return }
        let frameSection = file.sections[frameIndex]
        let data = file.data(frameSection)
        let frameRelocations =
            file.relocationSections.first { $0.target == frameIndex && $0.symbolTable == file.symbolTableIndex }?
            .relocations.sorted { $0.offset < $1.offset } ?? []
        func resolve(_ r: Relocation) -> Target {
            ObjectIndex.resolve(
                r, in: frameIndex, file: file, rules: patched.rules, bySection: patched.elementsBySection,
                elements: patched.elements, bySymbol: patched.elementBySymbol)
        }
        func fail(_ why: String) -> PatchCoreError {
            PatchCoreError(.unsupportedInput, "\(file.path): .eh_frame: \(why)")
        }

        // The records: (start, total length, CIE start for an FDE).
        var records: [(start: Int, length: Int, cie: Int?)] = []
        var at = 0
        while at + 4 <= data.count {
            let length = Int(data.u32(at: at))
            if length == 0 { break }
            guard length != 0xffff_ffff else { throw fail("64-bit record at offset \(at) is not supported") }
            guard at + 4 + length <= data.count, length >= 4 else {
                throw fail("record at offset \(at) runs past the section")
            }
            let id = Int(data.u32(at: at + 4))
            if id == 0 {
                records.append((at, 4 + length, nil))
            } else {
                let cie = at + 4 - id
                guard cie >= 0, records.contains(where: { $0.start == cie && $0.cie == nil }) else {
                    throw fail("FDE at offset \(at) names no CIE")
                }
                records.append((at, 4 + length, cie))
            }
            at += 4 + length
        }
        func relocationsIn(_ start: Int, _ length: Int) -> [Relocation] {
            frameRelocations.filter { $0.offset >= UInt64(start) && $0.offset < UInt64(start + length) }
        }

        // FDEs whose code (pc_begin, 8 bytes into the record) is an included element.
        var kept: [(start: Int, length: Int, cie: Int)] = []
        for r in records {
            guard let cie = r.cie else { continue }
            guard let begin = relocationsIn(r.start, r.length).first(where: { $0.offset == UInt64(r.start + 8) }) else {
                continue
            }
            if case .element(let e, _) = resolve(begin), elementSymbols[e] != nil, patched.elements[e].kind == .function
            {
                kept.append((r.start, r.length, cie))
            }
        }
        guard !kept.isEmpty else { return }

        // Copies of what the tables point to, made on first use.
        var carriedSections: [Int: SymbolID] = [:]
        func carried(_ target: Target) -> Target {
            switch target {
            case .anonymous(let section, _) where file.sections[section].name.hasPrefix(".gcc_except_table"):
                if sectionSymbols[section] == nil {
                    let s = file.sections[section]
                    let id = out.add(
                        ObjectSection(
                            name: s.name, type: s.type, flags: s.flags & ~SectionFlags.group,
                            alignment: max(s.alignment, 1), entrySize: s.entrySize, content: .bytes(file.data(s))))
                    sectionSymbols[section] = out.add(
                        ObjectSymbol(
                            name: "", type: SymbolType.section, binding: SymbolBinding.local,
                            place: .section(id)))
                    pendingRelocations.append((id, section, 0, s.size, 0))
                    carriedSections[section] = sectionSymbols[section]
                }
            case .element(let e, _) where elementSymbols[e] == nil && patched.elements[e].name.hasPrefix("DW.ref."):
                let element = patched.elements[e]
                let s = file.sections[element.section]
                let id = out.add(
                    ObjectSection(
                        name: ".data.rel.local.\(element.name)", type: s.type, flags: s.flags & ~SectionFlags.group,
                        alignment: max(s.alignment, 1), entrySize: 0,
                        content: .bytes(file.data(s).slice(Int(element.start)..<Int(element.end)))))
                // Local: every patched file carries its own word.
                elementSymbols[e] = out.add(
                    ObjectSymbol(
                        name: element.name, value: 0, size: element.size, type: SymbolType.object,
                        binding: SymbolBinding.local, place: .section(id)))
                pendingRelocations.append((id, element.section, element.start, element.end, -Int64(element.start)))
            default:
                break
            }
            return target
        }

        // The new .eh_frame: each CIE used, then its FDEs with their CIE
        // pointers rewritten; a zero word ends it.
        var bytes: [UInt8] = []
        var entries: [(offset: UInt64, type: UInt32, target: Target)] = []
        var cieAt: [Int: Int] = [:]
        func copy(_ start: Int, _ length: Int) throws(PatchCoreError) -> Int {
            let to = bytes.count
            bytes += data.slice(start..<start + length).array
            for r in relocationsIn(start, length) {
                entries.append((UInt64(to + Int(r.offset) - start), r.type, carried(resolve(r))))
            }
            return to
        }
        for f in kept {
            if cieAt[f.cie] == nil {
                guard let cie = records.first(where: { $0.start == f.cie }) else {
                    throw fail("no CIE at offset \(f.cie)")
                }
                cieAt[f.cie] = try copy(cie.start, cie.length)
            }
            let to = try copy(f.start, f.length)
            let pointer = UInt32(to + 4 - cieAt[f.cie]!)
            withUnsafeBytes(of: pointer.littleEndian) { bytes.replaceSubrange(to + 4..<to + 8, with: $0) }
        }
        bytes += [0, 0, 0, 0]
        let id = out.add(
            ObjectSection(
                name: ".eh_frame", type: frameSection.type, flags: SectionFlags.alloc,
                alignment: max(frameSection.alignment, 8), entrySize: 0, content: .bytes(ELFBytes(bytes))))
        relocations += entries.map { (id, $0.offset, $0.type, $0.target) }
        // Type tables of the carried LSDAs name their types through DW.ref words too.
        for (section, _) in carriedSections {
            for r in patched.relocations(in: section, from: 0, to: file.sections[section].size) {
                _ = carried(r.target)
            }
        }
    }
}
