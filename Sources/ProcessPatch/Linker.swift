// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// Lays out a patch object in its area and resolves its relocations against
/// the running program: the object's own sections, the target's symbols
/// (static ones by source file), and shared libraries. Calls that cannot
/// reach their target with a 32-bit displacement go through a far-call stub
/// (`jmp *slot(%rip)`), and GOT-relative loads through GOT slots, both in
/// the area.
struct Linker {
    /// Where everything ended up.
    struct Layout {
        var headerSize: UInt64
        var textStart: UInt64  // offsets from the area start
        var textSize: UInt64
        var dataStart: UInt64
        var dataSize: UInt64
        /// The per-thread models' record of held threads (one page) and
        /// their thread table (one byte per possible thread ID), both
        /// written by Suture only and zero until a transition.
        var holdersStart: UInt64
        var tableStart: UInt64
        var tableEntries: UInt64
        var size: UInt64 { tableStart + (tableEntries + Linker.page - 1) / Linker.page * Linker.page }
        /// Section index → offset from the area start.
        var sections: [Int: UInt64]
        var dispatchers: UInt64
        var stubs: [String: UInt64]  // symbol name → stub offset (slot at +8)
        var got: [String: UInt64]  // symbol name → slot offset
        /// Per `.eh_frame` section: its offset and the offset of the
        /// zeroed storage libgcc's `__register_frame_info` keeps its
        /// `struct object` in (data part).
        var unwind: [(frame: UInt64, object: UInt64)] = []
    }

    /// Room for libgcc's `struct object` (7 words in GCC 12; kept generous),
    /// Suture's "registered" mark in the last word.
    static let unwindObjectSize: UInt64 = 256

    static let dispatcherSize: UInt64 = 128
    static let page: UInt64 = 4096

    let patch: PatchFile
    let layout: Layout

    /// Plans the layout; sizes do not depend on where the area goes.
    init(patch: PatchFile, tableEntries: UInt64 = Linker.threadTableEntries()) throws(ProcessError) {
        self.patch = patch
        let object = patch.object
        let functions = UInt64(patch.manifest.functions.count)
        func align(_ v: UInt64, _ a: UInt64) -> UInt64 {
            let a = max(a, 1)
            return (v + a - 1) / a * a
        }
        let headerSize = align(UInt64(PatchArea.fixedHeaderSize) + 2048 + 640 * functions, Linker.page)
        var cursor = headerSize
        let dispatchers = cursor
        cursor += Linker.dispatcherSize * functions
        var sections: [Int: UInt64] = [:]
        let loadable = object.sections.dropFirst().filter { $0.isAllocated && !$0.isRelocationSection }
        for s in loadable where s.has(SectionFlags.tls) {
            throw ProcessError(
                .badPatch, "\(patch.path): section \(s.name) holds thread-local data, which a patch cannot add")
        }
        for s in loadable where s.isExecutable {
            cursor = align(cursor, s.alignment)
            sections[s.index] = cursor
            cursor += s.size
        }
        for s in loadable where !s.isExecutable && !s.has(SectionFlags.write) {
            cursor = align(cursor, s.alignment)
            sections[s.index] = cursor
            cursor += s.size
        }
        // Far-call stubs for calls to symbols outside the patch, GOT slots
        // for GOT-relative loads.
        var stubNames: [String] = []
        var gotNames: [String] = []
        for rs in object.relocationSections where sections[rs.target] != nil {
            let symbols = object.symbolTable(for: rs)
            let data = object.data(object.sections[rs.target]).array
            for r in rs.relocations where Int(r.symbol) < symbols.count {
                let s = symbols[Int(r.symbol)]
                switch r.type {
                case 2, 4:  // PC32, PLT32 at a branch
                    if s.isUndefined && Linker.isBranch(data, at: Int(r.offset)) && !stubNames.contains(s.name) {
                        stubNames.append(s.name)
                    }
                case 9, 41, 42:  // GOTPCREL, GOTPCRELX, REX_GOTPCRELX
                    let key = Linker.gotKey(s, r)
                    if !gotNames.contains(key) { gotNames.append(key) }
                default: break
                }
            }
        }
        var stubs: [String: UInt64] = [:]
        var got: [String: UInt64] = [:]
        cursor = align(cursor, 16)
        for n in stubNames {
            stubs[n] = cursor
            cursor += 16
        }
        for n in gotNames {
            got[n] = cursor
            cursor += 8
        }
        let textSize = align(cursor, Linker.page) - headerSize
        cursor = headerSize + textSize
        let dataStart = cursor
        for s in loadable where s.has(SectionFlags.write) {
            cursor = align(cursor, s.alignment)
            sections[s.index] = cursor
            cursor += s.size
        }
        var unwind: [(frame: UInt64, object: UInt64)] = []
        for s in loadable where s.name == ".eh_frame" && s.size > 4 {
            guard let frame = sections[s.index] else { continue }
            cursor = align(cursor, 16)
            unwind.append((frame, cursor))
            cursor += Linker.unwindObjectSize
        }
        let dataSize = align(cursor, Linker.page) - dataStart
        layout = Layout(
            headerSize: headerSize, textStart: headerSize, textSize: textSize, dataStart: dataStart,
            dataSize: dataSize, holdersStart: dataStart + dataSize, tableStart: dataStart + dataSize + Linker.page,
            tableEntries: tableEntries, sections: sections, dispatchers: dispatchers, stubs: stubs, got: got,
            unwind: unwind)
    }

    /// One table byte per thread ID the kernel can hand out
    /// (`/proc/sys/kernel/pid_max`, at most 4 Mi); untouched pages cost nothing.
    static func threadTableEntries() -> UInt64 {
        let text = FileSystem.readTextIfPresent("/proc/sys/kernel/pid_max")?.trimmingWhitespace() ?? ""
        return min(max(UInt64(text) ?? 4_194_304, 32768), 4_194_304)
    }

    /// Whether the 32-bit field at `offset` belongs to `call`, `jmp` or `jcc`.
    static func isBranch(_ code: [UInt8], at offset: Int) -> Bool {
        if offset >= 1 && (code[offset - 1] == 0xe8 || code[offset - 1] == 0xe9) { return true }
        if offset >= 2 && code[offset - 2] == 0x0f && (0x80...0x8f).contains(code[offset - 1]) { return true }
        return false
    }

    static func gotKey(_ s: Symbol, _ r: Relocation) -> String {
        s.isSection ? "section:\(s.definingSection ?? 0)" : s.name
    }

    /// The linked bytes of the text and data parts.
    struct Image {
        var text: [UInt8]
        var data: [UInt8]
        /// Symbol name → run-time address, for the patch's defined symbols.
        var symbols: [String: UInt64]
        /// Symbol name → size.
        var sizes: [String: UInt64]
        /// Undefined symbols → resolved addresses, for the report.
        var resolved: [String: UInt64]
    }

    /// Where an undefined symbol is in the process.
    struct Resolution: Sendable {
        /// Its address (for a program's import, what its GOT slot holds now).
        var address: UInt64
        /// The program's GOT slot for it, when the program imports it: calls
        /// go through the slot as the program's own calls do, so ifuncs and
        /// lazy binding resolve exactly as for the program.
        var slot: UInt64? = nil
    }

    /// Links at `base` with `resolve` finding undefined symbols.
    func link(at base: UInt64, resolve: (PatchManifest.Reference) throws(ProcessError) -> Resolution?)
        throws(ProcessError) -> Image
    {
        let object = patch.object
        var text = [UInt8](repeating: 0, count: Int(layout.textSize))
        var data = [UInt8](repeating: 0, count: Int(layout.dataSize))
        func isData(_ offset: UInt64) -> Bool { offset >= layout.dataStart }
        // Section contents.
        for (index, offset) in layout.sections {
            let s = object.sections[index]
            guard s.type != SectionType.nobits else { continue }
            let bytes = object.data(s).array
            if isData(offset) {
                data.replaceSubrange(
                    Int(offset - layout.dataStart)..<Int(offset - layout.dataStart) + bytes.count, with: bytes)
            } else {
                text.replaceSubrange(
                    Int(offset - layout.textStart)..<Int(offset - layout.textStart) + bytes.count, with: bytes)
            }
        }
        // Symbols.
        var resolved: [String: Resolution] = [:]
        var defined: [String: UInt64] = [:]
        var sizes: [String: UInt64] = [:]
        for s in object.symbols.dropFirst() where !s.name.isEmpty && !s.isUndefined {
            if let index = s.definingSection, let offset = layout.sections[index] {
                defined[s.name] = base + offset + s.value
                sizes[s.name] = s.size
            }
        }
        let references = Dictionary(patch.manifest.references.map { ($0.symbol, $0) }, uniquingKeysWith: { a, _ in a })
        func address(of s: Symbol) throws(ProcessError) -> UInt64 {
            try resolution(of: s).address
        }
        func resolution(of s: Symbol) throws(ProcessError) -> Resolution {
            if s.isSection {
                guard let index = s.definingSection, let offset = layout.sections[index] else {
                    throw ProcessError(
                        .badPatch,
                        "\(patch.path): a relocation refers to section \(s.definingSection ?? 0), which is not loaded")
                }
                return Resolution(address: base + offset)
            }
            if s.rawSectionIndex == SpecialSection.absolute { return Resolution(address: s.value) }
            if !s.isUndefined {
                guard let index = s.definingSection, let offset = layout.sections[index] else {
                    throw ProcessError(
                        .badPatch, "\(patch.path): symbol \(s.name) is defined in a section that is not loaded")
                }
                return Resolution(address: base + offset + s.value)
            }
            if let known = resolved[s.name] { return known }
            let reference =
                references[s.name]
                ?? PatchManifest.Reference(symbol: s.name, name: s.name, file: nil, origin: .external)
            guard let a = try resolve(reference) else {
                if s.binding == SymbolBinding.weak { return Resolution(address: 0) }
                let where_ = reference.file.map { " (static in \($0))" } ?? ""
                throw ProcessError(
                    .unresolved,
                    "the patch needs \(reference.name)\(where_), which neither the program nor its libraries define")
            }
            resolved[s.name] = a
            return a
        }
        // Far-call stubs and GOT slots.
        var stubAddresses: [String: UInt64] = [:]
        for (name, offset) in layout.stubs {
            guard let s = object.symbols.first(where: { $0.name == name && $0.isUndefined }) else { continue }
            let target = try resolution(of: s)
            let stub = base + offset
            let at = Int(offset - layout.textStart)
            // Through the program's GOT slot when it imports the function,
            // else through the stub's own slot.
            if let slot = target.slot, let jump = X86Code.indirectJump(at: stub, slot: slot) {
                text.replaceSubrange(at..<at + jump.count, with: jump)
            } else if let jump = X86Code.indirectJump(at: stub, slot: stub + 8) {
                text.replaceSubrange(at..<at + jump.count, with: jump)
                text.storeLE(target.address, at: at + 8)
            } else {
                continue
            }
            stubAddresses[name] = stub
        }
        var gotAddresses: [String: UInt64] = [:]
        for (key, offset) in layout.got {
            gotAddresses[key] = base + offset
        }
        // Relocations.
        for rs in object.relocationSections {
            guard let sectionOffset = layout.sections[rs.target] else { continue }
            let section = object.sections[rs.target]
            let symbols = object.symbolTable(for: rs)
            let original = object.data(section).array
            for r in rs.relocations {
                guard Int(r.symbol) < symbols.count else {
                    throw ProcessError(
                        .badPatch,
                        "\(patch.path): relocation in \(section.name) names symbol \(r.symbol), beyond the symbol table"
                    )
                }
                let s = symbols[Int(r.symbol)]
                guard r.offset < section.size else {
                    throw ProcessError(
                        .badPatch,
                        "\(patch.path): relocation at \(section.name)+0x\(hex(r.offset)) lies outside the section")
                }
                let place = base + sectionOffset + r.offset
                let where_ = "\(section.name)+0x\(hex(r.offset)) (\(object.displayName(of: s)))"
                func put<T: FixedWidthInteger>(_ value: T) throws(ProcessError) {
                    let at = sectionOffset + r.offset
                    guard r.offset + UInt64(MemoryLayout<T>.size) <= section.size else {
                        throw ProcessError(.badPatch, "\(patch.path): relocation at \(where_) runs past its section")
                    }
                    if isData(at) {
                        data.storeLE(value, at: Int(at - layout.dataStart))
                    } else {
                        text.storeLE(value, at: Int(at - layout.textStart))
                    }
                }
                func pc32(_ target: UInt64) -> Int32? {
                    let v = Int64(bitPattern: target &+ UInt64(bitPattern: r.addend) &- place)
                    return v >= Int64(Int32.min) && v <= Int64(Int32.max) ? Int32(v) : nil
                }
                switch r.type {
                case 0:
                    continue
                case 1:  // R_X86_64_64
                    try put(try address(of: s) &+ UInt64(bitPattern: r.addend))
                case 2, 4:  // PC32, PLT32
                    let target = try resolution(of: s)
                    if target.slot != nil, let stub = stubAddresses[s.name],
                        Linker.isBranch(original, at: Int(r.offset)), let v = pc32(stub)
                    {
                        try put(UInt32(bitPattern: v))
                    } else if let v = pc32(target.address) {
                        try put(UInt32(bitPattern: v))
                    } else if let stub = stubAddresses[s.name], Linker.isBranch(original, at: Int(r.offset)),
                        let v = pc32(stub)
                    {
                        try put(UInt32(bitPattern: v))
                    } else {
                        throw ProcessError(
                            .unresolved,
                            "\(patch.path): \(where_) is more than 2 GiB from 0x\(hex(place)) and is not a call that a stub could reach"
                        )
                    }
                case 9, 41, 42:  // GOTPCREL, GOTPCRELX, REX_GOTPCRELX
                    guard let slot = gotAddresses[Linker.gotKey(s, r)] else {
                        throw ProcessError(.badPatch, "internal: no GOT slot for \(where_)")
                    }
                    let value = try address(of: s)
                    let slotOffset = slot - base
                    text.storeLE(value, at: Int(slotOffset - layout.textStart))
                    guard let v = pc32(slot) else {
                        throw ProcessError(.badPatch, "\(patch.path): GOT slot of \(where_) out of reach")
                    }
                    try put(UInt32(bitPattern: v))
                case 10:  // R_X86_64_32
                    let v = try address(of: s) &+ UInt64(bitPattern: r.addend)
                    guard v <= UInt64(UInt32.max) else {
                        throw ProcessError(
                            .unresolved,
                            "\(patch.path): \(where_) needs an address below 4 GiB (0x\(hex(v))); build the program with -fPIE"
                        )
                    }
                    try put(UInt32(v))
                case 11:  // R_X86_64_32S
                    let v = Int64(bitPattern: try address(of: s) &+ UInt64(bitPattern: r.addend))
                    guard v >= Int64(Int32.min) && v <= Int64(Int32.max) else {
                        throw ProcessError(
                            .unresolved,
                            "\(patch.path): \(where_) needs an address within ±2 GiB of 0 (0x\(hex(UInt64(bitPattern: v)))); build the program with -fPIE"
                        )
                    }
                    try put(UInt32(bitPattern: Int32(v)))
                case 24:  // PC64
                    try put(try address(of: s) &+ UInt64(bitPattern: r.addend) &- place)
                default:
                    throw ProcessError(
                        .badPatch,
                        "\(patch.path): relocation type \(object.architecture.relocationName(r.type)) at \(where_) is not supported"
                    )
                }
            }
        }
        return Image(text: text, data: data, symbols: defined, sizes: sizes, resolved: resolved.mapValues(\.address))
    }
}
