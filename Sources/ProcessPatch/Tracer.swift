// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// Every thread of one process under ptrace: attached with `PTRACE_SEIZE`
/// (never `PTRACE_O_EXITKILL`, so the process outlives Suture), stopped with
/// `PTRACE_INTERRUPT`, and followed into new threads with
/// `PTRACE_O_TRACECLONE`.
///
/// All requests must come from the thread that created the tracer. Signals
/// that arrive for the process while it is traced are passed on at once.
/// If Suture dies, the kernel detaches every thread and they run on.
public final class Tracer {
    public let pid: Int32

    enum State: Equatable {
        case running
        /// Stopped by our interrupt (or the initial stop of a new thread).
        case stopped
        /// In a group-stop (someone sent SIGSTOP): resumed with PTRACE_LISTEN.
        case groupStopped
        /// Stopped at a system-call stop while we run injected code.
        case syscallStop
    }

    private(set) var states: [Int32: State] = [:]
    /// New threads whose first stop has not been seen yet.
    private var awaitingFirstStop = Set<Int32>()
    /// Threads stopped by our interrupt since they last ran: a system call
    /// that this stop broke off with EINTR is restarted when they resume.
    var interruptStopped = Set<Int32>()
    /// When the current world stop began (monotonic ns), for pause figures.
    var stopStarted: UInt64 = 0

    /// Seconds to wait for a thread to stop before giving up.
    public var stopTimeout: Double = 10

    public var threads: [Int32] { states.keys.sorted() }
    func isStopped(_ tid: Int32) -> Bool { states[tid] == .stopped || states[tid] == .syscallStop }

    /// Attaches to every thread of `pid`, without stopping them.
    public init(pid: Int32) throws(ProcessError) {
        self.pid = pid
        try? Kernel.setTimerSlack(nanoseconds: 1)
        // Threads created by a thread we had not seized yet are missed, so
        // list until no new thread appears.
        var rounds = 0
        while true {
            let listed = TargetProcess.threads(of: pid)
            let fresh = listed.filter { states[$0] == nil }
            if fresh.isEmpty { break }
            for tid in fresh {
                do {
                    try Ptrace.seize(tid, options: [.traceClone, .traceSysGood])
                    states[tid] = .running
                } catch {
                    if error.errno == .noSuchProcess { continue }  // exited meanwhile
                    if error.errno == .notPermitted && Tracer.tracerOf(pid: pid, tid: tid) == getpid() {
                        // Created by a thread we had seized: attached already
                        // (PTRACE_O_TRACECLONE), its first stop on the way.
                        states[tid] = .running
                        awaitingFirstStop.insert(tid)
                        continue
                    }
                    let tracer =
                        (FileSystem.readTextIfPresent("/proc/\(pid)/status")).flatMap {
                            TargetProcess.fields($0)["TracerPid"]
                        } ?? "0"
                    detachQuietly()
                    if error.errno == .notPermitted && tracer != "0" {
                        throw ProcessError(.trace, "process \(pid) is already traced by process \(tracer)")
                    }
                    throw error.process(
                        error.errno == .notPermitted ? .permission : .trace, "process \(pid): cannot attach")
                }
            }
            rounds += 1
            if rounds > 100 { break }
        }
        if states.isEmpty { throw ProcessError(.noSuchProcess, "process \(pid) has no threads left") }
        // Seized: the PID cannot be reused now. Is it still the process
        // that was checked? (See ProcessIdentity.)
        do {
            try ProcessIdentity.requireSame(pid)
        } catch {
            detachQuietly()
            throw error
        }
    }

    deinit { detachQuietly() }

    /// `TracerPid` of one thread.
    static func tracerOf(pid: Int32, tid: Int32) -> Int32? {
        FileSystem.readTextIfPresent("/proc/\(pid)/task/\(tid)/status").flatMap {
            TargetProcess.fields($0)["TracerPid"]
        }.flatMap { Int32($0) }
    }

    // MARK: - Stopping and resuming

    /// Stops every thread (including threads created meanwhile). Returns when
    /// all are in a ptrace-stop.
    public func stopAll() throws(ProcessError) {
        try interruptAll()
        try waitForStops()
    }

    /// Sends PTRACE_INTERRUPT to every running thread (the first half of `stopAll`).
    public func interruptAll() throws(ProcessError) {
        stopStarted = Clock.monotonicNanoseconds()
        for (tid, state) in states where state == .running && !awaitingFirstStop.contains(tid) {
            do { try Ptrace.interrupt(tid) } catch {
                if error.errno != .noSuchProcess { throw error.process(.trace, "process \(pid)") }
            }
        }
    }

    /// Waits until every thread is in a ptrace-stop (the second half of `stopAll`).
    public func waitForStops() throws(ProcessError) {
        let deadline = Clock.now() + stopTimeout
        while let tid = states.first(where: { $0.value == .running })?.key {
            guard let status = try waitBounded(tid, deadline: deadline) else {
                throw ProcessError(
                    .trace,
                    "process \(pid): thread \(tid) (\(TargetProcess.threadName(pid: pid, tid: tid))) did not stop within \(Int(stopTimeout)) s"
                )
            }
            try handle(tid, status, stopping: true)
        }
        if states.isEmpty { throw ProcessError(.noSuchProcess, "process \(pid) exited") }
    }

    /// Stops one thread only, for injected code, while the others run on;
    /// returns it. Prefers the main thread.
    public func stopOne() throws(ProcessError) -> Int32 {
        guard let tid = states[pid] != nil ? pid : threads.first else {
            throw ProcessError(.noSuchProcess, "process \(pid) exited")
        }
        guard try stop(tid) else { throw ProcessError(.trace, "process \(pid): thread \(tid) is gone") }
        return tid
    }

    /// Stops thread `tid` alone while the others run on. Returns false when
    /// it ended meanwhile; throws when it is in a group stop.
    public func stop(_ tid: Int32) throws(ProcessError) -> Bool {
        guard states[tid] != nil else { return false }
        stopStarted = Clock.monotonicNanoseconds()
        if states[tid] == .running && !awaitingFirstStop.contains(tid) {
            do { try Ptrace.interrupt(tid) } catch {
                if error.errno == .noSuchProcess {
                    forget(tid)
                    return false
                }
                throw error.process(.trace, "process \(pid)")
            }
        }
        let deadline = Clock.now() + stopTimeout
        while states[tid] == .running {
            guard let status = try waitBounded(tid, deadline: deadline) else {
                throw ProcessError(.trace, "process \(pid): thread \(tid) did not stop within \(Int(stopTimeout)) s")
            }
            try handle(tid, status, stopping: true)
        }
        if states[tid] == nil { return false }
        guard states[tid] == .stopped else {
            throw ProcessError(.trace, "process \(pid): thread \(tid) is in a group stop (the process is stopped)")
        }
        return true
    }

    /// Resumes every stopped thread.
    public func resumeAll() throws(ProcessError) {
        for (tid, state) in states.sorted(by: { $0.key < $1.key }) where state != .running {
            try resume(tid)
        }
    }

    func resume(_ tid: Int32, signal: Int32 = 0) throws(ProcessError) {
        let state = states[tid]
        if interruptStopped.remove(tid) != nil && signal == 0 && state != .groupStopped {
            try restartInterruptedCall(tid)
        }
        do {
            if state == .groupStopped { try Ptrace.listen(tid) } else { try Ptrace.resume(tid, signal: signal) }
            states[tid] = .running
        } catch {
            if error.errno == .noSuchProcess {
                forget(tid)
                return
            }
            throw error.process(.trace, "process \(pid): resume thread \(tid)")
        }
    }

    /// Handles whatever the running threads reported, without blocking:
    /// passes signals on, lets new threads run, forgets exited ones. Call it
    /// often while the world runs.
    public func service() throws(ProcessError) {
        for tid in threads where states[tid] == .running {
            let status: WaitStatus?
            do { status = try Kernel.waitThread(tid, blocking: false) } catch {
                if error.errno == .noChildProcess {
                    forget(tid)
                    continue
                }
                throw error.process(.trace, "process \(pid)")
            }
            if let status { try handle(tid, status, stopping: false) }
        }
        if states.isEmpty { throw ProcessError(.noSuchProcess, "process \(pid) exited") }
    }

    /// Sleeps for `seconds` while serving the running threads.
    public func run(for seconds: Double) throws(ProcessError) {
        let end = Clock.now() + seconds
        while true {
            try service()
            let left = end - Clock.now()
            if left <= 0 { break }
            Clock.sleep(seconds: min(left, 0.001))
        }
    }

    /// One event of one thread.
    private func handle(_ tid: Int32, _ status: WaitStatus, stopping: Bool) throws(ProcessError) {
        if !status.stopped {
            forget(tid)
            return
        }
        let signal = status.stopSignal
        switch status.event {
        case Ptrace.eventStop:
            awaitingFirstStop.remove(tid)
            let isGroupStop = [SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU].contains(signal)
            states[tid] = isGroupStop ? .groupStopped : .stopped
            if !isGroupStop { interruptStopped.insert(tid) }
            if !stopping { try resume(tid) }
        case Ptrace.eventClone:
            // Stopped in the middle of clone(2): never a place to stop the
            // world or run injected code. Let it finish; our interrupt stops
            // it right after.
            states[tid] = .stopped
            if let child = try? Ptrace.eventMessage(tid), child > 0, states[Int32(child)] == nil {
                states[Int32(child)] = .running
                awaitingFirstStop.insert(Int32(child))
            }
            try resume(tid, interruptAgain: stopping)
        case 0 where signal == Ptrace.syscallStopSignal:
            // Not ours outside an injection: let it go on.
            states[tid] = .stopped
            try resume(tid, interruptAgain: stopping)
        case 0:
            // A signal for the program: deliver it now.
            states[tid] = .stopped
            try resume(tid, signal: signal, interruptAgain: stopping)
        default:
            states[tid] = .stopped
            try resume(tid, interruptAgain: stopping)
        }
    }

    /// Resumes a thread from a trap other than our interrupt's. Any trap
    /// clears a pending PTRACE_INTERRUPT (`ptrace_stop` drops
    /// JOBCTL_TRAP_STOP), so while stopping the world, interrupt it again.
    private func resume(_ tid: Int32, signal: Int32 = 0, interruptAgain: Bool) throws(ProcessError) {
        try resume(tid, signal: signal)
        if interruptAgain && states[tid] == .running {
            do { try Ptrace.interrupt(tid) } catch {
                if error.errno != .noSuchProcess { throw error.process(.trace, "process \(pid)") }
            }
        }
    }

    private func forget(_ tid: Int32) {
        states[tid] = nil
        awaitingFirstStop.remove(tid)
        interruptStopped.remove(tid)
    }

    /// `waitpid` on one thread until `deadline`. Between polls it sleeps
    /// until SIGCHLD (sent when a tracee stops) or 200 µs pass, so the
    /// stopping threads get the CPU instead of the tracer.
    func waitBounded(_ tid: Int32, deadline: Double) throws(ProcessError) -> WaitStatus? {
        while true {
            do {
                if let s = try Kernel.waitThread(tid, blocking: false) { return s }
            } catch {
                if error.errno == .noChildProcess {
                    // Gone without a status we could collect (reaped elsewhere).
                    return WaitStatus(raw: 0)
                }
                throw error.process(.trace, "process \(pid)")
            }
            if Clock.now() > deadline { return nil }
            Kernel.waitForSignal(SIGCHLD, timeout: 0.0002)
        }
    }

    // MARK: - Registers

    public func registers(_ tid: Int32) throws(ProcessError) -> ThreadRegisters {
        do { return try Ptrace.registers(tid) } catch { throw error.process(.trace, "process \(pid)") }
    }

    public func setRegisters(_ tid: Int32, _ regs: ThreadRegisters) throws(ProcessError) {
        do { try Ptrace.setRegisters(tid, regs) } catch { throw error.process(.trace, "process \(pid)") }
    }

    /// A stopped thread fit to run injected code: stopped by our interrupt,
    /// so at the point where the kernel delivers signals, after any system
    /// call finished or was interrupted (never at an event stop inside one).
    func injectionThread() -> Int32? {
        if states[pid] == .stopped { return pid }
        return threads.first { states[$0] == .stopped }
    }

    /// Runs a stopped thread until `isLast` accepts a system-call exit inside
    /// `code`, passing signals on. Returns each (number, result) seen.
    func runSyscalls(
        _ tid: Int32, code: Range<UInt64>,
        isLast: (_ number: Int64, _ result: Int64) -> Bool
    ) throws(ProcessError) -> [(number: Int64, result: Int64)] {
        var seen: [(Int64, Int64)] = []
        var signal: Int32 = 0
        let deadline = Clock.now() + stopTimeout
        while true {
            do { try Ptrace.resumeToSyscall(tid, signal: signal) } catch {
                throw error.process(.trace, "process \(pid): run injected code in thread \(tid)")
            }
            states[tid] = .running
            signal = 0
            guard let status = try waitBounded(tid, deadline: deadline) else {
                throw ProcessError(
                    .trace,
                    "process \(pid): injected system call in thread \(tid) did not finish within \(Int(stopTimeout)) s")
            }
            guard status.stopped else {
                forget(tid)
                throw ProcessError(
                    .noSuchProcess, "process \(pid): thread \(tid) ended while running injected code (\(status))")
            }
            states[tid] = .syscallStop
            if status.event == 0 && status.stopSignal == Ptrace.syscallStopSignal {
                let regs = try registers(tid)
                guard let op = try? Ptrace.syscallOperation(tid), op == .exit else { continue }
                // The instruction after `syscall` (2 bytes) tells whose call it was.
                guard code.contains(regs.rip &- 2) else { continue }
                let number = Int64(bitPattern: regs.origRax)
                let result = Int64(bitPattern: regs.rax)
                seen.append((number, result))
                if isLast(number, result) { return seen.map { (number: $0.0, result: $0.1) } }
            } else if status.event == Ptrace.eventClone {
                if let child = try? Ptrace.eventMessage(tid), child > 0, states[Int32(child)] == nil {
                    states[Int32(child)] = .running
                    awaitingFirstStop.insert(Int32(child))
                }
            } else if status.event == 0 {
                signal = status.stopSignal
            }
        }
    }

    // MARK: - Detaching

    /// Stops everything and detaches, so every thread runs on untraced.
    public func detach() throws(ProcessError) {
        try stopAll()
        for tid in threads {
            if interruptStopped.remove(tid) != nil && states[tid] != .groupStopped { try restartInterruptedCall(tid) }
            do { try Ptrace.detach(tid) } catch {
                if error.errno != .noSuchProcess { throw error.process(.trace, "process \(pid): detach thread \(tid)") }
            }
            forget(tid)
        }
    }

    /// Best-effort detach for error paths: the kernel would detach on our
    /// exit anyway.
    func detachQuietly() {
        guard !states.isEmpty else { return }
        try? detach()
        for tid in threads { try? Ptrace.detach(tid) }
        states = [:]
    }
}
