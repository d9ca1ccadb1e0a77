// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import KernelPatch
import Platform
import TargetKernel
import Testing

/// A diff is hostile input: its file names must never make `suture build`
/// (which runs as root) write outside its scratch folder or into the cached
/// tree. Each name is refused, naming the line, before anything is copied.
@Suite(.serialized) struct HostileDiffTests {
    static let hostile: [(name: String, header: String, mentions: String)] = [
        ("dot-dot", "--- a/../../x/y.h\n+++ b/../../x/y.h\n", "line 1"),
        ("dot-dot-old", "--- a/../../x/y.h\n+++ b/fs/proc/cmdline.c\n", "line 1"),
        ("absolute", "--- /etc/suture-x.h\n+++ /etc/suture-x.h\n", "absolute"),
        ("absolute-after-strip", "--- a//etc/suture-x.h\n+++ b//etc/suture-x.h\n", "empty"),
        ("index", "Index: ../../x/y.h\n--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n", "line 1"),
        (
            "git", "diff --git a/fs/proc/cmdline.c b/../x.c\n--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n",
            "line 1"
        ),
        (
            "git-rename",
            "diff --git a/fs/proc/cmdline.c b/fs/proc/x.c\nrename from fs/proc/cmdline.c\nrename to ../x.c\n", "line 2"
        ),
        (
            "git-symlink",
            "diff --git a/fs/proc/x.h b/fs/proc/x.h\nnew mode 120000\n--- a/fs/proc/x.h\n+++ b/fs/proc/x.h\n",
            "symbolic"
        ),
        ("quoted", "--- \"a/fs/proc/x\\n.h\"\n+++ \"b/fs/proc/x\\n.h\"\n", "quoted"),
    ]

    @Test(arguments: 0..<hostile.count) func hostileNameIsRefusedWithItsLine(_ index: Int) throws {
        let (name, header, mentions) = Self.hostile[index]
        let dir = try TemporaryDirectory(prefix: "suture-hostile")
        defer { dir.remove() }
        let path = Path.join(dir.path, "\(name).diff")
        try FileSystem.write(path, header + "@@ -1,1 +1,1 @@\n-a\n+b\n")
        do {
            _ = try SourceDiff(path: path)
            Issue.record("\(name): accepted")
        } catch {
            #expect(error.kind == .refused, "\(name): \(error)")
            #expect(error.message.contains(path), "\(error.message)")
            #expect(error.message.contains(mentions), "\(name): '\(mentions)' not in \(error.message)")
        }
    }

    @Test func ordinaryNamesAreAccepted() throws {
        let dir = try TemporaryDirectory(prefix: "suture-hostile")
        defer { dir.remove() }
        let path = Path.join(dir.path, "fine.diff")
        // A removed line that starts with "-- " looks like a header; its name is harmless.
        try FileSystem.write(
            path,
            "diff --git a/fs/proc/cmdline.c b/fs/proc/cmdline.c\nindex 1..2 100644\n--- a/fs/proc/cmdline.c\t2024-01-01\n+++ b/fs/proc/cmdline.c\t2024-01-01\n@@ -1,1 +1,1 @@\n-a\n+b\n"
        )
        let diff = try SourceDiff(path: path)
        #expect(diff.files == ["fs/proc/cmdline.c"])
    }

    /// The names are checked against the tree too: a symbolic link on the way
    /// (here one planted in a copy of a tree) would let the copy read or
    /// write elsewhere.
    @Test func symlinkedComponentIsRefused() throws {
        let dir = try TemporaryDirectory(prefix: "suture-hostile")
        defer { dir.remove() }
        let root = Path.join(dir.path, "source")
        let outside = Path.join(dir.path, "outside")
        try FileSystem.makeDirectories(Path.join(root, "fs/proc"))
        try FileSystem.makeDirectories(outside)
        try FileSystem.write(Path.join(outside, "x.h"), "secret\n")
        try FileSystem.write(Path.join(root, "fs/proc/cmdline.c"), "int a;\n")
        try FileSystem.symlink(target: outside, at: Path.join(root, "fs/link"))
        try FileSystem.symlink(target: Path.join(outside, "x.h"), at: Path.join(root, "fs/proc/file.h"))
        try DiffNames.requireInside(root: root, file: "fs/proc/cmdline.c", diff: "d")
        for file in ["fs/link/x.h", "fs/proc/file.h"] {
            #expect(throws: BuildError.self, "\(file)") {
                try DiffNames.requireInside(root: root, file: file, diff: "d")
            }
        }
        do {
            try DiffNames.requireInside(root: root, file: "fs/link/x.h", diff: "d")
        } catch {
            #expect(error.message.contains("symbolic link (fs/link)"), "\(error.message)")
        }
    }

    /// End to end: `suture build` refuses before writing anywhere, the
    /// target outside the scratch folder does not appear and the cached tree
    /// stays pristine (checked by `refuse`).
    @Test func buildWritesNothingForAnEscapingName() throws {
        let dir = try TemporaryDirectory(prefix: "suture-hostile")
        defer { dir.remove() }
        // Relative to a scratch folder under $TMPDIR: ../../<dir>/escaped.h
        let escaped = Path.join(dir.path, "escaped.h")
        let name = "../.." + escaped
        let diff = Path.join(dir.path, "escape.diff")
        try FileSystem.write(diff, "--- a/\(name)\n+++ b/\(name)\n@@ -0,0 +1,1 @@\n+int x;\n")
        let message = try BuildRefusalTests.refuse(
            [diff], code: "build-refused", mentions: ["escape.diff line 1", ".."])
        #expect(!message.isEmpty)
        #expect(!FileSystem.exists(escaped), "the build wrote outside its scratch folder")
        let absolute = Path.join(dir.path, "absolute.diff")
        try FileSystem.write(absolute, "--- \(escaped)\n+++ \(escaped)\n@@ -0,0 +1,1 @@\n+int x;\n")
        try BuildRefusalTests.refuse([absolute], code: "build-refused", mentions: ["absolute.diff line 1", "absolute"])
        #expect(!FileSystem.exists(escaped), "the build wrote outside its scratch folder")
    }
}

/// The cache of original objects keeps a SHA-256 of each: a copy changed
/// behind Suture's back is not taken for the running code.
@Suite struct OriginalObjectCacheTests {
    @Test func anAlteredObjectIsNotUsed() throws {
        let dir = try TemporaryDirectory(prefix: "suture-objects")
        defer { dir.remove() }
        let cache = OriginalObjectCache(directory: Path.join(dir.path, "cache"))
        let built = Path.join(dir.path, "cmdline.o")
        try FileSystem.write(built, "original object\n")
        try cache.store(object: "fs/proc/cmdline.o", from: built, command: "gcc -c")
        let entry = try #require(cache.object("fs/proc/cmdline.o"))
        #expect(entry.command == "gcc -c")
        #expect(try FileSystem.readText(entry.path) == "original object\n")

        try FileSystem.write(entry.path, "altered object!\n")
        #expect(cache.object("fs/proc/cmdline.o") == nil, "an altered cached object was used")
        try cache.store(object: "fs/proc/cmdline.o", from: built, command: "gcc -c")
        try FileSystem.removeFile(entry.path + ".sha256")
        #expect(cache.object("fs/proc/cmdline.o") == nil, "a cached object without digest was used")
    }
}
