// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Turning a patch area's functions on and off in a stopped process, in an
/// order where every prefix leaves the program whole, and bringing an area
/// left halfway (Suture failed or was interrupted) to a whole state.
///
/// On: each old entry gets `jmp dispatcher` (the dispatcher still runs the
/// old code: nothing changes), then the dispatch flag byte turns to 1 (every
/// function switches at this one write), then each entry becomes `jmp new`
/// (no change in behaviour, one branch less per call). Off is the reverse:
/// direct jumps back to dispatchers, flag to 0, original entry bytes back.
/// Entries are single-page writes and change only while every thread is
/// stopped, so no thread ever sees one half-written, and if Suture dies the
/// flag alone says whether the program runs old or new code.
enum AreaSwitch {
    static var length: Int { X86Code.entryJumpLength }

    /// Turns the patch on (world stopped).
    static func on(_ area: inout PatchArea, memory: ProcessMemory) throws(ProcessError) {
        area.phase = .committing
        try memory.write(area.start + 18, [area.phase.rawValue])
        for (i, f) in area.functions.enumerated() {
            try memory.write(f.address, f.viaDispatcher)
            if i == 0 { try DebugPause.point("commit-started") }
        }
        try memory.write(area.flagAddress, [1])
        area.flag = 1
        try DebugPause.point("committed")
        for (i, f) in area.functions.enumerated() {
            try memory.write(f.address, f.direct)
            if i == 0 { try DebugPause.point("direct") }
        }
        area.phase = .applied
        try memory.write(area.start + 18, [area.phase.rawValue])
    }

    /// Turns the patch off (world stopped); the area stays mapped.
    static func off(_ area: PatchArea, memory: ProcessMemory) throws(ProcessError) {
        try memory.write(area.start + 18, [PatchArea.Phase.reverting.rawValue])
        var first = true
        for f in area.functions where memory.readPrefix(f.address, count: length) == f.direct {
            try memory.write(f.address, f.viaDispatcher)
            if first {
                try DebugPause.point("revert-started")
                first = false
            }
        }
        try memory.write(area.flagAddress, [0])
        try DebugPause.point("reverted")
        try restoreEntries(area, memory: memory)
        try memory.write(area.start + 18, [PatchArea.Phase.reverted.rawValue])
    }

    /// Writes the original bytes back at every entry that still jumps into the area.
    static func restoreEntries(_ area: PatchArea, memory: ProcessMemory) throws(ProcessError) {
        for f in area.functions {
            let now = memory.readPrefix(f.address, count: length)
            if now == f.viaDispatcher || now == f.direct { try memory.write(f.address, f.original) }
        }
    }

    /// After a failure or an interruption anywhere in an apply or a revert:
    /// with the flag on, the program runs the new code, so the switch is
    /// completed (direct jumps); with it off, every entry gets its original
    /// bytes and the area is unmapped. Entries change, and the flag turns on,
    /// only with the world stopped, and the world stops here again, so no
    /// thread is inside an area being removed. Returns whether the patch
    /// ended applied.
    static func settle(_ area: PatchArea, tracer: Tracer, target: Target) throws(ProcessError) -> Bool {
        let memory = target.memory
        try tracer.stopAll()
        let flag = try memory.read(area.flagAddress, count: 1)[0]
        if flag >= 2 {
            // A per-thread transition: every thread runs one whole side;
            // it stays in progress for `apply` or `revert` to finish.
            try tracer.resumeAll()
            return true
        }
        if flag == 1 {
            for f in area.functions where memory.readPrefix(f.address, count: length) == f.viaDispatcher {
                try memory.write(f.address, f.direct)
            }
            try memory.write(area.start + 18, [PatchArea.Phase.applied.rawValue])
            try tracer.resumeAll()
            return true
        }
        try restoreEntries(area, memory: memory)
        try unmap(start: area.start, size: area.size, unwind: area.unwind, tracer: tracer, target: target)
        try tracer.resumeAll()
        return false
    }

    /// munmap through a thread stopped by our interrupt (the world stopped,
    /// or that thread alone).
    static func unmap(
        start: UInt64, size: UInt64, unwind: [(frame: UInt64, object: UInt64)] = [], tracer: Tracer,
        target: Target
    ) throws(ProcessError) {
        let injector = try Injector(tracer: tracer, memory: target.memory, objects: target.objects, map: target.map)
        guard let tid = tracer.injectionThread() else {
            throw ProcessError(.trace, "process \(tracer.pid): no thread to run injected code")
        }
        try UnwindRegistration.deregister(unwind: unwind, in: tid, tracer: tracer, target: target)
        let results = try injector.run(in: tid, Injector.unmap(address: start, size: size))
        if let r = results.last, r.result < 0 {
            throw ProcessError(.trace, "process \(tracer.pid): injected munmap failed: \(errnoText(-r.result))")
        }
    }
}
