// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import SystemPackage

/// File-system helpers over POSIX calls, each failure carrying the path.
public enum FileSystem {
    /// Reads a whole file. Works for `/proc` and `/sys` files whose size is 0.
    /// `stop`, when given, is asked after each chunk whether what was read
    /// so far is enough (for a long generated file such as
    /// `/proc/kallsyms`, whose start is all that is wanted).
    public static func read(_ path: String, stop: (([UInt8]) -> Bool)? = nil) throws(PlatformError) -> [UInt8] {
        let fd = try retryingOnEINTR("open \(path)") { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try retryingOnEINTR("read \(path)") {
                chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
            if let stop, stop(result) { break }
        }
        return result
    }

    /// Reads a whole file as UTF-8 text (invalid bytes are replaced).
    public static func readText(_ path: String) throws(PlatformError) -> String {
        String(decoding: try read(path), as: UTF8.self)
    }

    /// Reads a file if it exists and is readable, else nil.
    public static func readTextIfPresent(_ path: String) -> String? {
        try? readText(path)
    }

    /// Writes `bytes` to `path` through a temporary file and `rename(2)`, so
    /// readers never see a partial file (see `AtomicFile`).
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(PlatformError) {
        try AtomicFile.write(path, bytes, mode: mode)
    }

    /// Creates or truncates `path` and writes `bytes`.
    public static func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(PlatformError) {
        let fd = try retryingOnEINTR("create \(path)") {
            open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        }
        defer { close(fd) }
        try writeAll(fd: fd, bytes, context: path)
    }

    public static func write(_ path: String, _ text: String, mode: mode_t = 0o644) throws(PlatformError) {
        try write(path, Array(text.utf8), mode: mode)
    }

    /// Writes all of `bytes` to `fd`, retrying short writes and `EINTR`.
    public static func writeAll(fd: Int32, _ bytes: [UInt8], context: String) throws(PlatformError) {
        var failure: PlatformError?
        bytes.withUnsafeBytes { raw in
            do throws(PlatformError) {
                try writeAll(fd: fd, raw, context: context)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }

    public static func writeAll(fd: Int32, _ raw: UnsafeRawBufferPointer, context: String) throws(PlatformError) {
        var offset = 0
        while offset < raw.count {
            let n = try retryingOnEINTR("write \(context)") {
                Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
            }
            offset += n
        }
    }

    /// Kinds of directory entries.
    public enum Kind: Sendable { case file, directory, symlink, other, missing }

    /// The kind of `path`, not following a final symlink.
    public static func kind(_ path: String) -> Kind {
        var st = stat()
        guard lstat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        case S_IFLNK: return .symlink
        default: return .other
        }
    }

    /// Whether `path` exists, following symlinks.
    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Whether `path` is a directory, following symlinks.
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Status of a path, following symlinks.
    public static func status(_ path: String) throws(PlatformError) -> stat {
        var st = stat()
        _ = try syscallResult("stat \(path)") { stat(path, &st) }
        return st
    }

    /// Names in a directory, without `.` and `..`, sorted.
    public static func list(_ path: String) throws(PlatformError) -> [String] {
        guard let dir = opendir(path) else {
            throw PlatformError(.systemCall, errno: currentErrno(), "open directory \(path)")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// `mkdir -p`.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(PlatformError) {
        if isDirectory(path) { return }
        let parent = Path.directory(of: path)
        if parent != path && !parent.isEmpty { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0 {
            let err = currentErrno()
            if err == .fileExists && isDirectory(path) { return }
            throw PlatformError(.systemCall, errno: err, "mkdir \(path)")
        }
    }

    /// `rm -rf`: removes a file or a whole tree; a missing path is fine.
    public static func removeTree(_ path: String) throws(PlatformError) {
        switch kind(path) {
        case .missing: return
        case .directory:
            // Make sure we can descend and delete even read-only trees.
            chmod(path, 0o700)
            for name in try list(path) {
                try removeTree(path + "/" + name)
            }
            _ = try syscallResult("rmdir \(path)") { rmdir(path) }
        default:
            _ = try syscallResult("unlink \(path)") { unlink(path) }
        }
    }

    /// `rename(2)`.
    public static func rename(_ from: String, _ to: String) throws(PlatformError) {
        _ = try syscallResult("rename \(from) to \(to)") { Glibc.rename(from, to) }
    }

    /// `unlink(2)`; a missing file is fine.
    public static func removeFile(_ path: String) throws(PlatformError) {
        if unlink(path) != 0 && currentErrno() != .noSuchFileOrDirectory {
            throw PlatformError(.systemCall, errno: currentErrno(), "unlink \(path)")
        }
    }

    /// `symlink(2)`.
    public static func symlink(target: String, at path: String) throws(PlatformError) {
        _ = try syscallResult("symlink \(path)") { Glibc.symlink(target, path) }
    }

    /// `readlink(2)`.
    public static func readLink(_ path: String) throws(PlatformError) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = try syscallResult("readlink \(path)") { readlink(path, &buffer, buffer.count) }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `realpath(3)`.
    public static func realPath(_ path: String) throws(PlatformError) -> String {
        guard let resolved = realpath(path, nil) else {
            throw PlatformError(.systemCall, errno: currentErrno(), "resolve \(path)")
        }
        defer { free(resolved) }
        return string(fromCString: resolved)
    }

    /// `chmod(2)`.
    public static func setMode(_ path: String, _ mode: mode_t) throws(PlatformError) {
        _ = try syscallResult("chmod \(path)") { chmod(path, mode) }
    }

    /// Copies a regular file, keeping its permission bits.
    public static func copyFile(_ from: String, _ to: String) throws(PlatformError) {
        let st = try status(from)
        try write(to, try read(from), mode: st.st_mode & 0o7777)
        _ = chmod(to, st.st_mode & 0o7777)
    }

    /// The current working directory.
    public static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return "." }
        return buffer.withUnsafeBufferPointer { string(fromCString: $0.baseAddress!) }
    }

    /// An environment variable, or nil.
    public static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return string(fromCString: value)
    }
}

/// Path string helpers, in the style of `dirname`/`basename`.
public enum Path {
    public static func directory(of path: String) -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        if slash == p.startIndex { return "/" }
        return String(p[..<slash])
    }

    public static func base(of path: String) -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        guard let slash = p.lastIndex(of: "/") else { return p }
        return String(p[p.index(after: slash)...])
    }

    public static func join(_ parts: String...) -> String {
        join(parts)
    }

    public static func join(_ parts: [String]) -> String {
        var result = ""
        for part in parts where !part.isEmpty {
            if part.hasPrefix("/") || result.isEmpty {
                result = part
            } else if result.hasSuffix("/") {
                result += part
            } else {
                result += "/" + part
            }
        }
        return result
    }

    /// Makes `path` absolute against the current directory.
    public static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : join(FileSystem.currentDirectory(), path)
    }
}

/// A private temporary directory, removed by `remove()` or at process exit
/// through the cleanup registry.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String
    private var removed = false
    private let cleanupToken: Int

    public init(prefix: String = "suture") throws(PlatformError) {
        let base = FileSystem.environment("TMPDIR") ?? "/tmp"
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw PlatformError(.systemCall, errno: currentErrno(), "mkdtemp in \(base)")
        }
        let created = string(fromCString: made)
        path = created
        cleanupToken = Cleanup.register { try? FileSystem.removeTree(created) }
    }

    public func remove() {
        guard !removed else { return }
        removed = true
        try? FileSystem.removeTree(path)
        Cleanup.unregister(cleanupToken)
    }

    /// Leaves the directory in place, also at exit (`suture build --keep-tmp`).
    public func keep() {
        guard !removed else { return }
        removed = true
        Cleanup.unregister(cleanupToken)
    }

    deinit { remove() }
}

/// A Swift String from a NUL-terminated C string.
public func string(fromCString pointer: UnsafePointer<CChar>) -> String {
    let length = strlen(pointer)
    return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
    }
}
