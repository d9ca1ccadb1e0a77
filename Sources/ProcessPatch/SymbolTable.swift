// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// The symbols of one object by name, as link-time values (add the load
/// bias for run-time addresses): globals, static symbols grouped by the
/// source file that defines them (`STT_FILE`), and dynamic symbols with
/// their default version.
public struct SymbolTable: Sendable {
    public struct Entry: Sendable, Equatable {
        public let value: UInt64
        public let size: UInt64
        public let type: UInt8
    }

    public private(set) var globals: [String: Entry] = [:]
    /// File name (as `STT_FILE` spells it) → static symbols of that file.
    public private(set) var locals: [String: [String: Entry]] = [:]
    public private(set) var dynamic: [String: Entry] = [:]
    /// Symbols the object imports, by name: the link-time address of the GOT
    /// slot the dynamic linker fills for it (`R_X86_64_JUMP_SLOT`,
    /// `R_X86_64_GLOB_DAT`).
    public private(set) var imports: [String: UInt64] = [:]
    /// Symbols the object defines and still reaches through a GOT slot the
    /// dynamic linker fills (a shared library's exported functions and
    /// data): the slot's link-time address. The slot holds the definition
    /// the process really uses, which may be another object's (the
    /// program's copy of a variable, an interposed function).
    public private(set) var definedSlots: [String: UInt64] = [:]
    /// Start addresses of every defined function or object symbol, sorted,
    /// with names: for symbolizing addresses and finding neighbours.
    public private(set) var sorted: [(value: UInt64, size: UInt64, name: String)] = []
    public let hasSymbolTable: Bool

    /// `debug`: a separate debug file of the same build (as `objcopy
    /// --only-keep-debug` makes it, or a Debian `-dbgsym` package installs
    /// it) whose symbol table stands in for the one `file` was stripped of.
    public init(_ file: ELFFile, debug: ELFFile? = nil) {
        let symbolFile = debug ?? file
        hasSymbolTable = symbolFile.symbolTableIndex != nil
        var currentFile = ""
        var all: [(UInt64, UInt64, String)] = []
        for s in symbolFile.symbols.dropFirst() {
            if s.type == SymbolType.file {
                currentFile = s.name
                continue
            }
            guard s.definingSection != nil || s.rawSectionIndex == SpecialSection.absolute, !s.name.isEmpty,
                s.type != SymbolType.section, s.type != SymbolType.tls
            else { continue }
            let entry = Entry(value: s.value, size: s.size, type: s.type)
            if s.isLocal {
                locals[currentFile, default: [:]][s.name] = entry
            } else if let existing = globals[s.name], existing.type != 0, s.binding == SymbolBinding.weak {
                continue
            } else {
                globals[s.name] = entry
            }
            if s.type == SymbolType.function || s.type == SymbolType.object || s.type == SymbolType.gnuIfunc {
                all.append((s.value, s.size, s.name))
            }
        }
        // Dynamic symbols: the default version wins (`.gnu.version` bit 15
        // marks hidden, non-default versions).
        var versions: [UInt16] = []
        if let v = file.sections.first(where: { $0.type == SectionType.gnuVersym }) {
            let data = file.data(v)
            let raw = data.array
            versions = (0..<raw.count / 2).map { UInt16(raw[$0 * 2]) | UInt16(raw[$0 * 2 + 1]) << 8 }
        }
        for (i, s) in file.dynamicSymbols.enumerated() where i > 0 {
            guard s.definingSection != nil, !s.name.isEmpty, s.type != SymbolType.tls else { continue }
            let hidden = i < versions.count && versions[i] & 0x8000 != 0
            if hidden && dynamic[s.name] != nil { continue }
            dynamic[s.name] = Entry(value: s.value, size: s.size, type: s.type)
            if !hasSymbolTable && (s.type == SymbolType.function || s.type == SymbolType.object) {
                all.append((s.value, s.size, s.name))
            }
        }
        sorted = all.sorted { $0.0 < $1.0 }.map { (value: $0.0, size: $0.1, name: $0.2) }
        for rs in file.relocationSections where rs.symbolTable != 0 && rs.symbolTable == file.dynamicSymbolTableIndex {
            for r in rs.relocations
            where (r.type == 6 || r.type == 7) && r.symbol != 0 && Int(r.symbol) < file.dynamicSymbols.count {
                let symbol = file.dynamicSymbols[Int(r.symbol)]
                if symbol.isUndefined && imports[symbol.name] == nil { imports[symbol.name] = r.offset }
                if !symbol.isUndefined && definedSlots[symbol.name] == nil { definedSlots[symbol.name] = r.offset }
            }
        }
    }

    /// A static symbol of `file`. `file` matches the `STT_FILE` name exactly,
    /// or by its last path component.
    public func local(_ name: String, file: String) -> Entry? {
        if let e = locals[file]?[name] { return e }
        let base = Path.base(of: file)
        let matches = locals.filter { Path.base(of: $0.key) == base }.compactMap { $0.value[name] }
        return matches.count == 1 ? matches[0] : nil
    }

    /// A defined global or dynamic symbol.
    public func defined(_ name: String) -> Entry? {
        globals[name] ?? dynamic[name]
    }

    /// The first symbol that starts after `value`.
    public func next(after value: UInt64) -> UInt64? {
        var lo = 0
        var hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid].value <= value { lo = mid + 1 } else { hi = mid }
        }
        return lo < sorted.count ? sorted[lo].value : nil
    }

    /// `name+0xoffset` for a link-time value inside a symbol.
    public func symbolize(_ value: UInt64) -> String? {
        var lo = 0
        var hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid].value <= value { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let s = sorted[lo - 1]
        guard value < s.value + max(s.size, 1) else { return nil }
        return value == s.value ? s.name : "\(s.name)+0x\(hex(value - s.value))"
    }
}
