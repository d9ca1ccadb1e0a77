// SPDX-License-Identifier: GPL-2.0-only
import Platform

extension Tracer {
    /// A blocking system call that our PTRACE_INTERRUPT broke off returns
    /// EINTR instead of being restarted when it cannot be restarted
    /// transparently: a socket read or write with SO_RCVTIMEO/SO_SNDTIMEO
    /// (tinyproxy sets both), epoll_wait, semop and others (signal(7), "stop
    /// signals"). The program would see a failure it never caused. At our
    /// stop such a call has returned -EINTR with its number still in
    /// orig_rax and rip right after its `syscall` instruction, so it is
    /// restarted here the way the kernel restarts -ERESTARTNOINTR: number
    /// back in rax, rip back on the instruction. A call with a timeout starts
    /// its timeout again, as after any restart. Left alone when a signal the
    /// thread does not block is pending: that signal is what the program
    /// should see the call interrupted by.
    func restartInterruptedCall(_ tid: Int32) throws(ProcessError) {
        let eintr = UInt64(bitPattern: -4)
        var regs: ThreadRegisters
        do { regs = try Ptrace.registers(tid) } catch {
            if error.errno == .noSuchProcess { return }
            throw error.process(.trace, "process \(pid): registers of thread \(tid)")
        }
        let number = Int64(bitPattern: regs.origRax)
        guard regs.rax == eintr, number >= 0, number < 1024, regs.rip >= 2 else { return }
        let bytes = (try? Kernel.readProcessMemory(pid, [(address: regs.rip - 2, count: 2)]))?.first ?? []
        guard bytes == [0x0f, 0x05], !hasPendingSignal(tid) else { return }
        regs.rax = regs.origRax
        regs.rip -= 2
        try setRegisters(tid, regs)
    }

    /// Whether /proc says a signal is pending for the thread or its process
    /// that the thread does not block (true when unsure).
    private func hasPendingSignal(_ tid: Int32) -> Bool {
        guard let text = FileSystem.readTextIfPresent("/proc/\(pid)/task/\(tid)/status") else { return true }
        var fields: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, ["SigPnd", "ShdPnd", "SigBlk"].contains(String(parts[0])) else { continue }
            fields[String(parts[0])] = UInt64(String(parts[1]).trimmingWhitespace(), radix: 16)
        }
        guard let own = fields["SigPnd"], let shared = fields["ShdPnd"], let blocked = fields["SigBlk"] else {
            return true
        }
        return (own | shared) & ~blocked != 0
    }
}
