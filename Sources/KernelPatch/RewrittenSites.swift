// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// A place in a function's code that the kernel rewrites itself, at boot or
/// at run time, so that the shipped or running bytes there may differ from
/// the compiled ones. The run-pre check masks these.
public struct RewrittenSite: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// The `call __fentry__` at the entry; ftrace makes it a NOP at boot
        /// and a call again when the function is traced or livepatched.
        case ftrace
        /// `.altinstructions`: `apply_alternatives`.
        case alternative
        /// `__jump_table`: a static branch (`arch_jump_label_transform`).
        case jumpLabel
        /// `.static_call_sites`: `__static_call_update` on call sites.
        case staticCall
        /// `.return_sites`: `jmp __x86_return_thunk` (`apply_returns`).
        case returnThunk
        /// `.retpoline_sites`: calls to `__x86_indirect_thunk_*` (`apply_retpolines`).
        case retpoline
        /// `.parainstructions`: `apply_paravirt`.
        case paravirt
        /// `.smp_locks`: `lock` prefixes (`alternatives_smp_unlock` on one CPU).
        case lockPrefix
        /// `.ibt_endbr_seal`: unused ENDBR64 sealed (`apply_seal_endbr`).
        case endbrSeal
        /// `.call_sites`: call depth accounting (`apply_call_depth_tracking`).
        case callDepth
    }

    public let kind: Kind
    /// Offset in its section of the original object.
    public let offset: UInt64
    public let length: Int
}

/// The tables the kernel walks to rewrite its own code, one entry per
/// class of site: which section, which field of an entry points at the
/// site, and how long the rewritten instruction is. Sites are found from
/// the relocations of these sections in the object itself (the entries
/// that become the target's tables when it is linked), never by looking
/// for byte patterns.
struct SiteTable: Sendable {
    enum Length: Sendable {
        case fixed(Int)
        /// A byte of the entry holds it (`alt_instr.instrlen`,
        /// `paravirt_patch_site.len`), counted from the entry's end or start.
        case entryByte(fromEnd: Int)
        case entryByteAt(Int)
        /// Decoded from the instruction, as the kernel does
        /// (`arch_jump_entry_size`): `jmp rel8`/2-byte NOP or `jmp rel32`/NOP5.
        case shortOrNear
        /// A `jmp`/`call` rel32 (5 bytes) or `jcc` rel32 (6 bytes).
        case branch
    }

    let section: String
    let kind: RewrittenSite.Kind
    /// Bytes per entry when the probe of this kernel's headers gives none.
    let defaultEntrySize: Int
    let length: Length

    /// x86-64, kernels 5.10 to 6.x.
    static let x86_64: [SiteTable] = [
        SiteTable(section: "__mcount_loc", kind: .ftrace, defaultEntrySize: 8, length: .fixed(5)),
        SiteTable(section: "__patchable_function_entries", kind: .ftrace, defaultEntrySize: 8, length: .fixed(5)),
        SiteTable(
            section: ".altinstructions", kind: .alternative, defaultEntrySize: 12, length: .entryByte(fromEnd: 2)),
        SiteTable(section: "__jump_table", kind: .jumpLabel, defaultEntrySize: 16, length: .shortOrNear),
        SiteTable(section: ".static_call_sites", kind: .staticCall, defaultEntrySize: 8, length: .fixed(5)),
        SiteTable(section: ".return_sites", kind: .returnThunk, defaultEntrySize: 4, length: .branch),
        SiteTable(section: ".retpoline_sites", kind: .retpoline, defaultEntrySize: 4, length: .branch),
        SiteTable(section: ".parainstructions", kind: .paravirt, defaultEntrySize: 16, length: .entryByteAt(9)),
        SiteTable(section: ".smp_locks", kind: .lockPrefix, defaultEntrySize: 4, length: .fixed(1)),
        SiteTable(section: ".ibt_endbr_seal", kind: .endbrSeal, defaultEntrySize: 4, length: .fixed(4)),
        SiteTable(section: ".call_sites", kind: .callDepth, defaultEntrySize: 4, length: .fixed(5)),
    ]
}

/// Every rewritten site of an object, by the section of code it lies in.
public struct RewrittenSites: Sendable {
    public let bySection: [Int: [RewrittenSite]]

    /// Reads the object's site tables; `entrySizes` are this kernel's entry
    /// sizes (`SpecialSectionProbe`), which win over the defaults.
    public init(_ file: ELFFile, entrySizes: [String: Int] = [:]) {
        var sites: [Int: [RewrittenSite]] = [:]
        for table in SiteTable.x86_64 {
            guard let section = file.section(named: table.section), let rs = file.relocations(for: section.index)
            else { continue }
            let entrySize = entrySizes[table.section] ?? table.defaultEntrySize
            let data = file.data(section)
            let symbols = file.symbolTable(for: rs)
            for r in rs.relocations where entrySize > 0 && r.offset % UInt64(entrySize) == 0 {
                guard Int(r.symbol) < symbols.count, let code = symbols[Int(r.symbol)].definingSection,
                    code < file.sections.count, file.sections[code].isExecutable
                else { continue }
                let at = Int64(bitPattern: symbols[Int(r.symbol)].value) &+ r.addend
                guard at >= 0 else { continue }
                let codeData = file.data(file.sections[code])
                let length: Int
                switch table.length {
                case .fixed(let n): length = n
                case .entryByte(let back):
                    let i = Int(r.offset) + entrySize - back
                    length = i < data.count ? Int(data[i]) : 0
                case .entryByteAt(let k):
                    let i = Int(r.offset) + k
                    length = i < data.count ? Int(data[i]) : 0
                case .shortOrNear:
                    let i = Int(at)
                    let first = i < codeData.count ? codeData[i] : 0
                    let short = first == 0xeb || (first == 0x66 && i + 1 < codeData.count && codeData[i + 1] == 0x90)
                    length = short ? 2 : 5
                case .branch:
                    length = Int(at) < codeData.count && codeData[Int(at)] == 0x0f ? 6 : 5
                }
                guard length > 0 else { continue }
                sites[code, default: []].append(RewrittenSite(kind: table.kind, offset: UInt64(at), length: length))
            }
        }
        // Without a table, the object's own calls to __fentry__ at entries.
        if sites.values.allSatisfy({ !$0.contains { $0.kind == .ftrace } }) {
            for rs in file.relocationSections where rs.target > 0 && rs.target < file.sections.count {
                guard file.sections[rs.target].isExecutable else { continue }
                let symbols = file.symbolTable(for: rs)
                for r in rs.relocations where r.offset >= 1 && Int(r.symbol) < symbols.count {
                    guard symbols[Int(r.symbol)].name == "__fentry__" else { continue }
                    sites[rs.target, default: []].append(RewrittenSite(kind: .ftrace, offset: r.offset - 1, length: 5))
                }
            }
        }
        bySection = sites.mapValues { $0.sorted { $0.offset < $1.offset } }
    }

    /// The sites within `[start, end)` of a section.
    public func sites(in section: Int, from start: UInt64, to end: UInt64) -> [RewrittenSite] {
        (bySection[section] ?? []).filter { $0.offset >= start && $0.offset < end }
    }
}

/// The rewritten sites the kernel image lists in its own tables, for
/// vmlinux: kernels that run objtool on `vmlinux.o` only (return thunks,
/// call depth, IBT sealing on 6.2 and later) have these tables nowhere
/// else. The image keeps them as sections, with PC-relative (`s32`)
/// entries, or absolute ones for `.parainstructions`.
struct ImageSites: Sendable {
    /// Sorted by address (image addresses, before any KASLR slide).
    let sites: [(address: UInt64, kind: RewrittenSite.Kind, length: Int)]

    /// `extra`: sites found elsewhere (the static call sites, which the
    /// image keeps inside its init data; see `ShippedCode`).
    init(_ file: ELFFile, entrySizes: [String: Int], extra: [(UInt64, RewrittenSite.Kind, Int)] = []) {
        var sites: [(UInt64, RewrittenSite.Kind, Int)] = extra
        func s32(_ data: ELFBytes, _ at: Int) -> Int64 { Int64(Int32(bitPattern: data.u32(at: at))) }
        let text = file.section(named: ".text")
        func firstByte(_ address: UInt64) -> UInt8? {
            guard let text, address >= text.address, address < text.address + text.size else { return nil }
            return file.data(text)[Int(address - text.address)]
        }
        for table in SiteTable.x86_64 {
            // Absolute entries of these tables are not kept as sections.
            guard table.kind != .ftrace, let section = file.section(named: table.section),
                section.type == SectionType.progbits
            else { continue }
            let data = file.data(section)
            let size = entrySizes[table.section] ?? table.defaultEntrySize
            guard size > 0 else { continue }
            var at = 0
            while at + size <= data.count {
                let entry = section.address &+ UInt64(at)
                let address: UInt64
                if table.section == ".parainstructions" {
                    address = data.u64(at: at)
                } else {
                    address = UInt64(bitPattern: Int64(bitPattern: entry) &+ s32(data, at))
                }
                var length = 0
                switch table.length {
                case .fixed(let n): length = n
                case .entryByte(let back): length = Int(data[at + size - back])
                case .entryByteAt(let k): length = Int(data[at + k])
                case .shortOrNear:
                    let b = firstByte(address)
                    length = b == 0xeb || b == 0x66 ? 2 : 5
                case .branch: length = firstByte(address) == 0x0f ? 6 : 5
                }
                if length > 0 { sites.append((address, table.kind, length)) }
                at += size
            }
        }
        self.sites = sites.sorted { $0.0 < $1.0 }
    }

    /// The sites within `[start, start + size)`, at offsets from `start`.
    func sites(at start: UInt64, size: Int) -> [RewrittenSite] {
        var lo = 0
        var hi = sites.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sites[mid].address < start { lo = mid + 1 } else { hi = mid }
        }
        var result: [RewrittenSite] = []
        while lo < sites.count && sites[lo].address < start + UInt64(size) {
            let s = sites[lo]
            result.append(RewrittenSite(kind: s.kind, offset: s.address - start, length: s.length))
            lo += 1
        }
        return result
    }
}
