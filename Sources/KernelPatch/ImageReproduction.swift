// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import TargetKernel

/// Whether an object compiled from the prepared tree reproduces the
/// shipped kernel: each of its functions, byte for byte, against the same
/// function in the target's image, except the bytes its relocations fill
/// in (the linker writes those; the object holds addends there).
///
/// This is the check behind "compiled exactly as the distro compiled it":
/// another compiler version, other flags or another config make code that
/// differs, and it shows here.
public struct ImageReproduction: Sendable {
    /// One function's comparison.
    public struct Function: Sendable, Equatable {
        public let name: String
        public let size: Int
        /// Bytes filled in by relocations, not compared.
        public let relocatedBytes: Int
        /// Bytes of jump-label sites, not compared: objtool turns their
        /// jumps into NOPs in vmlinux.o, after the object was compiled.
        public let jumpLabelBytes: Int
        /// Bytes that differ elsewhere; 0 when reproduced.
        public let differingBytes: Int
        /// The first differing offset, if any.
        public let firstDifference: Int?

        public var identical: Bool { differingBytes == 0 }

        public var json: JSON {
            .object([
                ("name", .string(name)), ("size", .int(Int64(size))),
                ("relocatedBytes", .int(Int64(relocatedBytes))),
                ("jumpLabelBytes", .int(Int64(jumpLabelBytes))),
                ("differingBytes", .int(Int64(differingBytes))),
                ("firstDifference", firstDifference.map { .int(Int64($0)) } ?? .null),
                ("identical", .bool(identical)),
            ])
        }
    }

    public let object: String
    public let functions: [Function]
    /// Functions of the object that the image does not name exactly once
    /// (static functions sharing a name, inlined-away ones).
    public let skipped: [String]

    public var identicalCount: Int { functions.filter(\.identical).count }

    public var json: JSON {
        .object([
            ("object", .string(object)),
            ("compared", .int(Int64(functions.count))),
            ("identical", .int(Int64(identicalCount))),
            ("functions", .array(functions.map(\.json))),
            ("skipped", .strings(skipped)),
        ])
    }

    /// Compares every sized function of `file` that `table` names exactly
    /// once with the image's bytes at that address.
    public static func compare(_ file: ELFFile, image: RunningImage, table: KallsymsTable) -> ImageReproduction {
        var functions: [Function] = []
        var skipped: [String] = []
        let sites = jumpLabelSites(file)
        // A weak function may be replaced by another definition in the image.
        for symbol in file.symbols where symbol.isFunction && symbol.size > 0 && symbol.binding != SymbolBinding.weak {
            guard let sectionIndex = symbol.definingSection else { continue }
            let places = table.occurrences(of: symbol.name).filter { table.entries[$0].module == nil }
            guard places.count == 1,
                let shipped = image.read(table.entries[places[0]].address, Int(symbol.size))
            else {
                skipped.append(symbol.name)
                continue
            }
            let data = file.data(file.sections[sectionIndex])
            let start = Int(symbol.value)
            let size = Int(symbol.size)
            guard start + size <= data.count else {
                skipped.append(symbol.name)
                continue
            }
            var masked = [Bool](repeating: false, count: size)
            if let relocations = file.relocations(for: sectionIndex) {
                for relocation in relocations.relocations {
                    let width = file.architecture.kind(relocation.type)?.size ?? 4
                    for i in 0..<max(width, 1) {
                        let at = Int(relocation.offset) + i - start
                        if at >= 0 && at < size { masked[at] = true }
                    }
                }
            }
            var jumpLabel = [Bool](repeating: false, count: size)
            for site in sites[sectionIndex] ?? [] {
                for i in 0..<5 {
                    let at = site + i - start
                    if at >= 0 && at < size && !masked[at] { jumpLabel[at] = true }
                }
            }
            var differing = 0
            var first: Int?
            for i in 0..<size where !masked[i] && !jumpLabel[i] && data[start + i] != shipped[i] {
                differing += 1
                if first == nil { first = i }
            }
            functions.append(
                Function(
                    name: symbol.name, size: size, relocatedBytes: masked.filter { $0 }.count,
                    jumpLabelBytes: jumpLabel.filter { $0 }.count,
                    differingBytes: differing, firstDifference: first))
        }
        return ImageReproduction(object: file.path, functions: functions, skipped: skipped)
    }

    /// Section index → offsets of the jump-label sites in it, from the
    /// code field (offset 0 of each 16-byte entry) of `__jump_table`.
    static func jumpLabelSites(_ file: ELFFile) -> [Int: [Int]] {
        guard let table = file.section(named: "__jump_table"), let rela = file.relocations(for: table.index) else {
            return [:]
        }
        let symbols = file.symbolTable(for: rela)
        var sites: [Int: [Int]] = [:]
        for relocation in rela.relocations where relocation.offset % 16 == 0 {
            guard Int(relocation.symbol) < symbols.count, let section = symbols[Int(relocation.symbol)].definingSection
            else { continue }
            sites[section, default: []].append(Int(Int64(symbols[Int(relocation.symbol)].value) + relocation.addend))
        }
        return sites
    }
}
