// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// A patch's memory in the target process, which also records the patch's
/// state, so that a later Suture process can find it, report on it and
/// revert it.
///
/// The area is a private mapping of a memfd named `suture:SEQ:NAME`, so it
/// shows in `/proc/PID/maps` as `/memfd:suture:SEQ:NAME (deleted)`. Layout:
///
/// ```
/// header (read-only to the program, written by Suture only)
///   0  "SUTUREPA"            magic, written last when preparing
///   8  u32 format (1)       12 u32 header size
///  16  u8  dispatch mode (read by the dispatchers): 0 old code, 1 new
///          code, 2 per-thread transition toward new, 3 toward old
///  17  u8  model (0 stop-check, 1 per-thread, 2 hybrid)
///  18  u8  phase (informational; the entry bytes and the mode are the truth)
///  20  u32 sequence         24 u32 JSON offset   28 u32 JSON length
///  32  u64 area size        40 u64 thread table offset
///  48  u32 thread table entries (thread IDs below it have a byte)
///  52  u32 offset of the thread ID in the thread control block (0: not known yet)
///  56  u64 held-threads record offset
///  64  JSON: the patch, the object, and per function its old address,
///      original entry bytes, dispatcher and new code
/// text (read, execute): dispatchers, new code, read-only data,
///      far-call stubs, GOT slots
/// data (read, write): the patch's .data and .bss
/// held-threads record (one page): u32 count, then per thread u32 TID,
///      u16 index of the old function holding it + 1 (0: none seen), u16 0
/// thread table: one byte per thread ID: 0 unmarked, 1 old, 2 new
/// ```
public struct PatchArea: Sendable {
    public static let magic: [UInt8] = Array("SUTUREPA".utf8)
    public static let formatVersion: UInt32 = 1
    public static let fixedHeaderSize = 64
    public static let flagOffset: UInt64 = 16
    public static let namePrefix = "suture:"

    public enum Model: UInt8, Sendable {
        case stopCheck = 0
        case perThread = 1
        case hybrid = 2
        public var name: String {
            switch self {
            case .stopCheck: return "stop-check"
            case .perThread: return "per-thread"
            case .hybrid: return "hybrid"
            }
        }
    }

    public enum Phase: UInt8, Sendable {
        case prepared = 0
        case committing = 1
        case applied = 2
        case reverting = 3
        case reverted = 4
        case transition = 5
        case reverseTransition = 6
        public var name: String {
            switch self {
            case .transition: return "transition"
            case .reverseTransition: return "reverse-transition"
            case .prepared: return "prepared"
            case .committing: return "committing"
            case .applied: return "applied"
            case .reverting: return "reverting"
            case .reverted: return "reverted"
            }
        }
    }

    /// One redirected function.
    public struct Function: Sendable, Equatable {
        public var name: String
        public var file: String?
        public var address: UInt64
        public var size: UInt64
        public var newAddress: UInt64
        public var newSize: UInt64
        public var dispatcher: UInt64
        public var dispatcherSize: UInt64
        /// The entry bytes before this patch (the original code, or an
        /// older patch's jump).
        public var original: [UInt8]
        /// `jmp dispatcher`, written first.
        public var viaDispatcher: [UInt8]
        /// `jmp new`, written once the flag says new.
        public var direct: [UInt8]

        var json: JSON {
            .object([
                ("name", .string(name)), ("file", .optional(file)), ("address", .integer(address)),
                ("size", .integer(size)),
                ("newAddress", .integer(newAddress)), ("newSize", .integer(newSize)),
                ("dispatcher", .integer(dispatcher)), ("dispatcherSize", .integer(dispatcherSize)),
                ("original", .string(hexString(original))), ("viaDispatcher", .string(hexString(viaDispatcher))),
                ("direct", .string(hexString(direct))),
            ])
        }

        init(
            name: String, file: String?, address: UInt64, size: UInt64, newAddress: UInt64, newSize: UInt64,
            dispatcher: UInt64, dispatcherSize: UInt64, original: [UInt8], viaDispatcher: [UInt8], direct: [UInt8]
        ) {
            self.name = name
            self.file = file
            self.address = address
            self.size = size
            self.newAddress = newAddress
            self.newSize = newSize
            self.dispatcher = dispatcher
            self.dispatcherSize = dispatcherSize
            self.original = original
            self.viaDispatcher = viaDispatcher
            self.direct = direct
        }

        init?(json: JSON) {
            func u(_ k: String) -> UInt64? { json[k]?.intValue.map { UInt64(bitPattern: $0) } }
            guard let name = json["name"]?.stringValue, let address = u("address"), let size = u("size"),
                let newAddress = u("newAddress"), let newSize = u("newSize"), let dispatcher = u("dispatcher"),
                let dispatcherSize = u("dispatcherSize"),
                let original = json["original"]?.stringValue.flatMap(bytes(fromHex:)),
                let via = json["viaDispatcher"]?.stringValue.flatMap(bytes(fromHex:)),
                let direct = json["direct"]?.stringValue.flatMap(bytes(fromHex:)),
                original.count == X86Code.entryJumpLength, via.count == original.count, direct.count == original.count
            else { return nil }
            self.init(
                name: name, file: json["file"]?.stringValue, address: address, size: size, newAddress: newAddress,
                newSize: newSize, dispatcher: dispatcher, dispatcherSize: dispatcherSize, original: original,
                viaDispatcher: via, direct: direct)
        }
    }

    public var start: UInt64
    public var size: UInt64
    public var headerSize: UInt64
    public var sequence: Int
    public var name: String
    /// SHA-256 of the patch file.
    public var digest: String
    public var model: Model
    public var objectPath: String
    public var buildID: [UInt8]
    public var text: Range<UInt64>
    public var data: Range<UInt64>
    public var functions: [Function]
    public var appliedAt: String
    public var patchPath: String
    /// The patch's `.eh_frame` copies and libgcc's storage for each.
    public var unwind: [(frame: UInt64, object: UInt64)] = []

    /// Read from the process: the flag and phase bytes.
    public var flag: UInt8 = 0
    public var phase: Phase = .prepared

    /// Per-thread state (see the layout above).
    public var tableOffset: UInt64 = 0
    public var tableEntries: UInt32 = 0
    public var tidOffset: UInt32 = 0
    public var holdersOffset: UInt64 = 0

    public var flagAddress: UInt64 { start + PatchArea.flagOffset }
    public var tableAddress: UInt64 { start + tableOffset }
    public var holdersAddress: UInt64 { start + holdersOffset }
    /// A per-thread transition is in progress (mode 2 or 3).
    public var inTransition: Bool { flag >= 2 }
    public var end: UInt64 { start + size }
    public var range: Range<UInt64> { start..<end }

    /// The memfd's name, as the mapping shows it.
    public var mappingName: String {
        let safe = String(
            name.unicodeScalars.prefix(40).map {
                ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == ".")
                    && $0.isASCII
                    ? Character($0) : "_"
            })
        return "\(PatchArea.namePrefix)\(sequence):\(safe)"
    }

    var json: JSON {
        .object([
            ("name", .string(name)), ("sequence", .int(Int64(sequence))), ("digest", .string(digest)),
            ("patch", .string(patchPath)), ("model", .string(model.name)), ("appliedAt", .string(appliedAt)),
            ("object", .string(objectPath)), ("buildID", .string(hexString(buildID))),
            ("text", .array([.integer(text.lowerBound), .integer(text.upperBound)])),
            ("data", .array([.integer(data.lowerBound), .integer(data.upperBound)])),
            ("functions", .array(functions.map(\.json))),
            ("unwind", .array(unwind.map { .array([.integer($0.frame), .integer($0.object)]) })),
        ])
    }

    /// The header bytes: the fixed part and the JSON. The magic comes last
    /// in a separate write (see `writeMagic`), so a half-written header is
    /// never taken for a complete one.
    func header() throws(ProcessError) -> [UInt8] {
        let text = Array(json.serialized().utf8)
        guard PatchArea.fixedHeaderSize + text.count <= Int(headerSize) else {
            throw ProcessError(
                .state,
                "internal: the patch description (\(text.count) bytes) does not fit its header of \(headerSize) bytes")
        }
        var h = [UInt8](repeating: 0, count: PatchArea.fixedHeaderSize)
        h.storeLE(PatchArea.formatVersion, at: 8)
        h.storeLE(UInt32(headerSize), at: 12)
        h[16] = flag
        h[17] = model.rawValue
        h[18] = phase.rawValue
        h.storeLE(UInt32(sequence), at: 20)
        h.storeLE(UInt32(PatchArea.fixedHeaderSize), at: 24)
        h.storeLE(UInt32(text.count), at: 28)
        h.storeLE(size, at: 32)
        h.storeLE(tableOffset, at: 40)
        h.storeLE(tableEntries, at: 48)
        h.storeLE(tidOffset, at: 52)
        h.storeLE(holdersOffset, at: 56)
        return h + text
    }

    /// Reads the area whose first mapping is `m`. Returns nil when the
    /// header is incomplete (Suture stopped while preparing it).
    static func read(at m: Mapping, size: UInt64, memory: ProcessMemory) throws(ProcessError) -> PatchArea? {
        let fixed = try memory.read(m.start, count: PatchArea.fixedHeaderSize)
        guard Array(fixed[0..<8]) == PatchArea.magic else { return nil }
        guard fixed.loadLE(UInt32.self, at: 8) == PatchArea.formatVersion else {
            throw ProcessError(
                .state,
                "the patch area at 0x\(hex(m.start)) has format \(fixed.loadLE(UInt32.self, at: 8)), which this suture does not know"
            )
        }
        let headerSize = UInt64(fixed.loadLE(UInt32.self, at: 12))
        let jsonOffset = Int(fixed.loadLE(UInt32.self, at: 24))
        let jsonLength = Int(fixed.loadLE(UInt32.self, at: 28))
        guard jsonOffset >= PatchArea.fixedHeaderSize, UInt64(jsonOffset + jsonLength) <= headerSize, headerSize <= size
        else {
            throw ProcessError(.state, "the patch area at 0x\(hex(m.start)) has a corrupt header")
        }
        let text = try memory.read(m.start + UInt64(jsonOffset), count: jsonLength)
        guard let json = try? JSON.parse(text) else {
            throw ProcessError(.state, "the patch area at 0x\(hex(m.start)) has an unreadable description")
        }
        func u(_ k: String) -> UInt64? { json[k]?.intValue.map { UInt64(bitPattern: $0) } }
        func range(_ k: String) -> Range<UInt64>? {
            guard let a = json[k]?[0]?.intValue, let b = json[k]?[1]?.intValue, a <= b else { return nil }
            return UInt64(a)..<UInt64(b)
        }
        guard let name = json["name"]?.stringValue, let sequence = json["sequence"]?.intValue,
            let text = range("text"), let data = range("data"),
            let list = json["functions"]?.arrayValue
        else {
            throw ProcessError(.state, "the patch area at 0x\(hex(m.start)) has an incomplete description")
        }
        var functions: [Function] = []
        for f in list {
            guard let function = Function(json: f) else {
                throw ProcessError(.state, "the patch area at 0x\(hex(m.start)) describes a function incompletely")
            }
            functions.append(function)
        }
        var area = PatchArea(
            start: m.start, size: size, headerSize: headerSize, sequence: Int(sequence), name: name,
            digest: json["digest"]?.stringValue ?? "", model: Model(rawValue: fixed[17]) ?? .stopCheck,
            objectPath: json["object"]?.stringValue ?? "?",
            buildID: json["buildID"]?.stringValue.flatMap(bytes(fromHex:)) ?? [],
            text: text, data: data, functions: functions,
            appliedAt: json["appliedAt"]?.stringValue ?? "", patchPath: json["patch"]?.stringValue ?? "")
        for pair in json["unwind"]?.arrayValue ?? [] {
            guard let f = pair[0]?.intValue, let o = pair[1]?.intValue else { continue }
            area.unwind.append((UInt64(bitPattern: f), UInt64(bitPattern: o)))
        }
        area.flag = fixed[16]
        area.phase = Phase(rawValue: fixed[18]) ?? .prepared
        area.tableOffset = fixed.loadLE(UInt64.self, at: 40)
        area.tableEntries = fixed.loadLE(UInt32.self, at: 48)
        area.tidOffset = fixed.loadLE(UInt32.self, at: 52)
        area.holdersOffset = fixed.loadLE(UInt64.self, at: 56)
        guard area.tableOffset + UInt64(area.tableEntries) <= size, area.holdersOffset + Linker.page <= size else {
            throw ProcessError(.state, "the patch area at 0x\(hex(m.start)) has a corrupt header (thread table)")
        }
        return area
    }
}

/// The patch areas of a process, found by their memfd names.
public struct AreaScan: Sendable {
    /// Complete areas, oldest (lowest sequence) first.
    public var areas: [PatchArea]
    /// Mappings of areas whose header was never completed: (start, size, name).
    public var incomplete: [(start: UInt64, size: UInt64, name: String)]

    public static func scan(_ map: MemoryMap, memory: ProcessMemory) throws(ProcessError) -> AreaScan {
        var areas: [PatchArea] = []
        var incomplete: [(UInt64, UInt64, String)] = []
        let prefix = "/memfd:" + PatchArea.namePrefix
        var i = 0
        let ms = map.mappings
        while i < ms.count {
            let m = ms[i]
            guard m.path.hasPrefix(prefix), m.offset == 0 else {
                i += 1
                continue
            }
            var size = m.size
            var j = i + 1
            while j < ms.count && ms[j].path == m.path && ms[j].start == m.start + size && ms[j].offset == size {
                size += ms[j].size
                j += 1
            }
            var name = String(m.path.dropFirst("/memfd:".count))
            if name.hasSuffix(" (deleted)") { name = String(name.dropLast(" (deleted)".count)) }
            if let area = try PatchArea.read(at: m, size: size, memory: memory) {
                areas.append(area)
            } else {
                incomplete.append((m.start, size, name))
            }
            i = j
        }
        return AreaScan(areas: areas.sorted { $0.sequence < $1.sequence }, incomplete: incomplete)
    }

    /// The next patch's sequence number.
    public var nextSequence: Int {
        let highest = areas.map(\.sequence).max() ?? 0
        let incompleteHighest =
            incomplete.compactMap { Int($0.name.split(separator: ":").dropFirst().first ?? "") }.max() ?? 0
        return max(highest, incompleteHighest) + 1
    }
}
