// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// `suture process status`: the patches applied to a process, read from
/// their areas, and each function's state read from its entry bytes and the
/// dispatch flag (which are the truth; the area's phase byte only says how
/// far Suture got).
public struct Status: Sendable {
    public enum FunctionState: Sendable, Equatable {
        /// Calls run the new code.
        case new
        /// Calls run the old code (prepared or interrupted, or reverted).
        case old
        /// A newer patch redirects the function again.
        case replaced(by: Int)
        /// The entry holds bytes no known patch wrote.
        case unknown

        public var name: String {
            switch self {
            case .new: return "new"
            case .old: return "old"
            case .replaced(let n): return "replaced by #\(n)"
            case .unknown: return "unknown"
            }
        }
    }

    public struct Patch: Sendable {
        public let area: PatchArea
        public let functions: [(function: PatchArea.Function, state: FunctionState)]

        /// `applied` (every function new or replaced), `inactive` (every
        /// function old: an interrupted apply or revert; `revert` removes
        /// it), or `inconsistent`.
        public var state: String {
            if functions.allSatisfy({ $0.state != .old && $0.state != .unknown }) { return "applied" }
            if functions.allSatisfy({ $0.state == .old }) { return "inactive" }
            return "inconsistent"
        }
    }

    public let pid: Int32
    public let name: String
    public let patches: [Patch]
    public let incomplete: [(start: UInt64, size: UInt64, name: String)]

    public static func read(pid: Int32) throws(ProcessError) -> Status {
        let target = try Target(pid: pid, writable: false)
        return try read(target)
    }

    static func read(_ target: Target) throws(ProcessError) -> Status {
        var patches: [Patch] = []
        for area in target.scan.areas {
            var states: [(PatchArea.Function, FunctionState)] = []
            for f in area.functions {
                let bytes = target.memory.readPrefix(f.address, count: f.original.count)
                states.append((f, state(of: f, bytes: bytes, area: area, all: target.scan.areas)))
            }
            patches.append(Patch(area: area, functions: states))
        }
        return Status(pid: target.pid, name: target.process.name, patches: patches, incomplete: target.scan.incomplete)
    }

    static func state(of f: PatchArea.Function, bytes: [UInt8], area: PatchArea, all: [PatchArea]) -> FunctionState {
        if bytes == f.direct { return .new }
        if bytes == f.viaDispatcher { return area.flag == 1 ? .new : .old }
        if bytes == f.original { return .old }
        for other in all where other.sequence > area.sequence {
            if other.functions.contains(where: { $0.address == f.address && ($0.direct == bytes || $0.viaDispatcher == bytes) }) {
                return .replaced(by: other.sequence)
            }
        }
        return .unknown
    }

    public var json: JSON {
        .object([
            ("pid", .int(Int64(pid))),
            ("name", .string(name)),
            ("patches", .array(patches.map { p in
                .object([
                    ("sequence", .int(Int64(p.area.sequence))),
                    ("name", .string(p.area.name)),
                    ("state", .string(p.state)),
                    ("model", .string(p.area.model.name)),
                    ("phase", .string(p.area.phase.name)),
                    ("appliedAt", .string(p.area.appliedAt)),
                    ("patchFile", .string(p.area.patchPath)),
                    ("digest", .string(p.area.digest)),
                    ("object", .string(p.area.objectPath)),
                    ("buildID", .string(hexString(p.area.buildID))),
                    ("area", .object([("start", .integer(p.area.start)), ("size", .integer(p.area.size))])),
                    ("functions", .array(p.functions.map { f, s in
                        .object([("name", .string(f.name)), ("file", .optional(f.file)), ("state", .string(s.name)),
                                 ("address", .integer(f.address)), ("newAddress", .integer(f.newAddress))])
                    })),
                ])
            })),
            ("incomplete", .array(incomplete.map {
                .object([("start", .integer($0.start)), ("size", .integer($0.size)), ("name", .string($0.name))])
            })),
        ])
    }

    public var text: String {
        var out = "process \(pid) (\(name)): "
        out += patches.isEmpty ? "no patch applied\n" : "\(patches.count) patch\(patches.count == 1 ? "" : "es")\n"
        for p in patches {
            out += "  #\(p.area.sequence) \(p.area.name)  \(p.state)  \(p.area.model.name)  \(p.area.appliedAt)\n"
            out += "     \(p.area.objectPath) (build-id \(hexString(p.area.buildID).prefix(16))…), area 0x\(hex(p.area.start)) +\(p.area.size / 1024) KiB\n"
            for (f, s) in p.functions {
                let name = f.name + (f.file.map { " (\($0))" } ?? "")
                out += "     \(s.name.padded(14)) \(name)  0x\(hex(f.address)) → 0x\(hex(f.newAddress))\n"
            }
        }
        for i in incomplete {
            out += "  incomplete area \(i.name) at 0x\(hex(i.start)) (suture stopped while preparing it; `revert` removes it)\n"
        }
        return out
    }
}

extension String {
    func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
