// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Makes the patch's unwind tables known to the target's unwinder, so that
/// C++ exceptions unwind through the new code.
///
/// The patch area is an anonymous mapping that `dl_iterate_phdr` does not
/// list, so libgcc's unwinder would find no FDE for the new code and end
/// the program. libgcc (libgcc_s.so.1, loaded by every C++ program) keeps a
/// second list for frames registered at run time: Suture calls
/// `__register_frame_info(frame, object)` once the area is written and
/// `__deregister_frame_info(frame)` before it is unmapped, in one thread
/// stopped alone while the others run on (so no lock another thread holds
/// can block the call). libgcc keeps its bookkeeping in `object`, storage in
/// the area's data part, so registering allocates nothing. Without
/// libgcc_s (a C program) nothing unwinds through the patch: nothing is
/// registered.
enum UnwindRegistration {
    /// libgcc_s's register and deregister functions in the process, if loaded.
    static func functions(_ target: Target) -> (register: UInt64, deregister: UInt64)? {
        for object in target.objects where Path.base(of: object.path).hasPrefix("libgcc_s.so") {
            guard let table = try? target.symbols(object),
                  let register = table.dynamic["__register_frame_info"], let deregister = table.dynamic["__deregister_frame_info"]
            else { continue }
            return (object.bias &+ register.value, object.bias &+ deregister.value)
        }
        return nil
    }

    /// Registers the area's frames, if it has any and the process has libgcc_s.
    static func register(_ area: PatchArea, tracer: Tracer, target: Target) throws(ProcessError) {
        guard !area.unwind.isEmpty, let f = functions(target) else { return }
        let tid = try tracer.stopOne()
        for u in area.unwind {
            _ = try call(f.register, [u.frame, u.object], in: tid, tracer: tracer, target: target)
        }
        try target.memory.write(area.start + PatchArea.unwindRegisteredOffset, [1])
        try tracer.resumeAll()
        try tracer.service()
    }

    /// Deregisters the area's frames when they are registered. The world may
    /// be stopped: every thread but one runs during the calls, and all are
    /// stopped again afterwards. Call it only once no thread can enter the
    /// area any more.
    static func deregister(start: UInt64, unwind: [(frame: UInt64, object: UInt64)], tracer: Tracer, target: Target) throws(ProcessError) {
        guard !unwind.isEmpty,
              target.memory.readPrefix(start + PatchArea.unwindRegisteredOffset, count: 1).first == 1 else { return }
        guard let f = functions(target) else {
            throw ProcessError(.state, "process \(tracer.pid): the patch's unwind tables are registered, but libgcc_s is no longer loaded")
        }
        guard let tid = tracer.injectionThread() else { throw ProcessError(.trace, "process \(tracer.pid): no thread to run injected code") }
        let stoppedOthers = tracer.threads.filter { $0 != tid && tracer.isStopped($0) }
        for other in stoppedOthers { try tracer.resume(other) }
        for u in unwind.reversed() {
            let returned = try call(f.deregister, [u.frame], in: tid, tracer: tracer, target: target)
            if returned != u.object {
                Progress.warn("suture: process \(tracer.pid): libgcc did not know the frames at 0x\(hex(u.frame))")
            }
        }
        try target.memory.write(start + PatchArea.unwindRegisteredOffset, [0])
        if !stoppedOthers.isEmpty {
            // The world stop the caller measures began before this one.
            let started = tracer.stopStarted
            try tracer.stopAll()
            tracer.stopStarted = started
        }
    }

    /// Calls `function(arguments…)` in stopped thread `tid`: a return
    /// address on its stack (below the red zone) points at an `int3` in the
    /// injector's scratch spot; the thread's registers are restored after.
    static func call(_ function: UInt64, _ arguments: [UInt64], in tid: Int32, tracer: Tracer, target: Target) throws(ProcessError) -> UInt64 {
        let injector = try Injector(tracer: tracer, memory: target.memory, objects: target.objects, map: target.map)
        let trap = injector.scratch
        let original = try tracer.registers(tid)
        let saved = Injector.restartable(original)
        let previous = try target.memory.read(trap, count: 1)
        try target.memory.write(trap, [0xcc])
        var regs = saved
        // 16-byte aligned before the call pushes its return address.
        let stack = ((saved.rsp &- 128 &- 512) & ~15) &- 8
        var frame: [UInt8] = []
        frame.appendLE(trap)
        try target.memory.write(stack, frame)
        regs.rsp = stack
        regs.rip = function
        regs.rax = 0
        regs.origRax = UInt64.max
        let registers = [ThreadRegisters.rdi, ThreadRegisters.rsi, ThreadRegisters.rdx, ThreadRegisters.rcx]
        for (i, a) in arguments.prefix(registers.count).enumerated() { regs[registers[i]] = a }
        try tracer.setRegisters(tid, regs)
        try tracer.runUntilTrap(tid, trap: trap)
        let result = try tracer.registers(tid).rax
        try tracer.setRegisters(tid, saved)
        try target.memory.write(trap, previous)
        return result
    }
}
