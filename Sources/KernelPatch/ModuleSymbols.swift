// SPDX-License-Identifier: GPL-2.0-only
import ELF
import TargetKernel

/// The symbols a loaded module shows in kallsyms, read from its file of the
/// target release (`.ko`, `.ko.xz`, `.ko.zst`), in the kernel's order: the
/// module's symbol table order, keeping what `is_core_symbol` keeps (named,
/// defined, in allocated sections that are not `.init*`). The livepatch core
/// counts a module symbol's position (sympos) in exactly this order.
public struct ModuleSymbols: Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let isLocal: Bool
        /// The source file (`STT_FILE`) the symbol follows, for locals.
        public let file: String?
    }

    public let module: String
    public let path: String
    public let entries: [Entry]
    private let byName: [String: [Int]]

    public init(module: String, path: String) throws(BuildError) {
        let file: ELFFile
        do { file = try ELFFile.open(path) } catch {
            throw BuildError(.io, "reading the module \(module): \(error.description)", cause: error)
        }
        var entries: [Entry] = []
        var byName: [String: [Int]] = [:]
        var currentFile: String?
        for symbol in file.symbols.dropFirst() {
            if symbol.type == SymbolType.file {
                currentFile = symbol.name
                continue
            }
            guard !symbol.name.isEmpty, let index = symbol.definingSection, index < file.sections.count else {
                continue
            }
            let section = file.sections[index]
            guard section.isAllocated, !section.name.hasPrefix(".init") else { continue }
            byName[symbol.name, default: []].append(entries.count)
            entries.append(Entry(name: symbol.name, isLocal: symbol.isLocal, file: symbol.isLocal ? currentFile : nil))
        }
        self.module = module
        self.path = path
        self.entries = entries
        self.byName = byName
    }

    public func defines(_ name: String) -> Bool { byName[name] != nil }

    /// The position of `name`: 0 when unique in the module, else its
    /// 1-based place among the module's symbols of that name, told apart by
    /// the source file it follows.
    public func position(of name: String, local: Bool, sourceFile: String?, user: String) throws(BuildError) -> Int {
        guard let all = byName[name], !all.isEmpty else {
            throw BuildError(
                .unresolvedSymbol, "\(user) refers to \(name), which the module \(module) (\(path)) does not define")
        }
        if all.count == 1 { return 0 }
        var candidates = all.filter { entries[$0].isLocal == local }
        if candidates.count > 1, let sourceFile {
            let base = sourceFile.split(separator: "/").last.map(String.init) ?? sourceFile
            candidates = candidates.filter {
                entries[$0].file.map { $0 == sourceFile || $0.hasSuffix("/" + base) || $0 == base } ?? false
            }
        }
        if candidates.count == 1 { return all.firstIndex(of: candidates[0])! + 1 }
        throw BuildError(
            .ambiguousSymbol,
            "\(user) refers to \(name), which the module \(module) has \(all.count) times: "
                + all.map { "position \(all.firstIndex(of: $0)! + 1) after file \(entries[$0].file ?? "?")" }.joined(
                    separator: "; "))
    }
}
