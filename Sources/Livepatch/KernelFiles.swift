// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// Reading and writing the small files of sysfs and procfs, where a file
/// may vanish between listing its folder and opening it.
enum KernelFiles {
    /// A whole attribute without surrounding white space, or nil when it is
    /// gone or unreadable (a patch freed, a task that exited).
    static func read(_ path: String) -> String? {
        guard let text = try? FileSystem.readText(path) else { return nil }
        return text.trimmingWhitespace()
    }

    /// An attribute parsed as an integer; nil when gone or not a number.
    static func integer(_ path: String) -> Int? {
        read(path).flatMap { Int($0) }
    }

    /// An attribute that holds `0` or `1`.
    static func flag(_ path: String) -> Bool? {
        integer(path).map { $0 != 0 }
    }

    /// Names in a folder; empty when it is gone.
    static func list(_ path: String) -> [String] {
        (try? FileSystem.list(path)) ?? []
    }

    /// Writes an attribute with one `write(2)`, as sysfs wants it. Unlike
    /// `FileSystem.write`, it never creates the file: a patch folder that
    /// vanished gives ENOENT.
    static func writeAttribute(_ path: String, _ text: String) throws(PlatformError) {
        let fd = try retryingOnEINTR("open \(path)") { open(path, O_WRONLY | O_TRUNC | O_CLOEXEC) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        _ = try retryingOnEINTR("write \(text.trimmingWhitespace()) to \(path)") {
            bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        }
    }

    /// The first `count` bytes of a file (fewer if it is shorter).
    static func readPrefix(_ path: String, count: Int) throws(PlatformError) -> [UInt8] {
        let fd = try retryingOnEINTR("open \(path)") { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: count)
        let n = try retryingOnEINTR("read \(path)") {
            buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, count) }
        }
        return Array(buffer[0..<n])
    }
}
