// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// Consistency checks on an object before it is indexed for the diff.
///
/// The ELF reader checks the file's structure: headers, tables and section
/// ranges inside the file. An object can pass that and still contradict
/// itself, such as a function whose value lies past its section's end, or
/// a relocation at an offset the section does not have. The diff computes
/// with these values (element sizes, byte ranges, branch targets), so each
/// is checked once here and the object refused with the symbol or
/// relocation named, rather than trapping on overflow later.
enum ObjectChecks {
    /// The largest `SHT_NOBITS` section the diff materialises as zeros.
    static let nobitsLimit: UInt64 = 256 << 20

    /// Throws unless every function or data symbol lies inside its section
    /// and every relocation inside the section it applies to.
    static func requireConsistent(_ file: ELFFile) throws(PatchCoreError) {
        func refuse(_ what: String) -> PatchCoreError {
            PatchCoreError(.unsupportedInput, "\(file.path): inconsistent object: \(what)")
        }
        for symbol in file.symbols.dropFirst() {
            guard let index = symbol.definingSection, index < file.sections.count else { continue }
            let section = file.sections[index]
            let name = symbol.name.isEmpty ? "symbol \(symbol.index)" : "symbol \(symbol.name) (index \(symbol.index))"
            // The bytes the section really has: none when its type says it
            // has no file data (a mangled sh_type), zeros for SHT_NOBITS.
            let size = section.type == SectionType.nobits ? section.size : UInt64(file.data(section).count)
            // Elements without a size reach to the section's end: its
            // header must not claim more bytes than the file gives it.
            guard size == section.size else {
                throw refuse(
                    "section \(section.name) [\(index)] of \(name) has 0x\(hex(size)) bytes in the file but claims 0x\(hex(section.size)) (sh_type \(section.type))"
                )
            }
            let (end, overflow) = symbol.value.addingReportingOverflow(symbol.size)
            if overflow || symbol.value > size || end > size {
                throw refuse(
                    "\(name) at 0x\(hex(symbol.value)) size 0x\(hex(symbol.size)) lies past the end of section \(section.name) [\(index)] (0x\(hex(size)) bytes)"
                )
            }
            if section.type == SectionType.nobits && section.size > nobitsLimit {
                throw refuse(
                    "\(name) is in \(section.name) [\(index)], an SHT_NOBITS section of 0x\(hex(section.size)) bytes, more than the \(nobitsLimit >> 20) MiB the diff handles"
                )
            }
        }
        for section in file.sections.dropFirst() where section.type == SectionType.null && section.size != 0 {
            throw refuse(
                "section \(section.name) [\(section.index)] has type SHT_NULL but a size of 0x\(hex(section.size))")
        }
        for rs in file.relocationSections where rs.target > 0 {
            guard rs.target < file.sections.count else {
                throw refuse("relocation section [\(rs.section)] applies to section \(rs.target), which does not exist")
            }
            let target = file.sections[rs.target]
            if target.type == SectionType.nobits && !rs.relocations.isEmpty {
                throw refuse(
                    "relocation section [\(rs.section)] applies to \(target.name) [\(rs.target)], which has no bytes (SHT_NOBITS)"
                )
            }
            for (i, r) in rs.relocations.enumerated() where r.offset >= target.size {
                throw refuse(
                    "relocation \(i) of section [\(rs.section)] is at offset 0x\(hex(r.offset)), past the end of \(target.name) [\(rs.target)] (size 0x\(hex(target.size)))"
                )
            }
        }
    }

    private static func hex(_ value: UInt64) -> String { String(value, radix: 16) }
}
