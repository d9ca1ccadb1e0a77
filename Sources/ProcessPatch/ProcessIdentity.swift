// SPDX-License-Identifier: GPL-2.0-only
import CSutureShims
import Glibc
import Platform
import Synchronization

/// The process a PID named when Suture first looked at it, held as a pidfd.
///
/// A PID can be reused: should the target exit after Suture checked its
/// owner and read its maps, and a new process get the same PID before the
/// tracer attaches, Suture would patch (as root) a process it never checked.
/// `Target` opens a pidfd first; the tracer, once every thread is seized
/// (from then on the PID cannot be reused until Suture lets go), asks the
/// pidfd whether that first process still lives. If it exited, the PID now
/// names another process and the tracer refuses it.
enum ProcessIdentity {
    private static let held = Mutex<[Int32: Int32]>([:])

    /// Opens a pidfd for `pid` (kept for the life of this Suture process).
    /// Kernels before 5.3 have no pidfds; then nothing is checked.
    static func remember(_ pid: Int32) {
        let fd = suture_pidfd_open(pid)
        guard fd >= 0 else { return }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        held.withLock { table in
            if let old = table[pid] { close(old) }
            table[pid] = fd
        }
    }

    /// Throws when the process first seen under `pid` has exited since.
    static func requireSame(_ pid: Int32) throws(ProcessError) {
        guard let fd = held.withLock({ $0[pid] }) else { return }
        if suture_pidfd_alive(fd) != 0 && currentErrno() == .noSuchProcess {
            throw ProcessError(
                .state,
                "process \(pid) exited after suture checked it, and the PID now names another process; refusing it")
        }
    }
}
