// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Runs system calls inside a stopped process, so that the process stays
/// intact even if Suture dies halfway.
///
/// The code runs in a borrowed thread from a scratch spot: bytes past the
/// end of an executable segment, inside its last page, which the program
/// never executes. Before the thread is redirected there, its registers
/// (flags and return address too) are saved on its own stack below the red
/// zone, and the code ends by restoring them from there and returning to
/// where the thread was. With Suture alive, the tracer restores the
/// registers itself at the last system call's exit stop; with Suture dead,
/// the code does it, and the thread continues as if nothing happened.
///
/// A thread stopped inside a system call is saved as the kernel would
/// restart it (`rip` back on the `syscall` instruction, `rax` the call
/// number, or `restart_syscall` for `-ERESTART_RESTARTBLOCK`), and its
/// `orig_rax` is set to -1 so the kernel does not restart the injected call.
struct Injector {
    let tracer: Tracer
    let memory: ProcessMemory
    let scratch: UInt64
    static let scratchSize = 320

    /// Linux x86-64 system-call numbers used here.
    enum Number {
        static let close: Int64 = 3
        static let mmap: Int64 = 9
        static let mprotect: Int64 = 10
        static let munmap: Int64 = 11
        static let ftruncate: Int64 = 77
        static let restartSyscall: UInt64 = 219
        static let memfdCreate: Int64 = 319
    }

    /// Finds a scratch spot in the tail of an executable segment's last page.
    init(tracer: Tracer, memory: ProcessMemory, objects: [LoadedObject], map: MemoryMap) throws(ProcessError) {
        self.tracer = tracer
        self.memory = memory
        var found: UInt64?
        for object in objects.sorted(by: { ($0.isVDSO ? 1 : 0) < ($1.isVDSO ? 1 : 0) }) {
            for segment in object.segments where segment.executable {
                let start = (segment.range.upperBound + 15) & ~15
                guard let m = map.mapping(containing: segment.range.upperBound - 1), m.executable,
                    m.end >= start + UInt64(Injector.scratchSize), map.mapping(containing: start) == m
                else { continue }
                found = start
                break
            }
            if found != nil { break }
        }
        guard let found else {
            throw ProcessError(
                .trace,
                "process \(tracer.pid): no executable segment has \(Injector.scratchSize) spare bytes for injected code"
            )
        }
        scratch = found
    }

    /// A system-call sequence to run: its code (which must start at the
    /// scratch address and end with `restoreAndReturn`) and which exit ends it.
    struct Program {
        var code: [UInt8]
        /// Extra data written just below the save area (e.g. a file name);
        /// `dataAddress` is filled in before `build` runs.
        var data: [UInt8] = []
        var isLast: (_ number: Int64, _ result: Int64) -> Bool
    }

    /// Runs `make(dataAddress)` in thread `tid` (stopped) and returns every
    /// system call's (number, result). The thread is left stopped with its
    /// registers as they were.
    func run(in tid: Int32, _ make: (_ dataAddress: UInt64) -> Program) throws(ProcessError) -> [(
        number: Int64, result: Int64
    )] {
        let original = try tracer.registers(tid)
        let saved = Injector.restartable(original)
        // Save area: 17 words, ending 128 bytes (the red zone) below the stack pointer.
        let saveArea = saved.rsp &- 128 &- 136
        var program = make(0)
        let dataAddress = (saveArea &- UInt64(program.data.count) &- 16) & ~15
        program = make(dataAddress)
        guard program.code.count <= Injector.scratchSize else {
            throw ProcessError(
                .trace, "internal: injected code of \(program.code.count) bytes does not fit the scratch spot")
        }
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
        let previous = try memory.read(scratch, count: program.code.count)
        if !program.data.isEmpty { try memory.write(dataAddress, program.data) }
        try memory.write(saveArea, frame)
        try memory.write(scratch, program.code)
        var regs = saved
        regs.rip = scratch
        regs.rsp = saveArea
        regs.origRax = UInt64.max
        try DebugPause.point("inject-registers")
        try tracer.setRegisters(tid, regs)
        try DebugPause.point("injecting")
        // On failure from here on, the code stays where it is: the thread may
        // still run it, and it restores the thread by itself.
        let results = try tracer.runSyscalls(
            tid, code: scratch..<scratch + UInt64(program.code.count), isLast: program.isLast)
        try tracer.setRegisters(tid, saved)
        // The thread is out of the scratch spot: put its bytes back.
        try memory.write(scratch, previous)
        return results
    }

    /// The registers to resume with: a thread stopped inside an interrupted
    /// system call restarts it, as the kernel would have.
    static func restartable(_ r: ThreadRegisters) -> ThreadRegisters {
        var s = r
        let number = Int64(bitPattern: r.origRax)
        let result = Int64(bitPattern: r.rax)
        if number >= 0 {
            switch result {
            case -512, -513, -514:  // ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND
                s.rax = r.origRax
                s.rip = r.rip &- 2
            case -516:  // ERESTART_RESTARTBLOCK
                s.rax = Number.restartSyscall
                s.rip = r.rip &- 2
            default:
                break
            }
        }
        s.origRax = UInt64.max
        return s
    }

    // MARK: - Programs

    /// memfd_create + ftruncate + mmap (within `window`, at `address`) +
    /// [mprotect of the writable part] + close: a named mapping for the patch area.
    static func createArea(name: String, address: UInt64, size: UInt64, writable: Range<UInt64>?) -> (UInt64) -> Program
    {
        { dataAddress in
            var a = StubAssembler()
            // memfd_create(name, MFD_CLOEXEC)
            a.move(.rdi, dataAddress)
            a.move(.rsi, 1)
            a.syscall(Number.memfdCreate)
            a.jumpIfNegative("restore")
            a.copy(.rbx, from: .rax)
            // ftruncate(fd, size)
            a.copy(.rdi, from: .rbx)
            a.move(.rsi, size)
            a.syscall(Number.ftruncate)
            a.jumpIfNegative("close")
            // mmap(address, size, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED_NOREPLACE, fd, 0)
            a.move(.rdi, address)
            a.move(.rsi, size)
            a.move(.rdx, 5)
            a.move(.r10, 0x10_0002)
            a.copy(.r8, from: .rbx)
            a.move(.r9, 0)
            a.syscall(Number.mmap)
            if let writable {
                a.jumpIfNegative("close")
                // mprotect(data, size, PROT_READ|PROT_WRITE)
                a.move(.rdi, writable.lowerBound)
                a.move(.rsi, UInt64(writable.count))
                a.move(.rdx, 3)
                a.syscall(Number.mprotect)
            }
            a.label("close")
            a.copy(.rdi, from: .rbx)
            a.syscall(Number.close)
            a.label("restore")
            a.restoreAndReturn()
            return Program(
                code: a.finish(), data: Array(name.utf8) + [0],
                isLast: { number, result in
                    number == Number.close || (number == Number.memfdCreate && result < 0)
                })
        }
    }

    /// munmap(address, size).
    static func unmap(address: UInt64, size: UInt64) -> (UInt64) -> Program {
        { _ in
            var a = StubAssembler()
            a.move(.rdi, address)
            a.move(.rsi, size)
            a.syscall(Number.munmap)
            a.restoreAndReturn()
            return Program(code: a.finish(), isLast: { number, _ in number == Number.munmap })
        }
    }
}

/// The handful of instructions injected code needs, encoded by hand.
struct StubAssembler {
    enum Register: UInt8 {
        case rax = 0
        case rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15
    }

    private(set) var code: [UInt8] = []
    private var labels: [String: Int] = [:]
    private var fixups: [(at: Int, label: String)] = []

    /// `mov $value, %reg` (zero-extending 32-bit form when it fits).
    mutating func move(_ r: Register, _ value: UInt64) {
        let low = r.rawValue & 7
        if value <= UInt64(UInt32.max) {
            if r.rawValue >= 8 { code.append(0x41) }
            code.append(0xb8 + low)
            code.appendLE(UInt32(value))
        } else {
            code.append(r.rawValue >= 8 ? 0x49 : 0x48)
            code.append(0xb8 + low)
            code.appendLE(value)
        }
    }

    /// `mov %src, %dst` (64-bit).
    mutating func copy(_ dst: Register, from src: Register) {
        code.append(0x48 | (src.rawValue >= 8 ? 4 : 0) | (dst.rawValue >= 8 ? 1 : 0))
        code.append(0x89)
        code.append(0xc0 | (src.rawValue & 7) << 3 | (dst.rawValue & 7))
    }

    /// `mov $number, %eax; syscall`.
    mutating func syscall(_ number: Int64) {
        move(.rax, UInt64(number))
        code += [0x0f, 0x05]
    }

    /// `test %rax, %rax; js label`.
    mutating func jumpIfNegative(_ label: String) {
        code += [0x48, 0x85, 0xc0, 0x0f, 0x88]
        fixups.append((code.count, label))
        code += [0, 0, 0, 0]
    }

    mutating func label(_ name: String) { labels[name] = code.count }

    /// Pops the 15 saved general registers and the flags, then `ret $128`
    /// to the saved `rip`, leaving `rsp` where it was (above the red zone).
    mutating func restoreAndReturn() {
        code += [
            0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x41, 0x5b, 0x41, 0x5a, 0x41, 0x59, 0x41, 0x58,
            0x5d, 0x5f, 0x5e, 0x5a, 0x59, 0x5b, 0x58, 0x9d, 0xc2, 0x80, 0x00,
        ]
    }

    mutating func finish() -> [UInt8] {
        for f in fixups {
            let target = labels[f.label] ?? code.count
            code.storeLE(UInt32(bitPattern: Int32(target - (f.at + 4))), at: f.at)
        }
        return code
    }
}
