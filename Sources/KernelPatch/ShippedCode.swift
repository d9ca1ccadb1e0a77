// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform
import TargetKernel

/// The target's shipped code, as the run-pre check reads it: functions of
/// vmlinux from the image's bzImage (through kallsyms addresses), functions
/// of modules from the module package's `.ko` files (through their symbol
/// tables, in kallsyms order, so a sympos means the same entry).
final class ShippedCode {
    struct Code {
        let bytes: [UInt8]
        /// Offsets (in the function) of fields the module's own relocations
        /// fill at load time; empty for vmlinux, whose fields are resolved.
        let relocationFields: [Range<Int>]
        /// Sites the image's own tables list in the function.
        var sites: [RewrittenSite] = []
        let against: String
        /// Where the code lies without kallsyms: `0xADDRESS` in the image
        /// (before KASLR), or `SECTION+OFFSET` in the module.
        var place: String
    }

    let kernel: KernelRelease
    let table: KallsymsTable
    let image: RunningImage?
    let architecture: Architecture
    let entrySizes: [String: Int]
    private var imageSites: ImageSites?
    private var installed: InstalledModules?
    private var modules: [String: (symbols: ModuleSymbols, file: ELFFile)] = [:]
    private var moduleSites: [String: RewrittenSites] = [:]

    init(
        kernel: KernelRelease, table: KallsymsTable, image: RunningImage?, architecture: Architecture,
        entrySizes: [String: Int]
    ) {
        self.entrySizes = entrySizes
        self.kernel = kernel
        self.table = table
        self.image = image
        self.architecture = architecture
    }

    /// `size` bytes of `name` (its `sympos`-th occurrence, 0: the only one)
    /// in `target`.
    func code(of name: String, sympos: Int, in target: KlpObject, size: Int) throws(BuildError) -> Code {
        switch target {
        case .vmlinux: return try vmlinuxCode(of: name, sympos: sympos, size: size)
        case .module(let module): return try moduleCode(of: name, sympos: sympos, in: module, size: size)
        }
    }

    private func vmlinuxCode(of name: String, sympos: Int, size: Int) throws(BuildError) -> Code {
        guard let image else {
            throw BuildError(
                .missingImage,
                "the run-pre check needs the vmlinux inside \(kernel.image), which cannot be read or decompressed; pass --no-verify to build without comparing the original code with the shipped code"
            )
        }
        let all = table.occurrences(of: name, in: nil)
        let index = sympos == 0 ? 0 : sympos - 1
        guard index < all.count else {
            throw BuildError(
                .unresolvedSymbol, "run-pre check: vmlinux has no \(name) at position \(sympos) in kallsyms")
        }
        let address = table.entries[all[index]].address
        guard let bytes = image.read(address, size) else {
            throw BuildError(
                .unresolvedSymbol,
                "run-pre check: \(name) at 0x\(String(address, radix: 16)) (\(size) bytes) lies outside the loaded segments of the vmlinux of \(kernel.image)"
            )
        }
        let sites = imageSites ?? ImageSites(image.file, entrySizes: entrySizes, extra: staticCallSites(image))
        imageSites = sites
        let imageAddress = UInt64(bitPattern: Int64(bitPattern: address) &- image.slide)
        return Code(
            bytes: bytes, relocationFields: [], sites: sites.sites(at: imageAddress, size: size),
            against: "the vmlinux of \(kernel.image)", place: "0x" + String(imageAddress, radix: 16))
    }

    /// The static call sites of vmlinux. The linker script puts the table
    /// in the image's init data, between `__start_static_call_sites` and
    /// `__stop_static_call_sites` (kallsyms names both), with no section
    /// of its own; objtool made it from `vmlinux.o`, so the compiled
    /// objects have none. Each entry (`struct static_call_site`) holds the
    /// call's address relative to itself, then its key; the kernel makes
    /// the 5-byte call a NOP when the call's target is NULL.
    private func staticCallSites(_ image: RunningImage) -> [(UInt64, RewrittenSite.Kind, Int)] {
        guard let start = table.occurrences(of: "__start_static_call_sites", in: nil).first,
            let stop = table.occurrences(of: "__stop_static_call_sites", in: nil).first
        else { return [] }
        let from = table.entries[start].address
        let to = table.entries[stop].address
        let entrySize = UInt64(entrySizes[".static_call_sites"] ?? 8)
        guard to > from, entrySize >= 4, to - from < 1 << 24, let read = image.read(from, Int(to - from)) else {
            return []
        }
        let bytes = ELFBytes(read)
        var sites: [(UInt64, RewrittenSite.Kind, Int)] = []
        var at: UInt64 = 0
        while at + entrySize <= UInt64(bytes.count) {
            let site = Int64(bitPattern: from &+ at) &+ Int64(Int32(bitPattern: bytes.u32(at: Int(at))))
            let address = UInt64(bitPattern: site &- image.slide)
            sites.append((address, .staticCall, 5))
            at += entrySize
        }
        return sites
    }

    private func moduleCode(of name: String, sympos: Int, in module: String, size: Int) throws(BuildError) -> Code {
        let (symbols, file) = try loaded(module)
        let all = symbols.byName[name] ?? []
        let index = sympos == 0 ? 0 : sympos - 1
        guard index < all.count else {
            throw BuildError(.unresolvedSymbol, "run-pre check: \(symbols.path) has no \(name) at position \(sympos)")
        }
        let symbol = file.symbols[symbols.entries[all[index]].symbol]
        guard let section = symbol.definingSection, section < file.sections.count else {
            throw BuildError(.unresolvedSymbol, "run-pre check: \(name) is not defined in \(symbols.path)")
        }
        let data = file.data(file.sections[section])
        let start = Int(symbol.value)
        let end = min(data.count, start + size)
        let bytes = start < end ? data.slice(start..<end).array : []
        var fields: [Range<Int>] = []
        if let rs = file.relocations(for: section) {
            for r in rs.relocations where r.offset >= symbol.value && Int(r.offset) < start + size {
                let at = Int(r.offset) - start
                fields.append(at..<(at + (architecture.kind(r.type)?.size ?? 0)))
            }
        }
        // The shipped module's own tables: a kernel that runs objtool on the
        // linked module (IBT) lists return thunks and the like only there,
        // not in the object compiled from the tree.
        let tables = moduleSites[module] ?? RewrittenSites(file, entrySizes: entrySizes)
        moduleSites[module] = tables
        let sites = tables.sites(in: section, from: symbol.value, to: symbol.value + UInt64(size)).map {
            RewrittenSite(kind: $0.kind, offset: $0.offset - symbol.value, length: $0.length)
        }
        return Code(
            bytes: bytes, relocationFields: fields, sites: sites, against: symbols.path,
            place: "\(file.sections[section].name)+\(symbol.value)")
    }

    private func loaded(_ module: String) throws(BuildError) -> (symbols: ModuleSymbols, file: ELFFile) {
        if let known = modules[module] { return known }
        if installed == nil {
            do throws(KernelError) { installed = try InstalledModules(kernel) } catch {
                throw BuildError(.io, error.description, cause: error)
            }
        }
        guard let path = installed?.path(of: module) else {
            throw BuildError(
                .missingImage,
                "run-pre check: the module \(module) of \(kernel.release) is not installed; pass --no-verify to build without comparing with the shipped code"
            )
        }
        let symbols = try ModuleSymbols(module: module, path: path)
        let file: ELFFile
        do { file = try ELFFile.open(path) } catch {
            throw BuildError(.io, "reading the module \(module): \(error.description)", cause: error)
        }
        modules[module] = (symbols, file)
        return (symbols, file)
    }
}
