// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform

extension ModuleSymbols {
    /// The position of `name`, as `position(of:local:sourceFile:user:)`
    /// finds it, and where the module has several symbols of that name that
    /// file order cannot tell apart (Debian's `.ko` files carry no
    /// `STT_FILE`), through a witness: a uniquely named function or datum of
    /// the original object that refers to the wanted one. The shipped module
    /// is relocatable, and the witness's code in it is the original
    /// object's, so the witness's relocation (or, for a branch the
    /// assembler resolved, its displacement) at the same place names the
    /// exact symbol-table entry. The same kind of witness the kernel image
    /// gives for vmlinux (`RunningImage.locate`).
    public func position(
        of name: String, local: Bool, sourceFile: String?, original: ObjectIndex?,
        user: String
    ) throws(BuildError) -> Int {
        do throws(BuildError) {
            return try position(of: name, local: local, sourceFile: sourceFile, user: user)
        } catch  where error.kind == .ambiguousSymbol {
            guard let original, let all = byName[name],
                let hit = witnessedEntry(of: name, among: all, original: original)
            else {
                throw BuildError(
                    .ambiguousSymbol,
                    error.message
                        + ". No uniquely named function of \(Path.base(of: path)) that the original object shows referring to it tells them apart"
                )
            }
            return all.firstIndex(of: hit)! + 1
        }
    }

    /// The entry (index into `entries`) among `candidates` that the
    /// module's own relocations show the original's `name` to be.
    func witnessedEntry(of name: String, among candidates: [Int], original: ObjectIndex) -> Int? {
        guard let target = original.elements.first(where: { $0.name == name }),
            let file = try? ELFFile.open(path)
        else { return nil }
        // Where each candidate sits in the module file: (section, value).
        var candidateAt: [Place: Int] = [:]
        var candidateSymbols: [Int: Int] = [:]
        for c in candidates {
            let s = file.symbols[entries[c].symbol]
            guard let section = s.definingSection else { continue }
            candidateAt[Place(section: section, offset: s.value)] = c
            candidateSymbols[s.index] = c
        }
        // Defined symbols of the module by name, to find unique witnesses.
        var definedCount: [String: Int] = [:]
        var definedSymbol: [String: Symbol] = [:]
        for s in file.symbols.dropFirst() where !s.name.isEmpty && s.definingSection != nil && !s.isSection {
            definedCount[s.name, default: 0] += 1
            definedSymbol[s.name] = s
        }
        let relocationsOf = Dictionary(
            file.relocationSections.filter { $0.target > 0 }.map { ($0.target, $0) },
            uniquingKeysWith: { a, _ in a })
        let arch = original.rules.architecture
        var votes = Set<Int>()
        for witness in original.elements where witness.index != target.index && definedCount[witness.name] == 1 {
            guard let w = definedSymbol[witness.name], let section = w.definingSection, section < file.sections.count
            else { continue }
            for r in original.relocations(in: witness.section, from: witness.start, to: witness.end) {
                guard case .element(let t, let addend) = r.target, t == target.index,
                    let kind = arch.kind(r.type)
                else { continue }
                let place = w.value + (r.offset - witness.start)
                if let rs = relocationsOf[section], let kr = rs.relocations.first(where: { $0.offset == place }) {
                    guard Int(kr.symbol) < file.symbols.count else { continue }
                    let s = file.symbols[Int(kr.symbol)]
                    if let c = candidateSymbols[s.index] {
                        votes.insert(c)
                    } else if let defining = s.definingSection {
                        let start = Int64(bitPattern: s.value) &+ kr.addend &- addend
                        if start >= 0, let c = candidateAt[Place(section: defining, offset: UInt64(start))] {
                            votes.insert(c)
                        }
                    }
                } else if kind.pcRelative && kind.size == 4 {
                    // Resolved by the assembler: a branch within one section.
                    let data = file.data(file.sections[section])
                    guard Int(place) + 4 <= data.count else { continue }
                    var raw: UInt32 = 0
                    for k in 0..<4 { raw |= UInt32(data[Int(place) + k]) << (8 * UInt32(k)) }
                    let start = Int64(Int32(bitPattern: raw)) &+ Int64(place) &- addend
                    if start >= 0, let c = candidateAt[Place(section: section, offset: UInt64(start))] {
                        votes.insert(c)
                    }
                }
            }
            if votes.count > 1 { return nil }
        }
        return votes.count == 1 ? votes.first : nil
    }

    struct Place: Hashable {
        let section: Int
        let offset: UInt64
    }
}
