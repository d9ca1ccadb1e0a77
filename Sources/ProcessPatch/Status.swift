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
        /// A per-thread transition: each thread runs the side it is on.
        case transition

        public var name: String {
            switch self {
            case .new: return "new"
            case .old: return "old"
            case .replaced(let n): return "replaced by #\(n)"
            case .unknown: return "unknown"
            case .transition: return "per-thread"
            }
        }
    }

    /// One thread during a per-thread transition.
    public struct ThreadState: Sendable {
        public let tid: Int32
        public let name: String
        /// Runs the new code.
        public let isNew: Bool
        /// For a thread on the old code: the old function Suture last saw holding it.
        public let heldBy: String?
    }

    public struct Patch: Sendable {
        public let area: PatchArea
        public let functions: [(function: PatchArea.Function, state: FunctionState)]
        /// During a transition: every thread's side.
        public var threads: [ThreadState] = []

        /// `applied` (every function new or replaced), `inactive` (every
        /// function old: an interrupted apply or revert; `revert` removes
        /// it), or `inconsistent`.
        public var state: String {
            if area.flag == 2 && functions.allSatisfy({ $0.state == .transition }) { return "transition" }
            if area.flag == 3 && functions.allSatisfy({ $0.state == .transition }) { return "reverse-transition" }
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
            var patch = Patch(area: area, functions: states)
            if area.inTransition { patch.threads = threadStates(area, target: target) }
            patches.append(patch)
        }
        return Status(pid: target.pid, name: target.process.name, patches: patches, incomplete: target.scan.incomplete)
    }

    /// Each live thread's side, read from the area's thread table, and the
    /// function holding it from the held-threads record.
    static func threadStates(_ area: PatchArea, target: Target) -> [ThreadState] {
        let holders = Transition.holders(area, memory: target.memory)
        var result: [ThreadState] = []
        for tid in TargetProcess.threads(of: target.pid) {
            var byte: UInt8 = 0
            if tid >= 0 && UInt32(tid) < area.tableEntries {
                byte = target.memory.readPrefix(area.tableAddress + UInt64(tid), count: 1).first ?? 0
            }
            let isNew = byte == 2 || (byte == 0 && area.flag == 2)
            let held = isNew ? nil : holders.first { $0.tid == tid }?.function
            result.append(
                ThreadState(
                    tid: tid, name: TargetProcess.threadName(pid: target.pid, tid: tid), isNew: isNew, heldBy: held))
        }
        return result
    }

    static func state(of f: PatchArea.Function, bytes: [UInt8], area: PatchArea, all: [PatchArea]) -> FunctionState {
        if bytes == f.direct { return .new }
        if bytes == f.viaDispatcher { return area.flag == 1 ? .new : area.flag >= 2 ? .transition : .old }
        if bytes == f.original { return .old }
        for other in all where other.sequence > area.sequence {
            if other.functions.contains(where: {
                $0.address == f.address && ($0.direct == bytes || $0.viaDispatcher == bytes)
            }) {
                return .replaced(by: other.sequence)
            }
        }
        return .unknown
    }

    public var json: JSON {
        .object([
            ("pid", .int(Int64(pid))),
            ("name", .string(name)),
            (
                "patches",
                .array(
                    patches.map { p in
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
                            (
                                "functions",
                                .array(
                                    p.functions.map { f, s in
                                        .object([
                                            ("name", .string(f.name)), ("file", .optional(f.file)),
                                            ("state", .string(s.name)),
                                            ("address", .integer(f.address)), ("newAddress", .integer(f.newAddress)),
                                        ])
                                    })
                            ),
                            (
                                "threads",
                                .array(
                                    p.threads.map { t in
                                        .object([
                                            ("tid", .int(Int64(t.tid))), ("name", .string(t.name)),
                                            ("code", .string(t.isNew ? "new" : "old")),
                                            ("heldBy", .optional(t.heldBy)),
                                        ])
                                    })
                            ),
                        ])
                    })
            ),
            (
                "incomplete",
                .array(
                    incomplete.map {
                        .object([
                            ("start", .integer($0.start)), ("size", .integer($0.size)), ("name", .string($0.name)),
                        ])
                    })
            ),
        ])
    }

    public var text: String {
        var out = "process \(pid) (\(name)): "
        out += patches.isEmpty ? "no patch applied\n" : "\(patches.count) patch\(patches.count == 1 ? "" : "es")\n"
        for p in patches {
            out += "  #\(p.area.sequence) \(p.area.name)  \(p.state)  \(p.area.model.name)  \(p.area.appliedAt)\n"
            out +=
                "     \(p.area.objectPath) (build-id \(hexString(p.area.buildID).prefix(16))…), area 0x\(hex(p.area.start)) +\(p.area.size / 1024) KiB\n"
            for (f, s) in p.functions {
                let name = f.name + (f.file.map { " (\($0))" } ?? "")
                out += "     \(s.name.padded(14)) \(name)  0x\(hex(f.address)) → 0x\(hex(f.newAddress))\n"
            }
            if !p.threads.isEmpty {
                let moving = p.area.flag == 2 ? "toward the new code" : "back toward the old code"
                out += "     threads (\(moving)):\n"
                for t in p.threads {
                    let held = t.heldBy.map { ", held by \($0)" } ?? ""
                    out += "       \(String(t.tid).padded(8)) \(t.name.padded(16)) \(t.isNew ? "new" : "old")\(held)\n"
                }
            }
        }
        for i in incomplete {
            out +=
                "  incomplete area \(i.name) at 0x\(hex(i.start)) (suture stopped while preparing it; `revert` removes it)\n"
        }
        return out
    }
}

extension String {
    func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
