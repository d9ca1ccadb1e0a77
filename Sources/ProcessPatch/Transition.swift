// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The per-thread (kGraft) and hybrid (the kernel's livepatch core)
/// consistency models: old and new code coexist during a transition, and
/// each thread moves to the other side on its own once Suture observes it
/// outside all the code it leaves (instruction pointer and stack words, as
/// `Activeness` checks them). Stack frames are never rewritten: a thread
/// only ever changes sides between two calls of the patched functions.
///
/// The state lives in the target (`PatchArea`): the mode byte (2 toward
/// new, 3 toward old), one byte per thread ID in the area's thread table
/// (1 old, 2 new, 0 unmarked: the side the transition goes to, so threads
/// created meanwhile start there), and a record of the threads still held
/// with the function holding each. Every entry of the patch jumps to its
/// dispatcher, which reads them (`X86Code.threadDispatch`). A second Suture
/// process can report on a transition, finish it or reverse it.
///
/// 1. Begin (world stopped once, no stack check under per-thread): mark
///    every thread as on the side being left, point the entries at the
///    dispatchers, set the mode. Under hybrid, every thread's stack is
///    checked in this stop and the quiescent ones move at once.
/// 2. Then, in rounds, stop each thread still held alone, check it, move it
///    if it is out, resume it; the others run on.
/// 3. When no thread is held: stop the world once more and replace the
///    dispatchers by direct jumps (toward new) or the original bytes
///    (toward old).
struct Transition {
    enum Direction {
        case toNew, toOld
        /// The table byte of a thread on the side being left, and on the side reached.
        var leaving: UInt8 { self == .toNew ? 1 : 2 }
        var reaching: UInt8 { self == .toNew ? 2 : 1 }
        var mode: UInt8 { self == .toNew ? 2 : 3 }
    }

    struct Outcome: Sendable {
        var completed = false
        var rounds = 0
        /// Threads moved in the first stop (hybrid), and later one by one.
        var movedAtOnce = 0
        var movedLater = 0
        /// Seconds the world stayed stopped at the beginning and at the end.
        var pauses: [Double] = []
        /// Threads still held at the deadline.
        var held: [Activeness.Blocker] = []
    }

    let tracer: Tracer
    let target: Target
    let direction: Direction
    let model: PatchArea.Model
    /// The code a thread must be out of to move.
    let leaving: Activeness
    let deadline: Double

    var memory: ProcessMemory { target.memory }

    /// Runs the whole transition of `area`; on return the area's state in
    /// the target is either complete (mode 1, or 0 with the entries
    /// restored) or a transition still in progress (deadline passed).
    func run(_ area: inout PatchArea) throws(ProcessError) -> Outcome {
        var outcome = Outcome()
        try begin(&area, &outcome)
        try DebugPause.point("transition-running")
        var wait = 0.005
        while true {
            try Interruption.check()
            outcome.rounds += 1
            var held: [Activeness.Blocker] = []
            for tid in tracer.threads where try tableByte(area, tid) == direction.leaving {
                guard try tracer.stop(tid) else { continue }
                let blockers = try leaving.check(tracer: tracer, memory: memory, map: &target.map, only: [tid])
                if blockers.isEmpty {
                    try setTableByte(area, tid, direction.reaching)
                    outcome.movedLater += 1
                } else {
                    held += blockers
                }
                try tracer.resume(tid)
            }
            try writeHolders(area, held)
            let stillHeld = try anyHeld(area)
            if held.isEmpty && !stillHeld {
                try finish(&area, &outcome)
                return outcome
            }
            if Clock.now() + wait > deadline {
                outcome.held = held
                return outcome
            }
            try tracer.run(for: wait)
            wait = min(wait * 1.5, 0.1)
        }
    }

    /// Whether a live thread is still on the side being left.
    func anyHeld(_ area: PatchArea) throws(ProcessError) -> Bool {
        try tracer.service()
        for tid in tracer.threads where try tableByte(area, tid) == direction.leaving { return true }
        return false
    }

    // MARK: - Beginning and end (world stopped)

    private func begin(_ area: inout PatchArea, _ outcome: inout Outcome) throws(ProcessError) {
        // The entries are rewritten only when no thread is in the middle of
        // an entry's first instructions (or interrupted there: stack words).
        let entries = Activeness(
            area.functions.map {
                Activeness.Range(range: $0.address..<$0.address + UInt64(X86Code.entryJumpLength), function: $0.name)
            })
        while true {
            try Interruption.check()
            try tracer.stopAll()
            let inEntry =
                direction == .toNew && area.flag == 0
                ? try entries.check(tracer: tracer, memory: memory, map: &target.map) : []
            if inEntry.isEmpty { break }
            try tracer.resumeAll()
            if Clock.now() > deadline {
                throw ProcessError(
                    .busy,
                    "process \(tracer.pid): threads stayed at the entry of \(Set(inEntry.map(\.function)).sorted().joined(separator: ", "))"
                )
            }
            try tracer.run(for: 0.002)
        }
        do throws(ProcessError) {
            try findThreadIDOffset(&area)
            let wasInTransition = area.inTransition
            for tid in tracer.threads {
                // A thread already on the side reached keeps it.
                if wasInTransition, try tableByte(area, tid) == direction.reaching { continue }
                try setTableByte(area, tid, direction.leaving)
            }
            if model == .hybrid {
                let blockers = try leaving.check(tracer: tracer, memory: memory, map: &target.map)
                let inside = Set(blockers.map(\.tid))
                for tid in tracer.threads where !inside.contains(tid) {
                    guard try tableByte(area, tid) == direction.leaving else { continue }
                    try setTableByte(area, tid, direction.reaching)
                    outcome.movedAtOnce += 1
                }
                try writeHolders(area, blockers)
            } else {
                try writeHolders(area, [])
            }
            area.phase = direction == .toNew ? .transition : .reverseTransition
            try memory.write(area.start + 18, [area.phase.rawValue])
            for f in area.functions {
                let now = memory.readPrefix(f.address, count: X86Code.entryJumpLength)
                if now == f.original || now == f.direct { try memory.write(f.address, f.viaDispatcher) }
            }
            try memory.write(area.flagAddress, [direction.mode])
            area.flag = direction.mode
            try DebugPause.point("transition-started")
        } catch {
            try? tracer.resumeAll()
            throw error
        }
        try tracer.resumeAll()
        outcome.pauses.append(Double(Clock.monotonicNanoseconds() - tracer.stopStarted) / 1e9)
    }

    private func finish(_ area: inout PatchArea, _ outcome: inout Outcome) throws(ProcessError) {
        try tracer.stopAll()
        if try anyHeld(area) {  // a thread created by a held one since the last round
            try tracer.resumeAll()
            return
        }
        switch direction {
        case .toNew:
            try memory.write(area.flagAddress, [1])
            area.flag = 1
            for f in area.functions
            where memory.readPrefix(f.address, count: X86Code.entryJumpLength) == f.viaDispatcher {
                try memory.write(f.address, f.direct)
            }
            area.phase = .applied
        case .toOld:
            try memory.write(area.flagAddress, [0])
            area.flag = 0
            try AreaSwitch.restoreEntries(area, memory: memory)
            area.phase = .reverted
        }
        try memory.write(area.start + 18, [area.phase.rawValue])
        try clearTable(area)
        try tracer.resumeAll()
        outcome.pauses.append(Double(Clock.monotonicNanoseconds() - tracer.stopStarted) / 1e9)
        outcome.completed = true
    }

    // MARK: - Thread state in the target

    /// Finds where the C library keeps each thread's ID in its thread control
    /// block (`%fs`-relative; glibc's `struct pthread` and musl's both hold
    /// it), from every stopped thread, and writes it into the dispatchers.
    /// No thread runs a dispatcher yet when this is first done.
    private func findThreadIDOffset(_ area: inout PatchArea) throws(ProcessError) {
        guard area.tidOffset == 0 else {
            // Known: check that it still holds for every thread.
            for tid in tracer.threads {
                let fs = try tracer.registers(tid).words[ThreadRegisters.fsBase]
                guard fs != 0, let word = try? memory.read(fs + UInt64(area.tidOffset), count: 4),
                    word.loadLE(UInt32.self, at: 0) == UInt32(tid)
                else {
                    throw ProcessError(
                        .refused,
                        "process \(tracer.pid): thread \(tid) does not keep its thread ID at %fs:0x\(hex(UInt64(area.tidOffset))) like the others; the per-thread models cannot tell it apart"
                    )
                }
            }
            return
        }
        var candidates: Set<Int>?
        for tid in tracer.threads {
            let fs = try tracer.registers(tid).words[ThreadRegisters.fsBase]
            guard fs != 0 else {
                throw ProcessError(
                    .refused,
                    "process \(tracer.pid): thread \(tid) has no thread pointer (%fs base 0); the per-thread models need one"
                )
            }
            let block = memory.readPrefix(fs, count: 4096)
            var found = Set<Int>()
            var at = 8
            while at + 4 <= block.count {
                if block.loadLE(UInt32.self, at: at) == UInt32(tid) { found.insert(at) }
                at += 4
            }
            candidates = candidates.map { $0.intersection(found) } ?? found
        }
        guard let offset = candidates?.min() else {
            throw ProcessError(
                .refused,
                "process \(tracer.pid): no thread keeps its thread ID in its thread control block; the per-thread models cannot tell threads apart"
            )
        }
        area.tidOffset = UInt32(offset)
        var field: [UInt8] = []
        field.appendLE(UInt32(offset))
        for f in area.functions {
            try memory.write(f.dispatcher + UInt64(X86Code.threadDispatchTIDOffsetField), field)
        }
        try memory.write(area.start + 52, field)
    }

    func tableByte(_ area: PatchArea, _ tid: Int32) throws(ProcessError) -> UInt8 {
        guard tid >= 0, UInt32(tid) < area.tableEntries else { return 0 }
        return try memory.read(area.tableAddress + UInt64(tid), count: 1)[0]
    }

    func setTableByte(_ area: PatchArea, _ tid: Int32, _ value: UInt8) throws(ProcessError) {
        guard tid >= 0, UInt32(tid) < area.tableEntries else {
            throw ProcessError(
                .refused,
                "process \(tracer.pid): thread ID \(tid) is beyond the thread table (\(area.tableEntries) entries)")
        }
        try memory.write(area.tableAddress + UInt64(tid), [value])
    }

    /// Zeroes the table bytes of every thread it knows (live, and recorded).
    private func clearTable(_ area: PatchArea) throws(ProcessError) {
        var tids = Set(tracer.threads)
        for h in Transition.holders(area, memory: memory) { tids.insert(h.tid) }
        for tid in tids where tid >= 0 && UInt32(tid) < area.tableEntries {
            try memory.write(area.tableAddress + UInt64(tid), [0])
        }
        try writeHolders(area, [])
    }

    /// Records the threads still held and by which function.
    func writeHolders(_ area: PatchArea, _ blockers: [Activeness.Blocker]) throws(ProcessError) {
        var seen = Set<Int32>()
        var record: [UInt8] = [0, 0, 0, 0]
        for b in blockers where seen.insert(b.tid).inserted && record.count + 8 <= Int(Linker.page) {
            let index = area.functions.firstIndex { b.function == $0.name || b.function.hasPrefix($0.name + " ") }
            record.appendLE(UInt32(bitPattern: b.tid))
            record.appendLE(UInt16(index.map { $0 + 1 } ?? 0))
            record.appendLE(UInt16(0))
        }
        record.storeLE(UInt32((record.count - 4) / 8), at: 0)
        try memory.write(area.holdersAddress, record)
    }

    /// The held-threads record: thread and the old function holding it.
    static func holders(_ area: PatchArea, memory: ProcessMemory) -> [(tid: Int32, function: String?)] {
        guard area.holdersOffset != 0 else { return [] }
        let head = memory.readPrefix(area.holdersAddress, count: 4)
        guard head.count == 4 else { return [] }
        let count = min(Int(head.loadLE(UInt32.self, at: 0)), (Int(Linker.page) - 4) / 8)
        let bytes = memory.readPrefix(area.holdersAddress + 4, count: count * 8)
        var result: [(Int32, String?)] = []
        for k in 0..<bytes.count / 8 {
            let tid = Int32(bitPattern: bytes.loadLE(UInt32.self, at: k * 8))
            let index = Int(bytes.loadLE(UInt16.self, at: k * 8 + 4))
            result.append((tid, index > 0 && index <= area.functions.count ? area.functions[index - 1].name : nil))
        }
        return result.map { (tid: $0.0, function: $0.1) }
    }

    // MARK: - Code to leave

    /// Toward old: all of the patch's code.
    static func patchCode(_ area: PatchArea) -> Activeness {
        var ranges: [Activeness.Range] = []
        for f in area.functions {
            ranges.append(
                Activeness.Range(
                    range: f.newAddress..<f.newAddress + max(f.newSize, 1),
                    function: "\(f.name) (patch #\(area.sequence))"))
            ranges.append(
                Activeness.Range(
                    range: f.dispatcher..<f.dispatcher + f.dispatcherSize,
                    function: "\(f.name) (dispatcher of patch #\(area.sequence))"))
        }
        ranges.append(Activeness.Range(range: area.text, function: "code of patch #\(area.sequence)"))
        return Activeness(ranges)
    }
}

extension Transition {
    /// Unmaps an area whose functions are all back on the old code, once no
    /// thread is inside its code (stop-and-check, until `deadline`).
    static func remove(_ area: PatchArea, tracer: Tracer, target: Target, deadline: Double) throws(ProcessError)
        -> StopCheck.Outcome
    {
        let check = StopCheck(tracer: tracer, target: target, activeness: patchCode(area), deadline: deadline)
        return try check.run { () throws(ProcessError) in
            try AreaSwitch.unmap(
                start: area.start, size: area.size, unwind: area.unwind, tracer: tracer, target: target)
        }
    }

    /// Names of the threads in `blockers`, for messages.
    static func describe(_ blockers: [Activeness.Blocker]) -> String {
        blockers.prefix(8).map(\.description).joined(separator: "; ")
    }
}
