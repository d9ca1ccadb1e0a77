// SPDX-License-Identifier: GPL-2.0-only
import CSutureShims
import Glibc
import SystemPackage

/// The calling thread's errno as a typed value.
@inlinable
public func currentErrno() -> Errno { Errno(rawValue: suture_errno()) }

/// Runs a libc call that reports failure as -1 with errno, once.
///
/// Retrying on `EINTR` is the caller's explicit choice: see `retryingOnEINTR`.
@inlinable
public func syscallResult<T: FixedWidthInteger>(
    _ context: @autoclosure () -> String, _ call: () -> T
) throws(PlatformError) -> T {
    let result = call()
    if result == -1 {
        throw PlatformError(.systemCall, errno: currentErrno(), context())
    }
    return result
}

/// Runs a libc call, retrying while it fails with `EINTR`.
@inlinable
public func retryingOnEINTR<T: FixedWidthInteger>(
    _ context: @autoclosure () -> String, _ call: () -> T
) throws(PlatformError) -> T {
    while true {
        let result = call()
        if result != -1 { return result }
        let err = currentErrno()
        if err == .interrupted { continue }
        throw PlatformError(.systemCall, errno: err, context())
    }
}

/// One wrapper per kernel call that libc or swift-system does not offer.
public enum Kernel {
    /// `finit_module(2)`: load a module from an open file with parameters.
    public static func finitModule(fd: FileDescriptor, parameters: String, flags: Int32 = 0) throws(PlatformError) {
        _ = try syscallResult("finit_module") { suture_finit_module(fd.rawValue, parameters, flags) }
    }

    /// `delete_module(2)` with `O_NONBLOCK`, as rmmod does.
    public static func deleteModule(name: String, flags: Int32 = O_NONBLOCK) throws(PlatformError) {
        _ = try syscallResult("delete_module \(name)") { suture_delete_module(name, flags) }
    }

    /// `memfd_create(2)`: an anonymous file that disappears with its last descriptor.
    public static func memfdCreate(name: String, closeOnExec: Bool = true) throws(PlatformError) -> FileDescriptor {
        let flags: UInt32 = closeOnExec ? 1 : 0  // MFD_CLOEXEC
        return FileDescriptor(rawValue: try syscallResult("memfd_create") { suture_memfd_create(name, flags) })
    }

    /// `prctl(PR_SET_PDEATHSIG)` for the calling thread.
    public static func setParentDeathSignal(_ signal: Int32) throws(PlatformError) {
        _ = try syscallResult("prctl(PR_SET_PDEATHSIG)") { suture_prctl_set_pdeathsig(signal) }
    }

    /// `gettid(2)`.
    public static func threadID() -> pid_t { suture_gettid() }

    /// `kill(2)`.
    public static func kill(_ pid: pid_t, _ signal: Int32) throws(PlatformError) {
        _ = try syscallResult("kill \(pid)") { Glibc.kill(pid, signal) }
    }

    /// `tgkill(2)`.
    public static func tgkill(_ tgid: pid_t, _ tid: pid_t, _ signal: Int32) throws(PlatformError) {
        _ = try syscallResult("tgkill \(tgid)/\(tid)") { suture_tgkill(tgid, tid, signal) }
    }

    /// `geteuid(2)`.
    public static func effectiveUserID() -> uid_t { geteuid() }

    /// `uname(2)` release field, e.g. `6.1.0-57-amd64`.
    public static func release() -> String {
        var name = utsname()
        guard uname(&name) == 0 else { return "" }
        return withUnsafeBytes(of: &name.release) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
