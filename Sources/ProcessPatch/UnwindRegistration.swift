// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Makes the patch's unwind tables known to the target's unwinder, so that
/// C++ exceptions unwind through the new code.
///
/// The patch area is no loaded object (`dl_iterate_phdr` does not list
/// it), so libgcc's unwinder would find no FDE for the new code and end
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
                let register = table.dynamic["__register_frame_info"],
                let deregister = table.dynamic["__deregister_frame_info"]
            else { continue }
            return (object.bias &+ register.value, object.bias &+ deregister.value)
        }
        return nil
    }

    /// Where each frame's "registered" mark lives: the last word of its
    /// storage, past what libgcc uses. The mark is set before the register
    /// call and cleared before the deregister call: an injected call runs to
    /// its end even if Suture dies during it, and libgcc aborts the program
    /// when asked to deregister frames it does not know.
    static func mark(_ u: (frame: UInt64, object: UInt64)) -> UInt64 { u.object + Linker.unwindObjectSize - 8 }

    /// Registers the area's frames, if it has any and the process has libgcc_s.
    static func register(_ area: PatchArea, tracer: Tracer, target: Target) throws(ProcessError) {
        guard !area.unwind.isEmpty, let f = functions(target) else { return }
        let tid = try tracer.stopOne()
        for u in area.unwind {
            try target.memory.write(mark(u), [1])
            _ = try call(f.register, [u.frame, u.object], in: tid, tracer: tracer, target: target)
        }
        try tracer.resumeAll()
        try tracer.service()
    }

    /// Deregisters the area's registered frames, in thread `tid` (stopped
    /// by our interrupt). The world may be stopped: every other thread runs
    /// during the calls (a lock one of them holds cannot block them), and
    /// all are stopped again afterwards. Call it only once no thread can
    /// enter the area any more.
    static func deregister(
        unwind: [(frame: UInt64, object: UInt64)], in tid: Int32, tracer: Tracer,
        target: Target
    ) throws(ProcessError) {
        let registered = unwind.filter { target.memory.readPrefix(mark($0), count: 1).first == 1 }
        guard !registered.isEmpty else { return }
        guard let f = functions(target) else {
            throw ProcessError(
                .state,
                "process \(tracer.pid): the patch's unwind tables are registered, but libgcc_s is no longer loaded")
        }
        let stoppedOthers = tracer.threads.filter { $0 != tid && tracer.isStopped($0) }
        for other in stoppedOthers { try tracer.resume(other) }
        for u in registered.reversed() {
            try target.memory.write(mark(u), [0])
            let returned = try call(f.deregister, [u.frame], in: tid, tracer: tracer, target: target)
            if returned != u.object {
                Progress.warn("suture: process \(tracer.pid): libgcc did not know the frames at 0x\(hex(u.frame))")
            }
        }
        if !stoppedOthers.isEmpty {
            // The world stop the caller measures began before this one.
            let started = tracer.stopStarted
            try tracer.stopAll()
            tracer.stopStarted = started
        }
    }

    /// Calls `function(arguments…)` in stopped thread `tid` and returns
    /// its result. As with injected system calls, the thread's registers
    /// are saved on its own stack below the red zone; the call returns to a
    /// stub in the injector's scratch spot that moves the result to `rbx`,
    /// makes a `getpid` system call (where the tracer reads the result and
    /// restores the registers itself) and then restores the registers from
    /// the stack and returns to where the thread was: if Suture dies during
    /// the call, the thread continues as if nothing happened.
    static func call(_ function: UInt64, _ arguments: [UInt64], in tid: Int32, tracer: Tracer, target: Target)
        throws(ProcessError) -> UInt64
    {
        let injector = try Injector(tracer: tracer, memory: target.memory, objects: target.objects, map: target.map)
        let original = try tracer.registers(tid)
        let saved = Injector.restartable(original)
        let saveArea = saved.rsp &- 128 &- 136
        // 16-byte aligned before the call pushes its return address.
        let callStack = ((saveArea &- 64) & ~15) &- 8
        var stub = StubAssembler()
        stub.copy(.rbx, from: .rax)
        stub.move(.rsp, saveArea)
        stub.syscall(getpid)
        stub.restoreAndReturn()
        let code = stub.finish()
        let words: [UInt64] = [
            saved[ThreadRegisters.r15], saved[ThreadRegisters.r14], saved[ThreadRegisters.r13],
            saved[ThreadRegisters.r12],
            saved[ThreadRegisters.r11], saved[ThreadRegisters.r10], saved[ThreadRegisters.r9],
            saved[ThreadRegisters.r8],
            saved[ThreadRegisters.rbp], saved[ThreadRegisters.rdi], saved[ThreadRegisters.rsi],
            saved[ThreadRegisters.rdx],
            saved[ThreadRegisters.rcx], saved[ThreadRegisters.rbx], saved[ThreadRegisters.rax], saved.eflags, saved.rip,
        ]
        var frame: [UInt8] = []
        for w in words { frame.appendLE(w) }
        var returnAddress: [UInt8] = []
        returnAddress.appendLE(injector.scratch)
        let previous = try target.memory.read(injector.scratch, count: code.count)
        try target.memory.write(saveArea, frame)
        try target.memory.write(callStack, returnAddress)
        try target.memory.write(injector.scratch, code)
        var regs = saved
        regs.rsp = callStack
        regs.rip = function
        regs.rax = 0
        regs.origRax = UInt64.max
        let registers = [ThreadRegisters.rdi, ThreadRegisters.rsi, ThreadRegisters.rdx, ThreadRegisters.rcx]
        for (i, a) in arguments.prefix(registers.count).enumerated() { regs[registers[i]] = a }
        try tracer.setRegisters(tid, regs)
        // Asked to stop here (SIGTERM at the debug pause), the call still
        // runs to its end first, so that no thread is left inside it.
        var interrupted: ProcessError?
        do { try DebugPause.point("unwind-call") } catch { interrupted = error }
        // On failure from here on, the stub stays: the thread may still run it.
        _ = try tracer.runSyscalls(tid, code: injector.scratch..<injector.scratch + UInt64(code.count)) { number, _ in
            number == getpid
        }
        let result = try tracer.registers(tid)[ThreadRegisters.rbx]
        try tracer.setRegisters(tid, saved)
        try target.memory.write(injector.scratch, previous)
        if let interrupted { throw interrupted }
        return result
    }

    /// `getpid`, the system call that marks the end of an injected call.
    static let getpid: Int64 = 39
}
