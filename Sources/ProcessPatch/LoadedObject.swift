// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// An ELF object mapped into a process (the program or a shared library):
/// where it is loaded, its build-id as found in memory, and its segments.
public struct LoadedObject: Sendable {
    public let path: String
    /// Added to the file's virtual addresses to get run-time addresses (0 for
    /// a non-PIE executable).
    public let bias: UInt64
    /// The GNU build-id read from the object's notes in the process's memory.
    public let buildID: [UInt8]?
    /// Loaded segments (`PT_LOAD`) as run-time address ranges.
    public let segments: [(range: Range<UInt64>, executable: Bool)]
    /// The mapping that holds the ELF header, for `/proc/PID/map_files`.
    public let headerMapping: Mapping
    /// Whether this is the `[vdso]`.
    public let isVDSO: Bool

    /// The lowest and highest run-time addresses of the object.
    public var span: Range<UInt64> {
        (segments.map(\.range.lowerBound).min() ?? 0)..<(segments.map(\.range.upperBound).max() ?? 0)
    }

    /// Every ELF object mapped in the process: files mapped from offset 0
    /// that start with an ELF header in memory, and the vDSO.
    public static func all(in map: MemoryMap, memory: ProcessMemory) -> [LoadedObject] {
        var result: [LoadedObject] = []
        var seen = Set<String>()
        for m in map.mappings where m.offset == 0 && m.readable && (m.isFile || m.path == "[vdso]") {
            if m.isFile && !seen.insert(m.path).inserted { continue }
            if let object = try? LoadedObject(header: m, memory: memory) { result.append(object) }
        }
        return result
    }

    init(header m: Mapping, memory: ProcessMemory) throws(ProcessError) {
        let ehdr = try memory.read(m.start, count: 64)
        guard ehdr[0] == 0x7f, ehdr[1] == 0x45, ehdr[2] == 0x4c, ehdr[3] == 0x46, ehdr[4] == 2, ehdr[5] == 1 else {
            throw ProcessError(.trace, "\(m.path): no ELF64 header at 0x\(hex(m.start))")
        }
        let phoff = ehdr.loadLE(UInt64.self, at: 32)
        let phentsize = Int(ehdr.loadLE(UInt16.self, at: 54))
        let phnum = Int(ehdr.loadLE(UInt16.self, at: 56))
        guard phentsize >= 56, phnum > 0, phnum < 256, phoff < m.size else {
            throw ProcessError(.trace, "\(m.path): bad program headers in memory")
        }
        let table = try memory.read(m.start + phoff, count: phentsize * phnum)
        struct Header {
            let type: UInt32
            let flags: UInt32
            let offset: UInt64
            let vaddr: UInt64
            let memsz: UInt64
        }
        var headers: [Header] = []
        for i in 0..<phnum {
            let o = i * phentsize
            headers.append(
                Header(
                    type: table.loadLE(UInt32.self, at: o), flags: table.loadLE(UInt32.self, at: o + 4),
                    offset: table.loadLE(UInt64.self, at: o + 8), vaddr: table.loadLE(UInt64.self, at: o + 16),
                    memsz: table.loadLE(UInt64.self, at: o + 40)))
        }
        let loads = headers.filter { $0.type == SegmentType.load }
        guard let first = loads.min(by: { $0.vaddr < $1.vaddr }) else {
            throw ProcessError(.trace, "\(m.path): no loadable segment")
        }
        let page: UInt64 = 4096
        let bias = m.start &- ((first.vaddr & ~(page - 1)) &- (first.offset & ~(page - 1)))
        self.path = m.path
        self.bias = bias
        self.headerMapping = m
        self.isVDSO = m.path == "[vdso]"
        segments = loads.map {
            (range: (bias &+ $0.vaddr)..<(bias &+ $0.vaddr &+ $0.memsz), executable: $0.flags & 1 != 0)
        }
        var id: [UInt8]?
        for n in headers where n.type == SegmentType.note && n.memsz > 0 && n.memsz < 65536 {
            let bytes = memory.readPrefix(bias &+ n.vaddr, count: Int(n.memsz))
            if let found = LoadedObject.buildID(inNotes: bytes) {
                id = found
                break
            }
        }
        buildID = id
    }

    /// The `NT_GNU_BUILD_ID` descriptor in a block of notes.
    static func buildID(inNotes bytes: [UInt8]) -> [UInt8]? {
        var o = 0
        func align4(_ v: Int) -> Int { (v + 3) & ~3 }
        while o + 12 <= bytes.count {
            let nameSize = Int(bytes.loadLE(UInt32.self, at: o))
            let descSize = Int(bytes.loadLE(UInt32.self, at: o + 4))
            let type = bytes.loadLE(UInt32.self, at: o + 8)
            let name = o + 12
            let desc = align4(name + nameSize)
            guard nameSize < 256, descSize < 4096, desc + descSize <= bytes.count else { return nil }
            if type == NoteType.gnuBuildID && nameSize == 4 && bytes[name..<name + 3].elementsEqual("GNU".utf8) {
                return Array(bytes[desc..<desc + descSize])
            }
            o = align4(desc + descSize)
        }
        return nil
    }

    /// The separate debug file of this build, where GDB and Debian's
    /// `-dbgsym` packages keep it: `/usr/lib/debug/.build-id/XX/REST.debug`
    /// for build-id XXREST; nil when there is none or its build-id differs.
    public func debugFile(root: String = "/usr/lib/debug") -> ELFFile? {
        guard let id = buildID, id.count > 1 else { return nil }
        let path = Path.join(root, ".build-id", hexString(Array(id[0..<1])), hexString(Array(id[1...])) + ".debug")
        guard FileSystem.exists(path), let file = try? ELFFile.open(path), (try? file.buildID()) == id else {
            return nil
        }
        return file
    }

    /// Opens the object's file: its path when the file there has the same
    /// build-id, else the mapped inode through `/proc/PID/map_files`.
    public func open(pid: Int32) throws(ProcessError) -> ELFFile {
        var problems: [String] = []
        let candidates = [path, "/proc/\(pid)/map_files/\(hex(headerMapping.start))-\(hex(headerMapping.end))"]
        for candidate in candidates {
            do {
                let file = try ELFFile.open(candidate)
                let fileID = try? file.buildID()
                if buildID == nil || fileID == buildID { return file }
                problems.append("\(candidate) has build-id \(fileID.map(hexString) ?? "none")")
            } catch {
                problems.append(error.description)
            }
        }
        throw ProcessError(
            .trace, "\(path): cannot open the file mapped in process \(pid) (\(problems.joined(separator: "; ")))")
    }
}
