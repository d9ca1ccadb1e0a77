// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Glibc
import Platform

/// The load-time half of the run-pre check: the functions a patch module
/// records (`RunPreRecord`) compared with the running kernel's code, read
/// through `/proc/kcore` at the addresses `/proc/kallsyms` gives, outside
/// the masked bytes. The run-time state of the masked sites is reported:
/// an ftrace call at the entry means the function is traced, or already
/// redirected by a live patch (found in `/sys/kernel/livepatch`); a jump
/// where the shipped code has a NOP, an enabled static key.
public struct RunningCodeCheck: Sendable, Equatable {
    public enum Status: String, Sendable {
        case verified
        /// Verified, and another live patch already redirects the function.
        case alreadyPatched
        /// A module function whose module is not loaded.
        case notLoaded
        /// Not checked: `/proc/kcore` or kallsyms cannot be read.
        case unavailable
        case mismatch
    }

    public let target: String
    public let function: String
    public let sympos: Int
    public let status: Status
    /// What was found, for `suture status`.
    public let detail: String

    public var line: String { "\(function) (\(target)): \(detail)" }

    /// Checks every function of `record`. Never throws: a mismatch is a
    /// result, which the caller turns into a refusal.
    public static func check(_ record: RunPreRecord, tree: KernelTree) -> [RunningCodeCheck] {
        func all(_ status: Status, _ why: String) -> [RunningCodeCheck] {
            record.functions.map {
                RunningCodeCheck(target: $0.target, function: $0.name, sympos: $0.sympos, status: status, detail: why)
            }
        }
        let kcorePath = Path.join(tree.proc, "kcore")
        guard let kcore = try? Kcore(kcorePath) else {
            return all(.unavailable, "not verified at load: \(kcorePath) cannot be read")
        }
        defer { kcore.close() }
        let kallsymsPath = Path.join(tree.proc, "kallsyms")
        // Where each function lies: through the slide of `_text` (at the
        // start of kallsyms) and /sys/module sections, without reading all
        // of kallsyms; else, for older records, by name in kallsyms.
        var slide: Int64?
        if let imageText = record.imageText,
            record.functions.contains(where: { $0.target == "vmlinux" && $0.place != nil }),
            let text = liveText(kallsymsPath), text != 0
        {
            slide = Int64(bitPattern: text &- imageText)
        }
        var byName: [String: [(address: UInt64, module: String?)]]?
        var results: [RunningCodeCheck] = []
        for f in record.functions {
            func result(_ status: Status, _ detail: String) -> RunningCodeCheck {
                RunningCodeCheck(target: f.target, function: f.name, sympos: f.sympos, status: status, detail: detail)
            }
            let module = f.target == "vmlinux" ? nil : f.target
            var found: UInt64?
            if let place = f.place {
                if module == nil, let slide, place.hasPrefix("0x"), let at = UInt64(place.dropFirst(2), radix: 16) {
                    found = UInt64(bitPattern: Int64(bitPattern: at) &+ slide)
                } else if let module, let plus = place.lastIndex(of: "+"),
                    let offset = UInt64(place[place.index(after: plus)...])
                {
                    let sections = Path.join(tree.module(module), "sections")
                    guard FileSystem.isDirectory(sections) else {
                        results.append(result(.notLoaded, "not verified at load: module \(f.target) is not loaded"))
                        continue
                    }
                    let text = FileSystem.readTextIfPresent(Path.join(sections, String(place[..<plus])))?
                        .trimmingWhitespace()
                    if let text, text.hasPrefix("0x"), let base = UInt64(text.dropFirst(2), radix: 16), base != 0 {
                        found = base &+ offset
                    }
                }
            }
            if found == nil {
                if byName == nil {
                    byName = try? kallsyms(kallsymsPath, names: Set(record.functions.map(\.name)))
                }
                let places = (byName?[f.name] ?? []).filter { $0.module == module && $0.address != 0 }
                let index = f.sympos == 0 ? 0 : f.sympos - 1
                if index < places.count { found = places[index].address }
            }
            guard let address = found else {
                results.append(
                    module == nil
                        ? result(.unavailable, "not verified at load: \(kallsymsPath) shows no address of \(f.name)")
                        : result(.notLoaded, "not verified at load: module \(f.target) is not loaded"))
                continue
            }
            guard let live = kcore.read(address, f.expected.count), live.count == f.expected.count else {
                results.append(result(.unavailable, "not verified at load: \(kcorePath) does not map it"))
                continue
            }
            if let offset = (0..<live.count).first(where: { !f.mask[$0] && live[$0] != f.expected[$0] }) {
                results.append(
                    result(
                        .mismatch,
                        "the running code differs from the shipped code at offset 0x\(String(offset, radix: 16)): expected \(hex(f.expected, f.mask, offset)), running \(hex(live, [], offset))"
                    ))
                continue
            }
            var notes: [String] = []
            var patchedBy: String?
            var applied: [String: Int] = [:]
            for site in f.sites {
                let first = live[site.offset]
                let now = Array(live[site.offset..<(site.offset + site.length)])
                switch site.kind {
                case "ftrace" where first == 0xe8:
                    patchedBy = redirectingPatch(f, tree: tree)
                    if patchedBy == nil { notes.append("traced by ftrace") }
                case "jumpLabel":
                    // The shipped instruction is the key's default state.
                    let flipped = site.shipped.map { $0 != now } ?? (first == 0xe9 || first == 0xeb)
                    if flipped {
                        let state = first == 0xe9 || first == 0xeb ? "now jumps" : "now falls through"
                        notes.append(
                            "static key at +0x\(String(site.offset, radix: 16)) switched from its default (\(state))")
                    }
                case "ftrace": break
                default:
                    if let shipped = site.shipped, shipped != now { applied[site.kind, default: 0] += 1 }
                }
            }
            for (kind, count) in applied.sorted(by: { $0.key < $1.key }) {
                notes.append("\(count) \(kind) site(s) rewritten by the kernel")
            }
            let masked = Dictionary(grouping: f.sites, by: \.kind).map { "\($0.key) \($0.value.count)" }.sorted()
            var detail = "verified against \(kcorePath)"
            if !masked.isEmpty { detail += " (masked: \(masked.joined(separator: ", ")))" }
            if !notes.isEmpty { detail += "; " + notes.joined(separator: "; ") }
            if let patchedBy {
                results.append(result(.alreadyPatched, detail + "; already patched by \(patchedBy)"))
            } else {
                results.append(result(.verified, detail))
            }
        }
        return results
    }

    /// The live patch whose sysfs tree has this function
    /// (`OBJ/NAME,POS`, POS 1 for an unambiguous name).
    static func redirectingPatch(_ f: RunPreRecord.Function, tree: KernelTree) -> String? {
        let entry = "\(f.target)/\(f.name),\(max(f.sympos, 1))"
        for patch in ((try? FileSystem.list(tree.livepatch)) ?? []).sorted()
        where FileSystem.isDirectory(Path.join(tree.patch(patch), entry)) {
            return patch
        }
        return nil
    }

    static func hex(_ bytes: [UInt8], _ mask: [Bool], _ offset: Int) -> String {
        let start = max(0, offset - 4)
        return (start..<min(bytes.count, start + 16)).map { i in
            let h = i < mask.count && mask[i] ? ".." : (bytes[i] < 16 ? "0" : "") + String(bytes[i], radix: 16)
            return i == offset ? "[\(h)]" : h
        }.joined(separator: " ")
    }

    /// The running `_text`, from the start of kallsyms only.
    static func liveText(_ path: String) -> UInt64? {
        let name = Array(" _text\n".utf8)
        func find(_ bytes: [UInt8]) -> Int? {
            guard bytes.count >= name.count else { return nil }
            for i in 0...(bytes.count - name.count) where bytes[i] == 0x20 && bytes[i + 1] == 0x5f {
                if bytes[i..<(i + name.count)].elementsEqual(name) { return i }
            }
            return nil
        }
        guard let bytes = try? FileSystem.read(path, stop: { find($0) != nil || $0.count > 1 << 22 }),
            let at = find(bytes)
        else { return nil }
        var start = at
        while start > 0 && bytes[start - 1] != 0x0a { start -= 1 }
        guard at - start >= 18 else { return nil }
        return UInt64(String(decoding: bytes[start..<(start + 16)], as: UTF8.self), radix: 16)
    }

    /// Addresses of `names` in kallsyms order, with their module (nil: vmlinux).
    static func kallsyms(_ path: String, names: Set<String>) throws(PlatformError)
        -> [String: [(address: UInt64, module: String?)]]
    {
        let bytes = try FileSystem.read(path)
        var result: [String: [(address: UInt64, module: String?)]] = [:]
        var lineStart = 0
        let count = bytes.count
        while lineStart < count {
            var end = lineStart
            while end < count && bytes[end] != 0x0a { end += 1 }
            // "ADDRESS T NAME" or "ADDRESS t NAME\t[MODULE]".
            let nameStart = lineStart + 19
            if nameStart < end && bytes[lineStart + 16] == 0x20 {
                var nameEnd = nameStart
                while nameEnd < end && bytes[nameEnd] != 0x09 && bytes[nameEnd] != 0x20 { nameEnd += 1 }
                let name = String(decoding: bytes[nameStart..<nameEnd], as: UTF8.self)
                if names.contains(name) {
                    var address: UInt64 = 0
                    for i in lineStart..<(lineStart + 16) {
                        let c = bytes[i]
                        let v = c >= 0x61 ? c - 0x61 + 10 : c - 0x30
                        address = address << 4 | UInt64(v & 15)
                    }
                    var module: String?
                    if nameEnd + 2 < end, bytes[nameEnd] == 0x09, bytes[nameEnd + 1] == 0x5b {
                        module = String(decoding: bytes[(nameEnd + 2)..<(end - 1)], as: UTF8.self)
                    }
                    result[name, default: []].append((address, module))
                }
            }
            lineStart = end + 1
        }
        return result
    }
}

/// `/proc/kcore`: the kernel's memory as an ELF core file, whose `PT_LOAD`
/// segments map kernel virtual addresses (text, modules, vmalloc) to
/// file offsets.
struct Kcore {
    let fd: Int32
    let segments: [(address: UInt64, size: UInt64, offset: UInt64)]

    init(_ path: String) throws(PlatformError) {
        fd = try RegularFile.open(path).fd
        let header = try Kernel.readAt(fd, 0, count: 64, context: "read \(path)")
        func u(_ b: [UInt8], _ at: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<n { v |= UInt64(b[at + i]) << (8 * UInt64(i)) }
            return v
        }
        guard header.count == 64, header.starts(with: [0x7f, 0x45, 0x4c, 0x46]), header[4] == 2 else {
            Glibc.close(fd)
            throw PlatformError(.invalidData, "\(path) is not a 64-bit ELF core")
        }
        let phoff = u(header, 0x20, 8)
        let entry = Int(u(header, 0x36, 2))
        let count = Int(u(header, 0x38, 2))
        let table = try Kernel.readAt(fd, phoff, count: entry * count, context: "read \(path)")
        var segments: [(UInt64, UInt64, UInt64)] = []
        for i in 0..<count where (i + 1) * entry <= table.count && entry >= 56 {
            let at = i * entry
            guard u(table, at, 4) == 1 else { continue }  // PT_LOAD
            segments.append((u(table, at + 16, 8), u(table, at + 32, 8), u(table, at + 8, 8)))
        }
        self.segments = segments
    }

    func read(_ address: UInt64, _ count: Int) -> [UInt8]? {
        for s in segments where address >= s.address && address &+ UInt64(count) <= s.address &+ s.size {
            return try? Kernel.readAt(fd, s.offset + (address - s.address), count: count, context: "read /proc/kcore")
        }
        return nil
    }

    func close() { Glibc.close(fd) }
}
