// SPDX-License-Identifier: GPL-2.0-only
import Glibc

/// Replaces a file atomically without trusting the folder it is in.
///
/// A temporary name that can be guessed (`PATH.tmp.PID`), opened without
/// `O_EXCL|O_NOFOLLOW`, lets anyone who can write to the folder plant a
/// symbolic link there and have root write through it. So the temporary
/// file gets a random name and is created with `O_CREAT|O_EXCL|O_NOFOLLOW`
/// relative to a descriptor of the folder; its mode is set with `fchmod` on
/// the descriptor, and it is moved over the target with `renameat`, which
/// replaces a symbolic link at the target rather than following it.
public enum AtomicFile {
    /// Writes `bytes` to `path` through a fresh temporary file beside it.
    /// With `durable`, the file and then the folder are flushed to disk.
    public static func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, durable: Bool = false)
        throws(PlatformError)
    {
        let folder = Path.directory(of: path)
        let name = Path.base(of: path)
        let dir = try retryingOnEINTR("open \(folder)") { open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(dir) }
        let (fd, temporary) = try createTemporary(in: dir, folder: folder, near: name)
        var renamed = false
        defer {
            close(fd)
            if !renamed { unlinkat(dir, temporary, 0) }
        }
        try FileSystem.writeAll(fd: fd, bytes, context: Path.join(folder, temporary))
        _ = try syscallResult("fchmod \(Path.join(folder, temporary))") { fchmod(fd, mode) }
        if durable {
            _ = try syscallResult("fsync \(Path.join(folder, temporary))") { fsync(fd) }
        }
        _ = try syscallResult("rename \(Path.join(folder, temporary)) to \(path)") {
            renameat(dir, temporary, dir, name)
        }
        renamed = true
        if durable {
            _ = try syscallResult("fsync \(folder)") { fsync(dir) }
        }
    }

    /// A random name beside `name`, hidden: `.NAME.XXXXXXXXXXXXXXXX.tmp`.
    public static func temporaryName(near name: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let random = String(generator.next() as UInt64, radix: 16)
        return ".\(name.prefix(200)).\(random).tmp"
    }

    /// Creates a new temporary file in the folder `dir`: never an existing
    /// file, never through a symbolic link.
    static func createTemporary(in dir: Int32, folder: String, near name: String) throws(PlatformError) -> (
        Int32, String
    ) {
        var attempts = 0
        while true {
            let temporary = temporaryName(near: name)
            let fd = openat(dir, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 { return (fd, temporary) }
            let err = currentErrno()
            attempts += 1
            if (err == .fileExists || err == .interrupted) && attempts < 100 { continue }
            throw PlatformError(.systemCall, errno: err, "create a temporary file in \(folder)")
        }
    }
}
