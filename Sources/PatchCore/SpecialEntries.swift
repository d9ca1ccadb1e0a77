// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// The entries of one special section, each tied to the element its owner
/// relocation points into.
struct SpecialTable {
    struct Entry {
        let start: UInt64
        let end: UInt64
        /// The function (element) the entry belongs to, if it points into one.
        let owner: Int?
    }

    let rule: SpecialSectionRule
    let section: Int
    let entries: [Entry]
    /// For a rule with a parallel section: that section's index.
    let parallelSection: Int?
}

extension ObjectIndex {
    /// Splits every special section of the object into entries.
    /// A section whose size is not a whole number of entries is an error.
    func specialTables() throws(PatchCoreError) -> [SpecialTable] {
        var tables: [SpecialTable] = []
        for section in file.sections.dropFirst() {
            guard let rule = rules.special(section.name), rule.policy == .keepEntriesOfIncludedFunctions else {
                continue
            }
            guard rule.entrySize > 0, section.size % UInt64(rule.entrySize) == 0 else {
                throw PatchCoreError(
                    .unsupportedInput,
                    "\(file.path): section \(section.name) is \(section.size) bytes, not a whole number of \(rule.entrySize)-byte entries; the entry layout of this kernel differs from the rules"
                )
            }
            let count = Int(section.size) / rule.entrySize
            let relocations = relocationsBySection[section.index] ?? []
            var owners: [UInt64: Int] = [:]
            for r in relocations {
                if case .element(let e, _) = r.target { owners[r.offset] = e }
            }
            var entries: [SpecialTable.Entry] = []
            entries.reserveCapacity(count)
            for i in 0..<count {
                let start = UInt64(i * rule.entrySize)
                entries.append(
                    .init(
                        start: start, end: start + UInt64(rule.entrySize),
                        owner: owners[start + UInt64(rule.ownerOffset)]))
            }
            var parallel: Int?
            if let p = rule.parallel, let ps = file.section(named: p.name) {
                guard ps.size == UInt64(count * p.entrySize) else {
                    throw PatchCoreError(
                        .unsupportedInput,
                        "\(file.path): \(p.name) has \(ps.size) bytes, but \(section.name) has \(count) entries of \(p.entrySize) bytes each"
                    )
                }
                parallel = ps.index
            }
            tables.append(SpecialTable(rule: rule, section: section.index, entries: entries, parallelSection: parallel))
        }
        return tables
    }
}
