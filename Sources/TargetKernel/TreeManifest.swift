// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// A cheap fingerprint of every file and folder under a tree: type, mode,
/// size, modification and change times (nanoseconds) and inode.
///
/// It proves a prepared tree pristine without reading file contents: any
/// write changes the mtime and ctime, any replacement changes the inode, and
/// a write that restores the mtime by hand still changes the ctime. Checking
/// the 90,000 entries of a kernel tree takes a fraction of a second.
public struct TreeManifest: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        /// Path relative to the tree's root.
        public var path: String
        /// `d` folder, `f` file, `l` symlink, `o` other.
        public var type: UInt8
        public var mode: UInt32
        public var size: Int64
        public var mtime: Int64
        public var ctime: Int64
        public var inode: UInt64
    }

    /// One way in which a tree differs from its manifest.
    public struct Difference: Sendable, Equatable, CustomStringConvertible {
        public enum Kind: String, Sendable { case added, removed, changed }
        public var path: String
        public var kind: Kind
        public var description: String { "\(kind.rawValue) \(path)" }

        public init(path: String, kind: Kind) {
            self.path = path
            self.kind = kind
        }
    }

    /// Entries in walk order: depth first, names sorted bytewise.
    public let entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// Walks `root` and records every entry below it (not `root` itself).
    /// With `makeReadOnly`, write permission is removed from every file and
    /// folder first, so the recorded modes and ctimes are the final ones.
    public static func record(_ root: String, makeReadOnly: Bool = false) throws(KernelError) -> TreeManifest {
        var entries: [Entry] = []
        entries.reserveCapacity(100_000)
        try walk(root, makeReadOnly: makeReadOnly) { entries.append($0) }
        return TreeManifest(entries: entries)
    }

    /// The differences between `root` as it is now and this manifest
    /// (empty when pristine). At most `limit` are listed.
    public func verify(_ root: String, limit: Int = 20) throws(KernelError) -> [Difference] {
        var index = 0
        var inOrder = true
        var current: [Entry] = []
        current.reserveCapacity(entries.count)
        try TreeManifest.walk(root, makeReadOnly: false) { entry in
            if inOrder {
                if index < entries.count && entries[index] == entry {
                    index += 1
                    return
                }
                inOrder = false
                current.append(contentsOf: entries[0..<index])
            }
            current.append(entry)
        }
        if inOrder && index == entries.count { return [] }
        if inOrder { current = Array(entries[0..<index]) }
        return TreeManifest.differences(from: entries, to: current, limit: limit)
    }

    static func differences(from old: [Entry], to new: [Entry], limit: Int) -> [Difference] {
        var before: [String: Entry] = [:]
        for e in old { before[e.path] = e }
        var result: [Difference] = []
        var seen = Set<String>()
        for e in new {
            seen.insert(e.path)
            guard result.count < limit else { continue }
            if let was = before[e.path] {
                // A folder whose only change is its entry list shows up
                // through the added or removed entries themselves.
                if was != e
                    && !(e.type == UInt8(ascii: "d") && was.type == e.type && was.mode == e.mode
                        && was.inode == e.inode)
                {
                    result.append(Difference(path: e.path, kind: .changed))
                }
            } else {
                result.append(Difference(path: e.path, kind: .added))
            }
        }
        for e in old where !seen.contains(e.path) && result.count < limit {
            result.append(Difference(path: e.path, kind: .removed))
        }
        return result
    }

    // MARK: - Walking

    /// Calls `visit` for every entry under `root`, depth first, names
    /// sorted, using `fstatat` relative to open folder descriptors.
    static func walk(_ root: String, makeReadOnly: Bool, _ visit: (Entry) -> Void) throws(KernelError) {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw KernelError(.notPristine, "cannot open the tree \(root): \(currentErrno().shortDescription)")
        }
        try walkDirectory(fd, prefix: "", root: root, makeReadOnly: makeReadOnly, visit)
    }

    /// Walks the folder open at `fd` (and closes it).
    private static func walkDirectory(
        _ fd: Int32, prefix: String, root: String, makeReadOnly: Bool, _ visit: (Entry) -> Void
    ) throws(KernelError) {
        guard let dir = fdopendir(fd) else {
            close(fd)
            throw KernelError(.notPristine, "cannot read folder \(root)/\(prefix): \(currentErrno().shortDescription)")
        }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name == [46] || name == [46, 46] { continue }
            names.append(name)
        }
        names.sort { $0.lexicographicallyPrecedes($1) }
        for name in names {
            // Safety: `cName` is a NUL-terminated copy that outlives each call.
            let cName: [CChar] = name.map { CChar(bitPattern: $0) } + [0]
            var st = stat()
            let path = prefix + String(decoding: name, as: UTF8.self)
            guard fstatat(fd, cName, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw KernelError(.notPristine, "cannot stat \(root)/\(path): \(currentErrno().shortDescription)")
            }
            let format = st.st_mode & S_IFMT
            let type: UInt8 =
                format == S_IFDIR
                ? UInt8(ascii: "d")
                : format == S_IFREG
                    ? UInt8(ascii: "f")
                    : format == S_IFLNK ? UInt8(ascii: "l") : UInt8(ascii: "o")
            if makeReadOnly && type != UInt8(ascii: "l") && (st.st_mode & 0o222) != 0 {
                guard fchmodat(fd, cName, st.st_mode & 0o7555, 0) == 0,
                    fstatat(fd, cName, &st, AT_SYMLINK_NOFOLLOW) == 0
                else {
                    throw KernelError(
                        .prepareFailed, "cannot make \(root)/\(path) read-only: \(currentErrno().shortDescription)")
                }
            }
            visit(
                Entry(
                    path: path, type: type, mode: UInt32(st.st_mode & 0o7777), size: Int64(st.st_size),
                    mtime: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
                    ctime: Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec),
                    inode: UInt64(st.st_ino)))
            if type == UInt8(ascii: "d") {
                let child = openat(fd, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else {
                    throw KernelError(
                        .notPristine, "cannot open folder \(root)/\(path): \(currentErrno().shortDescription)")
                }
                try walkDirectory(child, prefix: path + "/", root: root, makeReadOnly: makeReadOnly, visit)
            }
        }
    }

    // MARK: - Storage

    /// One line per entry: `type mode size mtime ctime inode path`.
    public func serialized() -> [UInt8] {
        var out = ByteWriter()
        for e in entries {
            out.byte(e.type)
            out.byte(32)
            out.decimal(UInt64(e.mode))
            out.byte(32)
            out.decimal(e.size)
            out.byte(32)
            out.decimal(e.mtime)
            out.byte(32)
            out.decimal(e.ctime)
            out.byte(32)
            out.decimal(e.inode)
            out.byte(32)
            out.write(e.path)
            out.byte(10)
        }
        return out.finish()
    }

    /// Parses what `serialized()` wrote; `path` names the file in errors.
    public static func parse(_ bytes: [UInt8], path: String) throws(KernelError) -> TreeManifest {
        var entries: [Entry] = []
        entries.reserveCapacity(bytes.count / 60)
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count && bytes[end] != 10 { end += 1 }
            var fields: [Int64] = []
            var i = start + 2
            guard end - start > 2 else {
                throw KernelError(.notPristine, "\(path):\(lineNumber): truncated manifest line")
            }
            let type = bytes[start]
            while fields.count < 5 && i < end {
                var value: Int64 = 0
                var digits = 0
                while i < end && bytes[i] >= 48 && bytes[i] <= 57 {
                    value = value &* 10 &+ Int64(bytes[i] - 48)
                    i += 1
                    digits += 1
                }
                guard digits > 0, i < end, bytes[i] == 32 else {
                    throw KernelError(.notPristine, "\(path):\(lineNumber): malformed manifest line")
                }
                fields.append(value)
                i += 1
            }
            guard fields.count == 5, i < end else {
                throw KernelError(.notPristine, "\(path):\(lineNumber): malformed manifest line")
            }
            entries.append(
                Entry(
                    path: String(decoding: bytes[i..<end], as: UTF8.self), type: type,
                    mode: UInt32(truncatingIfNeeded: fields[0]), size: fields[1], mtime: fields[2],
                    ctime: fields[3], inode: UInt64(bitPattern: fields[4])))
            start = end + 1
        }
        return TreeManifest(entries: entries)
    }
}
