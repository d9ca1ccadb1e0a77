// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// `EXPORT_SYMBOL*` lines that a diff adds. A live patch cannot add an
/// export to the running kernel or module (its symbol table and CRCs are
/// fixed at build time), so the export is dropped with a warning and the
/// rest of the change is built. 6.1 puts each export in a section of its
/// own, `___ksymtab+NAME` or `___ksymtab_gpl+NAME`; 6.5 and later in a
/// record of `.export_symbol`, which modpost reads (never copied into a
/// patch: the patch module would export the kernel's symbols again).
public enum NewExports {
    public struct Export: Sendable, Equatable {
        public let name: String
        public let gpl: Bool

        public var macro: String { gpl ? "EXPORT_SYMBOL_GPL" : "EXPORT_SYMBOL" }
    }

    static let prefixes: [(prefix: String, gpl: Bool)] = [("___ksymtab_gpl+", true), ("___ksymtab+", false)]

    static func exports(of file: ELFFile) -> [Export] {
        var result: [Export] = []
        for s in file.sections {
            for (prefix, gpl) in prefixes where s.name.hasPrefix(prefix) {
                result.append(Export(name: String(s.name.dropFirst(prefix.count)), gpl: gpl))
                break
            }
        }
        // 6.5 and later: one record per export in `.export_symbol`, labelled
        // `__export_symbol_NAME`, starting with its license ("GPL" or "").
        if let table = file.sections.first(where: { $0.name == ".export_symbol" }) {
            let data = file.data(table)
            for symbol in file.symbols
            where symbol.sectionIndex == UInt32(table.index) && symbol.name.hasPrefix(exportLabel) {
                let at = Int(symbol.value)
                let gpl =
                    at + 3 <= data.count && data[at] == 0x47 && data[at + 1] == 0x50
                    && data[at + 2] == 0x4C
                result.append(Export(name: String(symbol.name.dropFirst(exportLabel.count)), gpl: gpl))
            }
        }
        return result
    }

    static let exportLabel = "__export_symbol_"

    /// Exports the patched object has and the original has not.
    public static func added(original: ELFFile, patched: ELFFile) -> [Export] {
        let before = Set(exports(of: original).map(\.name))
        return exports(of: patched).filter { !before.contains($0.name) }
    }

    /// The warning for one dropped export.
    public static func warning(_ export: Export, object: String) -> String {
        "\(object): \(export.macro)(\(export.name)) dropped: a live patch cannot add an export to the running kernel; modules loaded later still cannot use \(export.name)"
    }
}
