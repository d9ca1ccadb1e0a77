// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// Writes that survive a power cut.
enum StoreFiles {
    /// Writes `bytes` to a hidden file beside `path`, flushes it, renames it
    /// to `path` and flushes the folder.
    static func writeDurably(_ path: String, _ bytes: [UInt8]) throws(PlatformError) {
        let folder = Path.directory(of: path)
        let temporary = Path.join(folder, ".\(Path.base(of: path)).tmp.\(getpid())")
        do {
            let fd = try retryingOnEINTR("create \(temporary)") {
                open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            }
            defer { close(fd) }
            try FileSystem.writeAll(fd: fd, bytes, context: temporary)
            _ = try syscallResult("fsync \(temporary)") { fsync(fd) }
            try FileSystem.rename(temporary, path)
        } catch {
            unlink(temporary)
            throw error
        }
        try syncDirectory(folder)
    }

    /// `fsync` on a folder, which makes its renames and removals durable.
    static func syncDirectory(_ path: String) throws(PlatformError) {
        let fd = try retryingOnEINTR("open \(path)") { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        _ = try syscallResult("fsync \(path)") { fsync(fd) }
    }
}
