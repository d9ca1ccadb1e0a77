// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// Writes that survive a power cut.
enum StoreFiles {
    /// Writes `bytes` to a hidden file beside `path`, flushes it, renames it
    /// to `path` and flushes the folder.
    static func writeDurably(_ path: String, _ bytes: [UInt8]) throws(PlatformError) {
        try AtomicFile.write(path, bytes, mode: 0o644, durable: true)
    }

    /// `fsync` on a folder, which makes its renames and removals durable.
    static func syncDirectory(_ path: String) throws(PlatformError) {
        let fd = try retryingOnEINTR("open \(path)") { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        _ = try syscallResult("fsync \(path)") { fsync(fd) }
    }
}
