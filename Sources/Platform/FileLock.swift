// SPDX-License-Identifier: GPL-2.0-only
import Glibc

/// An exclusive `flock(2)` on a lock file, released on `unlock()`, on
/// deinit, or by the kernel when the process dies (so a killed holder never
/// leaves a stale lock).
public final class FileLock: @unchecked Sendable {
    public let path: String
    private var fd: Int32

    /// Takes the lock, waiting up to `timeout` seconds. `onWait` is called
    /// once if the lock is busy, so callers can say that they are waiting.
    /// A `shared` lock (`LOCK_SH`) admits other shared holders and excludes
    /// exclusive ones: readers of a cache take it, its writer does not.
    public init(path: String, timeout: Double, shared: Bool = false, onWait: (() -> Void)? = nil) throws(PlatformError)
    {
        self.path = path
        try FileSystem.makeDirectories(Path.directory(of: path))
        fd = try retryingOnEINTR("open lock \(path)") { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        let deadline = Clock.now() + timeout
        var announced = false
        while flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 {
            let err = currentErrno()
            guard err == .wouldBlock || err == .interrupted else {
                close(fd)
                throw PlatformError(.systemCall, errno: err, "lock \(path)")
            }
            if !announced {
                onWait?()
                announced = true
            }
            if Clock.now() >= deadline {
                close(fd)
                throw PlatformError(
                    .lockTimeout, "another suture process holds \(path); gave up after \(Int(timeout)) s")
            }
            Clock.sleep(seconds: 0.05)
        }
    }

    public func unlock() {
        if fd >= 0 {
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }

    deinit { unlock() }
}
