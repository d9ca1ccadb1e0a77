// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Writes a `newc` cpio archive, the format the kernel unpacks as an
/// initramfs (`init/initramfs.c`, `do_header`): a 110-byte ASCII header of
/// the magic `070701` and thirteen 8-digit hex fields, the NUL-terminated
/// name, then the data, name and data each padded to 4 bytes.
///
/// Parent directories are emitted before their first entry, because the
/// kernel's unpacker creates files with `O_CREAT` but never directories
/// it was not given. A later entry of the same name replaces an earlier
/// one when unpacked, so callers can override what an image already has.
public struct CpioWriter: ~Copyable {
    private var out: ByteWriter
    private var nextInode: UInt32 = 1
    private var directories: Set<String> = [""]

    /// A writer that streams into `fd` (a memfd, a pipe), or into memory
    /// when `fd` is -1.
    public init(fd: Int32 = -1) {
        out = ByteWriter(fd: fd, flushThreshold: 1 << 20)
    }

    /// Bytes written so far (for a writer that streams, the total).
    public private(set) var size = 0

    /// A directory. Its parents are created with mode 0755 if missing.
    public mutating func directory(_ path: String, mode: UInt32 = 0o755) throws(VMError) {
        let name = try CpioWriter.entryName(path)
        guard !name.isEmpty else { return }
        try ensureParents(of: name)
        header(name: name, mode: 0o040000 | (mode & 0o7777), nlink: 2, size: 0)
        directories.insert(name)
    }

    /// A regular file with the given permission bits.
    public mutating func file(_ path: String, mode: UInt32, contents: UnsafeRawBufferPointer) throws(VMError) {
        let name = try CpioWriter.entryName(path)
        guard contents.count <= Int(UInt32.max) else {
            throw VMError(.badInput, "\(path): \(contents.count) bytes is more than a cpio archive can hold (4 GiB)")
        }
        try ensureParents(of: name)
        header(name: name, mode: 0o100000 | (mode & 0o7777), nlink: 1, size: contents.count)
        out.write(contents)
        pad(contents.count)
        size += contents.count
    }

    public mutating func file(_ path: String, mode: UInt32, bytes: [UInt8]) throws(VMError) {
        var failure: VMError?
        bytes.withUnsafeBytes { raw in
            do throws(VMError) { try file(path, mode: mode, contents: raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    public mutating func file(_ path: String, mode: UInt32, text: String) throws(VMError) {
        try file(path, mode: mode, bytes: Array(text.utf8))
    }

    /// A symbolic link; its data is the target without a terminating NUL.
    public mutating func symlink(_ path: String, target: String) throws(VMError) {
        let name = try CpioWriter.entryName(path)
        let data = Array(target.utf8)
        try ensureParents(of: name)
        header(name: name, mode: 0o120777, nlink: 1, size: data.count)
        out.write(data)
        pad(data.count)
        size += data.count
    }

    /// A character device node, such as `/dev/console` (5, 1).
    public mutating func characterDevice(_ path: String, mode: UInt32, major: UInt32, minor: UInt32) throws(VMError) {
        let name = try CpioWriter.entryName(path)
        try ensureParents(of: name)
        header(name: name, mode: 0o020000 | (mode & 0o7777), nlink: 1, size: 0, rdev: (major, minor))
    }

    /// Writes the `TRAILER!!!` entry and flushes. Returns the archive's
    /// size and, when writing into memory, its bytes (empty when streaming
    /// to a descriptor).
    public consuming func finish() -> (size: Int, bytes: [UInt8]) {
        header(name: "TRAILER!!!", mode: 0, nlink: 1, size: 0, inode: 0)
        let total = size
        return (total, out.finish())
    }

    /// The archive name for a guest path: relative, no `.`, `..` or empty
    /// components.
    static func entryName(_ path: String) throws(VMError) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                throw VMError(.badInput, "guest path \(path) must not contain '..'")
            }
            parts.append(part)
        }
        return parts.joined(separator: "/")
    }

    private mutating func ensureParents(of name: String) throws(VMError) {
        var missing: [String] = []
        var parent = name
        while let slash = parent.lastIndex(of: "/") {
            parent = String(parent[..<slash])
            if directories.contains(parent) { break }
            missing.append(parent)
        }
        for directory in missing.reversed() {
            header(name: directory, mode: 0o040755, nlink: 2, size: 0)
            directories.insert(directory)
        }
    }

    private mutating func header(
        name: String, mode: UInt32, nlink: UInt32, size fileSize: Int,
        rdev: (UInt32, UInt32) = (0, 0), inode: UInt32? = nil
    ) {
        let start = size
        out.write("070701")
        let ino = inode ?? nextInode
        if inode == nil { nextInode += 1 }
        let nameBytes = Array(name.utf8)
        let fields: [UInt32] = [
            ino, mode, 0, 0, nlink, 0, UInt32(fileSize),
            0, 0, rdev.0, rdev.1, UInt32(nameBytes.count + 1), 0,
        ]
        for field in fields { out.hex(UInt64(field), width: 8) }
        out.write(nameBytes)
        out.byte(0)
        size += 110 + nameBytes.count + 1
        pad(size - start)
    }

    /// Pads to a multiple of 4 after `count` bytes of header+name or data.
    private mutating func pad(_ count: Int) {
        let extra = (4 - count % 4) % 4
        for _ in 0..<extra { out.byte(0) }
        size += extra
    }
}
