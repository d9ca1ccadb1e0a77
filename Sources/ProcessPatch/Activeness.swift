// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The stop-and-check test: is any thread inside code that is about to be
/// replaced (or removed)? A thread is inside when its instruction pointer,
/// or any word on its stack between the stack pointer and the end of the
/// stack's mapping, lies in one of the ranges. Stack words are not unwound,
/// only compared, so stale values can block a switch (never the reverse).
/// A return address points just after its call, so a stack word `w` counts
/// when `w - 1` lies in a range, as unwinders do it: a function pointer to a
/// function's first byte (a table of callbacks on the stack) does not count,
/// while a call that is a function's last instruction still does.
struct Activeness {
    struct Range: Sendable {
        let range: Swift.Range<UInt64>
        let function: String
    }

    /// One thread found inside a range.
    public struct Blocker: Sendable, Equatable, CustomStringConvertible {
        public let tid: Int32
        public let thread: String
        public let function: String
        /// Executing it, or holding a return address into it.
        public let executing: Bool

        public var description: String {
            "thread \(tid) (\(thread)) is \(executing ? "executing" : "inside (return address on its stack)") \(function)"
        }
    }

    let ranges: [Range]
    private let low: UInt64
    private let high: UInt64

    init(_ ranges: [Range]) {
        self.ranges = ranges.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        low = self.ranges.map(\.range.lowerBound).min() ?? 0
        high = self.ranges.map(\.range.upperBound).max() ?? 0
    }

    @inline(__always)
    func find(_ address: UInt64) -> String? {
        guard address >= low && address < high else { return nil }
        for r in ranges where r.range.contains(address) { return r.function }
        return nil
    }

    /// Checks every (stopped) thread; returns those inside, at most one
    /// entry per thread. Registers come one thread at a time, the stacks in
    /// one `process_vm_readv`.
    func check(
        tracer: Tracer, memory: ProcessMemory, map: inout MemoryMap,
        only: [Int32]? = nil
    ) throws(ProcessError) -> [Blocker] {
        var blockers: [Blocker] = []
        var reread = false
        var stacks: [(tid: Int32, address: UInt64, count: Int)] = []
        for tid in only ?? tracer.threads {
            let regs = try tracer.registers(tid)
            if let f = find(regs.rip) {
                blockers.append(
                    Blocker(
                        tid: tid, thread: TargetProcess.threadName(pid: tracer.pid, tid: tid), function: f,
                        executing: true))
                continue
            }
            let sp = regs.rsp & ~7
            var stack = map.mapping(containing: sp)
            if stack == nil && !reread {
                map = try MemoryMap.read(pid: tracer.pid)
                reread = true
                stack = map.mapping(containing: sp)
            }
            guard let stack else {
                throw ProcessError(
                    .trace, "process \(tracer.pid): thread \(tid)'s stack pointer 0x\(hex(regs.rsp)) is in no mapping")
            }
            stacks.append((tid, sp, Int(stack.end - sp)))
        }
        var contents = (try? Kernel.readProcessMemory(tracer.pid, stacks.map { ($0.address, $0.count) })) ?? []
        for (i, s) in stacks.enumerated() where i >= contents.count || contents[i].count < s.count {
            // Not readable in one go: the slow way, as much as is readable.
            if i >= contents.count { contents.append([]) }
            contents[i] = memory.readPrefix(s.address, count: s.count)
        }
        for (i, s) in stacks.enumerated() {
            let found: String? = contents[i].withUnsafeBytes { raw -> String? in
                for k in 0..<raw.count / 8 {
                    let w = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: k * 8, as: UInt64.self))
                    if let f = find(w &- 1) { return f }
                }
                return nil
            }
            if let found {
                blockers.append(
                    Blocker(
                        tid: s.tid, thread: TargetProcess.threadName(pid: tracer.pid, tid: s.tid), function: found,
                        executing: false))
            }
        }
        return blockers
    }
}
