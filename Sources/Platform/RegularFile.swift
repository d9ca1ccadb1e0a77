// SPDX-License-Identifier: GPL-2.0-only
import Glibc

/// Reading input files that may be hostile: a FIFO would block forever, a
/// device such as `/dev/zero` never ends, and a huge file exhausts memory.
///
/// The file is opened with `O_NONBLOCK` (a FIFO without a writer then opens
/// at once instead of hanging), checked with `fstat` to be a regular file,
/// and read only up to a size limit, also when it grows while being read.
public enum RegularFile {
    /// A limit for files Suture reads whole: diffs, modules, objects.
    public static let defaultLimit = 1 << 30

    /// Opens `path` for reading; throws unless it is a regular file.
    /// The descriptor is blocking again after the check.
    public static func open(_ path: String, followLinks: Bool = true) throws(PlatformError) -> (fd: Int32, status: stat)
    {
        let flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (followLinks ? 0 : O_NOFOLLOW)
        let fd = try retryingOnEINTR("open \(path)") { Glibc.open(path, flags) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let err = currentErrno()
            close(fd)
            throw PlatformError(.systemCall, errno: err, "stat \(path)")
        }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG else {
            close(fd)
            let what =
                type == S_IFDIR
                ? "a directory"
                : type == S_IFIFO
                    ? "a FIFO"
                    : type == S_IFCHR || type == S_IFBLK
                        ? "a device" : type == S_IFSOCK ? "a socket" : "not a regular file"
            throw PlatformError(
                .invalidData, errno: type == S_IFDIR ? .isDirectory : nil, "\(path) is \(what), not a regular file")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, st)
    }

    /// Reads a whole regular file of at most `limit` bytes.
    public static func read(_ path: String, limit: Int = defaultLimit, followLinks: Bool = true) throws(PlatformError)
        -> (bytes: [UInt8], status: stat)
    {
        let (fd, st) = try open(path, followLinks: followLinks)
        defer { close(fd) }
        let bytes = try read(fd: fd, path: path, size: Int(st.st_size), limit: limit)
        return (bytes, st)
    }

    /// Reads what is left of `fd`, refusing more than `limit` bytes.
    public static func read(fd: Int32, path: String, size: Int, limit: Int) throws(PlatformError) -> [UInt8] {
        guard size <= limit else {
            throw PlatformError(.invalidData, "\(path) is \(size) bytes, more than the \(limit) allowed")
        }
        var result: [UInt8] = []
        result.reserveCapacity(size)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try retryingOnEINTR("read \(path)") {
                chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            }
            if n == 0 { break }
            guard result.count + n <= limit else {
                throw PlatformError(.invalidData, "\(path) grows past the \(limit) bytes allowed")
            }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }
}
