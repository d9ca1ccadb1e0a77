// SPDX-License-Identifier: GPL-2.0-only
import CSutureShims
import Glibc

/// The general-purpose registers of a stopped thread: x86-64's
/// `struct user_regs_struct` (`<sys/user.h>`), 27 words in kernel order.
public struct ThreadRegisters: Sendable, Equatable {
    public static let wordCount = 27
    public var words: [UInt64]

    public init(words: [UInt64] = [UInt64](repeating: 0, count: ThreadRegisters.wordCount)) {
        self.words = words
    }

    // Indexes in `struct user_regs_struct`.
    public static let r15 = 0, r14 = 1, r13 = 2, r12 = 3, rbp = 4, rbx = 5, r11 = 6, r10 = 7
    public static let r9 = 8, r8 = 9, rax = 10, rcx = 11, rdx = 12, rsi = 13, rdi = 14
    public static let origRax = 15, rip = 16, cs = 17, eflags = 18, rsp = 19, ss = 20
    public static let fsBase = 21, gsBase = 22

    public subscript(_ index: Int) -> UInt64 {
        get { words[index] }
        set { words[index] = newValue }
    }

    public var rip: UInt64 {
        get { words[Self.rip] }
        set { words[Self.rip] = newValue }
    }
    public var rsp: UInt64 {
        get { words[Self.rsp] }
        set { words[Self.rsp] = newValue }
    }
    public var rax: UInt64 {
        get { words[Self.rax] }
        set { words[Self.rax] = newValue }
    }
    public var origRax: UInt64 {
        get { words[Self.origRax] }
        set { words[Self.origRax] = newValue }
    }
    public var eflags: UInt64 {
        get { words[Self.eflags] }
        set { words[Self.eflags] = newValue }
    }
}

/// How `waitpid(2)` reported a thread.
public struct WaitStatus: Sendable, Equatable, CustomStringConvertible {
    public let raw: Int32

    public init(raw: Int32) { self.raw = raw }

    public var exited: Bool { raw & 0x7f == 0 }
    public var exitCode: Int32 { (raw >> 8) & 0xff }
    public var signaled: Bool { ((raw & 0x7f) + 1) >> 1 > 0 && !stopped }
    public var termSignal: Int32 { raw & 0x7f }
    public var stopped: Bool { raw & 0xff == 0x7f }
    /// The stop signal (`WSTOPSIG`); `SIGTRAP | 0x80` for syscall stops with
    /// `PTRACE_O_TRACESYSGOOD`.
    public var stopSignal: Int32 { (raw >> 8) & 0xff }
    /// The `PTRACE_EVENT_*` number of an event stop, else 0.
    public var event: Int32 { (raw >> 16) & 0xffff }

    public var description: String {
        if stopped { return "stopped (signal \(stopSignal), event \(event))" }
        if exited { return "exited \(exitCode)" }
        return "killed by signal \(termSignal)"
    }
}

/// One wrapper per `ptrace(2)` request Suture uses. Requests act on one
/// thread (a tid) and must come from the thread that attached.
public enum Ptrace {
    public static let eventClone: Int32 = 3  // PTRACE_EVENT_CLONE
    public static let eventStop: Int32 = 128  // PTRACE_EVENT_STOP
    /// `WSTOPSIG` of a syscall stop under `PTRACE_O_TRACESYSGOOD`.
    public static let syscallStopSignal: Int32 = SIGTRAP | 0x80

    /// `PTRACE_O_*` options for `seize`.
    public struct Options: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let traceSysGood = Options(rawValue: 0x01)
        public static let traceClone = Options(rawValue: 0x08)
        // PTRACE_O_EXITKILL (0x100000) is deliberately absent: a target must
        // outlive its tracer.
    }

    enum Request {
        static let cont: Int32 = 7
        static let getRegisters: Int32 = 12
        static let setRegisters: Int32 = 13
        static let detach: Int32 = 17
        static let syscall: Int32 = 24
        static let getEventMessage: Int32 = 0x4201
        static let seize: Int32 = 0x4206
        static let interrupt: Int32 = 0x4207
        static let listen: Int32 = 0x4208
        static let getSyscallInfo: Int32 = 0x420e
    }

    /// What `PTRACE_GET_SYSCALL_INFO` says a syscall stop is.
    public enum SyscallOperation: UInt8, Sendable {
        case none = 0, entry = 1, exit = 2, seccomp = 3
    }

    @inline(__always)
    static func call(
        _ request: Int32, _ tid: pid_t, _ addr: UInt = 0, _ data: UInt = 0,
        _ what: @autoclosure () -> String
    ) throws(PlatformError) {
        let r = suture_ptrace(
            request, tid, UnsafeMutableRawPointer(bitPattern: addr),
            UnsafeMutableRawPointer(bitPattern: data))
        if r == -1 { throw PlatformError(.systemCall, errno: currentErrno(), "\(what()) thread \(tid)") }
    }

    /// `PTRACE_SEIZE`: attach without stopping the thread.
    public static func seize(_ tid: pid_t, options: Options) throws(PlatformError) {
        try call(Request.seize, tid, 0, UInt(options.rawValue), "ptrace(PTRACE_SEIZE)")
    }

    /// `PTRACE_INTERRUPT`: stop a seized thread (reported as `PTRACE_EVENT_STOP`).
    public static func interrupt(_ tid: pid_t) throws(PlatformError) {
        try call(Request.interrupt, tid, 0, 0, "ptrace(PTRACE_INTERRUPT)")
    }

    /// `PTRACE_CONT`, delivering `signal` (0 for none).
    public static func resume(_ tid: pid_t, signal: Int32 = 0) throws(PlatformError) {
        try call(Request.cont, tid, 0, UInt(signal), "ptrace(PTRACE_CONT)")
    }

    /// `PTRACE_SYSCALL`: resume until the next system-call entry or exit.
    public static func resumeToSyscall(_ tid: pid_t, signal: Int32 = 0) throws(PlatformError) {
        try call(Request.syscall, tid, 0, UInt(signal), "ptrace(PTRACE_SYSCALL)")
    }

    /// `PTRACE_LISTEN`: leave a group-stopped thread stopped, but let it see
    /// `SIGCONT`.
    public static func listen(_ tid: pid_t) throws(PlatformError) {
        try call(Request.listen, tid, 0, 0, "ptrace(PTRACE_LISTEN)")
    }

    /// `PTRACE_DETACH`, delivering `signal` (0 for none).
    public static func detach(_ tid: pid_t, signal: Int32 = 0) throws(PlatformError) {
        try call(Request.detach, tid, 0, UInt(signal), "ptrace(PTRACE_DETACH)")
    }

    /// `PTRACE_GETEVENTMSG`: the new thread's id after `PTRACE_EVENT_CLONE`.
    public static func eventMessage(_ tid: pid_t) throws(PlatformError) -> UInt {
        var message: UInt = 0
        let r = withUnsafeMutablePointer(to: &message) {
            suture_ptrace(Request.getEventMessage, tid, nil, UnsafeMutableRawPointer($0))
        }
        if r == -1 {
            throw PlatformError(.systemCall, errno: currentErrno(), "ptrace(PTRACE_GETEVENTMSG) thread \(tid)")
        }
        return message
    }

    /// `PTRACE_GET_SYSCALL_INFO` (Linux 5.3): whether a syscall stop is an
    /// entry or an exit.
    public static func syscallOperation(_ tid: pid_t) throws(PlatformError) -> SyscallOperation {
        var info = [UInt8](repeating: 0, count: 88)  // struct ptrace_syscall_info
        let r = info.withUnsafeMutableBytes {
            suture_ptrace(Request.getSyscallInfo, tid, UnsafeMutableRawPointer(bitPattern: UInt(88)), $0.baseAddress)
        }
        if r == -1 {
            throw PlatformError(.systemCall, errno: currentErrno(), "ptrace(PTRACE_GET_SYSCALL_INFO) thread \(tid)")
        }
        return SyscallOperation(rawValue: info[0]) ?? .none
    }

    /// `PTRACE_GETREGS`.
    public static func registers(_ tid: pid_t) throws(PlatformError) -> ThreadRegisters {
        var regs = ThreadRegisters()
        // Safety: `words` holds exactly the 27 words of user_regs_struct.
        let r = regs.words.withUnsafeMutableBytes {
            suture_ptrace(Request.getRegisters, tid, nil, $0.baseAddress)
        }
        if r == -1 { throw PlatformError(.systemCall, errno: currentErrno(), "ptrace(PTRACE_GETREGS) thread \(tid)") }
        return regs
    }

    /// `PTRACE_SETREGS`.
    public static func setRegisters(_ tid: pid_t, _ registers: ThreadRegisters) throws(PlatformError) {
        var words = registers.words
        precondition(words.count == ThreadRegisters.wordCount)
        let r = words.withUnsafeMutableBytes {
            suture_ptrace(Request.setRegisters, tid, nil, $0.baseAddress)
        }
        if r == -1 { throw PlatformError(.systemCall, errno: currentErrno(), "ptrace(PTRACE_SETREGS) thread \(tid)") }
    }
}

extension Kernel {
    /// `prctl(PR_SET_TIMERSLACK)` for the calling thread: how late the
    /// kernel may fire its timers (default 50 µs).
    public static func setTimerSlack(nanoseconds: UInt) throws(PlatformError) {
        _ = try syscallResult("prctl(PR_SET_TIMERSLACK)") { suture_prctl_set_timerslack(nanoseconds) }
    }

    /// Switches the calling thread to `SCHED_FIFO` at the lowest real-time
    /// priority (`pthread_setschedparam(3)`), or back to `SCHED_OTHER`.
    /// Needs CAP_SYS_NICE (or RLIMIT_RTPRIO); returns whether it worked.
    @discardableResult
    public static func setRealTime(_ on: Bool) -> Bool {
        var param = sched_param()
        param.sched_priority = on ? 1 : 0
        return pthread_setschedparam(pthread_self(), on ? SCHED_FIFO : SCHED_OTHER, &param) == 0
    }

    /// Blocks `signal` in the calling thread, and so in the threads it starts
    /// later (`pthread_sigmask(2)`).
    public static func blockSignal(_ signal: Int32) {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, signal)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Blocks `signal` in the calling thread and waits up to `timeout`
    /// seconds for it (`sigtimedwait(2)`). Returns whether it came. A tracer
    /// uses it with SIGCHLD, which the kernel sends when a tracee stops.
    @discardableResult
    public static func waitForSignal(_ signal: Int32, timeout: Double) -> Bool {
        blockSignal(signal)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, signal)
        var ts = timespec(tv_sec: Int(timeout), tv_nsec: Int((timeout - Double(Int(timeout))) * 1e9))
        return sigtimedwait(&set, nil, &ts) == signal
    }

    /// `waitpid(2)` on one thread with `__WALL` (traced threads of another
    /// process are "clone" children). Returns nil when `blocking` is false and
    /// the thread has nothing to report. Retries on `EINTR`.
    public static func waitThread(_ tid: pid_t, blocking: Bool = true) throws(PlatformError) -> WaitStatus? {
        var status: Int32 = 0
        let options: Int32 = 0x4000_0000 | (blocking ? 0 : WNOHANG)  // __WALL
        let r = try retryingOnEINTR("waitpid \(tid)") { waitpid(tid, &status, options) }
        return r == 0 ? nil : WaitStatus(raw: status)
    }

    /// `process_vm_readv(2)`: reads several ranges of another process's
    /// memory in one call. Returns the bytes of each range, shorter (or
    /// empty) from the first range that could not be read completely.
    public static func readProcessMemory(_ pid: pid_t, _ ranges: [(address: UInt64, count: Int)]) throws(PlatformError)
        -> [[UInt8]]
    {
        var result: [[UInt8]] = []
        var start = 0
        while start < ranges.count {
            let batch = Array(ranges[start..<min(start + 1024, ranges.count)])
            // Safety: each buffer holds its range's byte count and lives until
            // the copies below are made.
            let buffers: [UnsafeMutableRawPointer?] = batch.map {
                UnsafeMutableRawPointer.allocate(byteCount: max($0.count, 1), alignment: 8)
            }
            defer { for b in buffers { b?.deallocate() } }
            let addresses = batch.map(\.address)
            let lengths = batch.map { $0.count }
            let n = suture_process_vm_readv(pid, buffers, addresses, lengths, Int32(batch.count))
            if n < 0 { throw PlatformError(.systemCall, errno: currentErrno(), "process_vm_readv \(pid)") }
            var left = n
            for (i, r) in batch.enumerated() {
                let got = min(left, r.count)
                result.append(got > 0 ? Array(UnsafeRawBufferPointer(start: buffers[i], count: got)) : [])
                left -= got
            }
            if n < lengths.reduce(0, +) { break }
            start += batch.count
        }
        while result.count < ranges.count { result.append([]) }
        return result
    }

    /// `pread(2)` of exactly `count` bytes at `offset`, or fewer at the end
    /// of readable memory. Retries on `EINTR`.
    public static func readAt(_ fd: Int32, _ offset: UInt64, count: Int, context: @autoclosure () -> String)
        throws(PlatformError) -> [UInt8]
    {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { raw in
                pread(fd, raw.baseAddress! + done, count - done, off_t(Int64(bitPattern: offset &+ UInt64(done))))
            }
            if n < 0 {
                if currentErrno() == .interrupted { continue }
                if done > 0 { break }
                throw PlatformError(.systemCall, errno: currentErrno(), context())
            }
            if n == 0 { break }
            done += n
        }
        if done < count { buffer.removeSubrange(done...) }
        return buffer
    }

    /// `pwrite(2)` of all of `bytes` at `offset`, in one call when it can.
    /// Retries on `EINTR`.
    public static func writeAt(_ fd: Int32, _ offset: UInt64, _ bytes: [UInt8], context: @autoclosure () -> String)
        throws(PlatformError)
    {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                pwrite(
                    fd, raw.baseAddress! + done, bytes.count - done, off_t(Int64(bitPattern: offset &+ UInt64(done))))
            }
            if n < 0 {
                if currentErrno() == .interrupted { continue }
                throw PlatformError(.systemCall, errno: currentErrno(), context())
            }
            if n == 0 { throw PlatformError(.systemCall, errno: .ioError, context()) }
            done += n
        }
    }
}
