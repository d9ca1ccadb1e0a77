// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// The steps of `suture process apply` before the switch: locate the old
/// functions, place, link and write the patch area.
extension Apply {
    /// A replaced function as found in the process.
    struct Located {
        let manifest: PatchManifest.Function
        let address: UInt64
        /// The entry bytes now (the original code, or an older patch's jump).
        let entry: [UInt8]
        /// Code that counts as "the old function": the function, and older
        /// patches' code for it.
        let blocking: [Activeness.Range]
    }

    struct Planned {
        let functions: [Located]
    }

    /// Finds each old function, checks its bytes against the manifest
    /// (the Ksplice pre-code check) and that the entry jump fits.
    static func locate(
        _ manifest: PatchManifest, object: LoadedObject, symbols: SymbolTable, target: Target,
        what: String
    ) throws(ProcessError) -> Planned {
        var located: [Located] = []
        var problems: [String] = []
        for f in manifest.functions {
            let entry =
                f.isLocal
                ? symbols.local(f.name, file: f.file ?? "") : (symbols.globals[f.name] ?? symbols.dynamic[f.name])
            guard let entry else {
                problems.append(
                    "\(f.name)\(f.file.map { " (\($0))" } ?? ""): not in the symbol table of \(object.path)")
                continue
            }
            let start = object.bias &+ entry.value
            // The entry jump goes after an `endbr64` landing pad (IBT).
            let pad = X86Code.landingPadLength(f.expected)
            let address = start &+ UInt64(pad)
            var bytes = try target.memory.read(start, count: f.size)
            // An older patch's entry jump hides the original bytes it saved.
            if let first = target.scan.areas.first(where: { $0.functions.contains { $0.address == address } }),
                let saved = first.functions.first(where: { $0.address == address })?.original
            {
                // (A function shorter than the jump: the jump's tail covers padding.)
                let n = min(saved.count, bytes.count - pad)
                bytes.replaceSubrange(pad..<pad + n, with: saved.prefix(n))
            }
            if let at = f.firstMismatch(bytes) {
                problems.append(
                    "\(f.name) at 0x\(hex(address)): byte \(at) is 0x\(hex(UInt64(at < bytes.count ? bytes[at] : 0))) in memory, 0x\(hex(UInt64(f.expected[at]))) in the patch: the process runs different code than the patch was built for"
                )
                continue
            }
            let needed = UInt64(pad + X86Code.entryJumpLength)
            if let next = symbols.next(after: entry.value), next < entry.value + needed {
                problems.append(
                    "\(f.name): only \(next - entry.value) bytes before the next symbol; the entry jump needs \(needed)"
                )
                continue
            }
            var blocking = [Activeness.Range(range: start..<start + UInt64(f.size), function: f.name)]
            for a in target.scan.areas {
                for g in a.functions where g.address == address {
                    blocking.append(
                        Activeness.Range(
                            range: g.newAddress..<g.newAddress + max(g.newSize, 1),
                            function: "\(f.name) (patch #\(a.sequence))"))
                    blocking.append(
                        Activeness.Range(
                            range: g.dispatcher..<g.dispatcher + g.dispatcherSize,
                            function: "\(f.name) (patch #\(a.sequence) dispatcher)"))
                }
            }
            located.append(
                Located(
                    manifest: f, address: address,
                    entry: try target.memory.read(address, count: 32), blocking: blocking))
        }
        if !problems.isEmpty {
            throw ProcessError(
                .preCodeMismatch,
                "\(what) does not fit process \(target.pid) (\(target.process.name)):\n"
                    + problems.map { "  \($0)" }.joined(separator: "\n"))
        }
        return Planned(functions: located)
    }

    /// A free address for `size` bytes within ±2 GiB of `span` (with a guard
    /// page on each side), nearest to the object, and not where the heap
    /// would grow.
    static func chooseAddress(size: UInt64, near span: Range<UInt64>, map: MemoryMap, pid: Int32) throws(ProcessError)
        -> UInt64
    {
        let reach: UInt64 = 0x7fff_0000
        let page = Linker.page
        let low = span.upperBound > reach ? span.upperBound - reach : 0x10000
        let high = min(span.lowerBound &+ reach, 0x7fff_ffff_0000)
        guard low < high else { throw ProcessError(.trace, "process \(pid): the patched object spans more than 2 GiB") }
        let heapReserve = map.mappings.first { $0.path == "[heap]" }.map { $0.end..<($0.end + 0x1000_0000) }
        var best: (distance: UInt64, address: UInt64)?
        for hole in map.holes(in: max(low, 0x10000)..<high) {
            guard hole.count >= size + 2 * page else { continue }
            var candidates = [hole.upperBound - page - size, hole.lowerBound + page]
            if let reserve = heapReserve, reserve.overlaps(hole), hole.upperBound > reserve.upperBound + page + size {
                candidates.append(reserve.upperBound + page)
            }
            for a in candidates {
                let r = a..<(a + size)
                if let reserve = heapReserve, reserve.overlaps(r) { continue }
                guard r.lowerBound >= hole.lowerBound + page, r.upperBound + page <= hole.upperBound else { continue }
                let distance: UInt64
                if r.upperBound <= span.lowerBound {
                    distance = span.lowerBound - r.lowerBound
                } else if r.lowerBound >= span.upperBound {
                    distance = r.upperBound - span.upperBound
                } else {
                    continue  // a gap between the object's own segments
                }
                if best == nil || distance < best!.distance { best = (distance, a) }
            }
        }
        guard let best else {
            throw ProcessError(.trace, "process \(pid): no free \(size) bytes within 2 GiB of the patched object")
        }
        return best.address
    }

    /// Links the patch at `base` and builds each function's dispatcher and
    /// entry jumps; returns the area description (and the image in `planned`).
    static func link(
        _ linker: Linker, at base: UInt64, planned: Planned, patch: PatchFile, object: LoadedObject,
        target: Target, sequence: Int, model: PatchArea.Model
    ) throws(ProcessError) -> (PatchArea, Linker.Image) {
        var image = try linker.link(at: base, resolve: target.resolver(for: object))
        let layout = linker.layout
        var functions: [PatchArea.Function] = []
        for (i, f) in planned.functions.enumerated() {
            guard let newAddress = image.symbols[f.manifest.symbol] else {
                throw ProcessError(.badPatch, "\(patch.path): no new code \(f.manifest.symbol) for \(f.manifest.name)")
            }
            let dispatcher = base + layout.dispatchers + UInt64(i) * Linker.dispatcherSize
            guard
                let head = X86Code.threadDispatch(
                    at: dispatcher, flag: base + PatchArea.flagOffset, table: base + layout.tableStart,
                    entries: UInt32(layout.tableEntries), tidOffset: 0, new: newAddress)
            else {
                throw ProcessError(.trace, "internal: dispatcher for \(f.manifest.name) out of reach")
            }
            let moved: X86Code.MovedEntry
            do {
                moved = try X86Code.moveEntry(f.entry, from: f.address, to: dispatcher + UInt64(head.count))
            } catch {
                throw ProcessError(
                    .refused, "\(f.manifest.name): its entry cannot be moved into a dispatcher: \(error.description)")
            }
            let code = head + moved.code
            guard code.count <= Int(Linker.dispatcherSize) else {
                throw ProcessError(
                    .refused, "\(f.manifest.name): its moved entry (\(code.count) bytes) does not fit a dispatcher")
            }
            let at = Int(dispatcher - base - layout.textStart)
            image.text.replaceSubrange(at..<at + code.count, with: code)
            guard let via = X86Code.jump(at: f.address, to: dispatcher),
                let direct = X86Code.jump(at: f.address, to: newAddress)
            else {
                throw ProcessError(.trace, "internal: \(f.manifest.name) cannot reach the patch area")
            }
            functions.append(
                PatchArea.Function(
                    name: f.manifest.name, file: f.manifest.file, address: f.address,
                    size: UInt64(f.manifest.size - X86Code.landingPadLength(f.manifest.expected)),
                    newAddress: newAddress, newSize: image.sizes[f.manifest.symbol] ?? 0,
                    dispatcher: dispatcher, dispatcherSize: UInt64(code.count),
                    original: Array(f.entry[0..<X86Code.entryJumpLength]), viaDispatcher: via, direct: direct))
        }
        var area = PatchArea(
            start: base, size: layout.size, headerSize: layout.headerSize, sequence: sequence,
            name: patch.manifest.name,
            digest: patch.digest, model: model, objectPath: object.path, buildID: patch.manifest.buildID,
            text: (base + layout.textStart)..<(base + layout.textStart + layout.textSize),
            data: (base + layout.dataStart)..<(base + layout.size), functions: functions,
            appliedAt: Clock.isoTimestamp(), patchPath: Path.absolute(patch.path))
        area.flag = 0
        area.phase = .prepared
        area.tableOffset = layout.tableStart
        area.tableEntries = UInt32(layout.tableEntries)
        area.holdersOffset = layout.holdersStart
        area.unwind = layout.unwind.map { (base + $0.frame, base + $0.object) }
        return (area, image)
    }

    static func checkCreated(_ results: [(number: Int64, result: Int64)], base: UInt64, pid: Int32) throws(ProcessError)
    {
        for r in results where r.result < 0 && r.number != Injector.Number.close {
            let what =
                [
                    Injector.Number.memfdCreate: "memfd_create", Injector.Number.ftruncate: "ftruncate",
                    Injector.Number.mmap: "mmap", Injector.Number.mprotect: "mprotect",
                ][r.number] ?? "syscall \(r.number)"
            throw ProcessError(.trace, "process \(pid): injected \(what) failed: \(errnoText(-r.result))")
        }
        guard let mmap = results.first(where: { $0.number == Injector.Number.mmap }),
            UInt64(bitPattern: mmap.result) == base
        else {
            throw ProcessError(.trace, "process \(pid): the injected mmap did not map the patch area at 0x\(hex(base))")
        }
    }

    /// Writes the linked code and data, then the header, magic last; and
    /// touches each old entry once, so the commit's writes find private pages.
    static func write(_ area: PatchArea, image: Linker.Image, linker: Linker, target: Target) throws(ProcessError) {
        let memory = target.memory
        try memory.write(area.start + linker.layout.textStart, image.text)
        if !image.data.isEmpty { try memory.write(area.start + linker.layout.dataStart, image.data) }
        try memory.write(area.start, try area.header())
        try memory.write(area.start, PatchArea.magic)
        for f in area.functions {
            try memory.write(f.address, try memory.read(f.address, count: X86Code.entryJumpLength))
        }
    }
}
