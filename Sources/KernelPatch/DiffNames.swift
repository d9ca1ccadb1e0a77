// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// The file names a diff gives, checked before anything touches the file
/// system.
///
/// A diff is hostile input and Suture runs as root: a name such as
/// `+++ b/../../etc/x` or `+++ /etc/x` would otherwise make the copy into the
/// scratch folder, or `patch` itself, write outside it. GNU patch refuses
/// some of these on its own, but only when it runs, after the touched files
/// were already copied. So every name a header line carries (`---`, `+++`,
/// `Index:`, `diff --git`) must be a plain relative path inside the tree:
/// no leading `/`, no empty, `.` or `..` component, no quoting and no
/// control characters. Git headers that rename, copy or make symlinks are
/// refused outright: a live patch can carry none of them.
public enum DiffNames {
    /// The reason a header line of `diff` is unsafe, naming the line, or nil.
    public static func problem(in line: Substring, lineNumber: Int, diff: String) -> String? {
        func refuse(_ why: String) -> String {
            "\(diff) line \(lineNumber): \(Printable.escaped(String(line.prefix(200)))): \(why)"
        }
        for prefix in ["rename from ", "rename to ", "copy from ", "copy to ", "GIT binary patch"]
        where line.hasPrefix(prefix) {
            return refuse("renamed, copied and binary files cannot be live-patched")
        }
        for prefix in ["new mode ", "old mode ", "new file mode ", "deleted file mode "] where line.hasPrefix(prefix) {
            if line.hasSuffix("120000") { return refuse("symbolic links cannot be live-patched") }
        }
        var names: [Substring] = []
        if line.hasPrefix("--- ") || line.hasPrefix("+++ ") {
            names = [field(line.dropFirst(4))]
        } else if line.hasPrefix("Index: ") {
            names = [field(line.dropFirst(7))]
        } else if line.hasPrefix("diff --git ") {
            names = line.dropFirst(11).split(separator: " ", omittingEmptySubsequences: true)
        } else {
            return nil
        }
        for name in names {
            if let why = unsafeName(name) { return refuse(why) }
        }
        return nil
    }

    /// Why `name` (as written, before `-p1`) is unsafe, or nil.
    static func unsafeName(_ name: Substring) -> String? {
        if name == "/dev/null" { return nil }
        if name.isEmpty { return "the file name is empty" }
        if name.hasPrefix("\"") { return "quoted file names are not supported" }
        if name.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f || $0 == UInt8(ascii: "\\") }) {
            return "the file name has a control character or backslash"
        }
        if name.hasPrefix("/") {
            return "absolute file names are not allowed; names must be relative to the source tree"
        }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        if parts.contains(where: { $0 == ".." }) { return "a `..` component leaves the source tree" }
        if parts.contains(where: { $0.isEmpty || $0 == "." }) { return "the file name has an empty or `.` component" }
        // `-p1` strips the first component; something must be left.
        if parts.count < 2 { return "the file name has no directory prefix to strip (the diff must be -p1, a/… b/…)" }
        return nil
    }

    /// The name part of a `---`/`+++`/`Index:` field: up to a tab, trailing
    /// spaces dropped.
    static func field(_ text: Substring) -> Substring {
        var name = text.prefix { $0 != "\t" }
        while name.hasSuffix(" ") { name = name.dropLast() }
        return name
    }

    /// Checks every header line of a diff; throws naming the first unsafe one.
    public static func validate(_ bytes: [UInt8], diff: String) throws(BuildError) {
        var number = 0
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let trimmed = line.hasSuffix("\r") ? line.dropLast() : line
            if let why = problem(in: trimmed, lineNumber: number, diff: diff) {
                throw BuildError(.refused, "refusing the diff: \(why)")
            }
        }
    }

    /// Refuses `file` (a tree path from a diff) unless every component of it
    /// under `root` is a real directory and the last a regular file: a
    /// symbolic link anywhere on the way could point out of the tree.
    public static func requireInside(root: String, file: String, diff: String) throws(BuildError) {
        var path = root
        let parts = file.split(separator: "/", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() {
            path += "/" + part
            var st = stat()
            if lstat(path, &st) != 0 {
                if errno == ENOENT { return }  // reported as missing by the caller
                throw BuildError(.io, "cannot check \(path): \(currentErrno().shortDescription)")
            }
            let type = st.st_mode & S_IFMT
            let last = index == parts.count - 1
            if type == S_IFLNK {
                throw BuildError(
                    .refused,
                    "refusing \(diff): \(file) passes through a symbolic link (\(parts[0...index].joined(separator: "/"))) in the source tree"
                )
            }
            if last ? type != S_IFREG : type != S_IFDIR {
                throw BuildError(
                    .refused,
                    "refusing \(diff): \(parts[0...index].joined(separator: "/")) is not a \(last ? "regular file" : "directory") in the source tree"
                )
            }
        }
    }
}
