// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import TargetKernel
import Testing

@Suite struct ManifestTests {
    /// A small tree: two folders, three files, a symlink.
    func makeTree() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory(prefix: "suture-manifest")
        try FileSystem.makeDirectories(Path.join(dir.path, "kernel/sched"))
        try FileSystem.write(Path.join(dir.path, "Makefile"), "VERSION = 6\n")
        try FileSystem.write(Path.join(dir.path, "kernel/sched/rt.c"), "int rt;\n")
        try FileSystem.write(Path.join(dir.path, "kernel/sched/build_policy.c"), "#include \"rt.c\"\n", mode: 0o755)
        try FileSystem.symlink(target: "sched/rt.c", at: Path.join(dir.path, "kernel/link.c"))
        return dir
    }

    @Test func anUntouchedTreeVerifies() throws {
        let dir = try makeTree()
        let manifest = try TreeManifest.record(dir.path)
        #expect(
            manifest.entries.map(\.path) == [
                "Makefile", "kernel", "kernel/link.c", "kernel/sched", "kernel/sched/build_policy.c",
                "kernel/sched/rt.c",
            ])
        #expect(try manifest.verify(dir.path).isEmpty)
    }

    @Test func sameSizeWritesAreCaughtEvenWithTheMtimeRestored() throws {
        let dir = try makeTree()
        let file = Path.join(dir.path, "kernel/sched/rt.c")
        let before = try FileSystem.status(file)
        let manifest = try TreeManifest.record(dir.path)
        Clock.sleep(seconds: 0.01)
        try FileSystem.write(file, "int RT;\n")
        var times = [before.st_atim, before.st_mtim]
        #expect(utimensat(AT_FDCWD, file, &times, 0) == 0)
        #expect(try FileSystem.status(file).st_mtim.tv_nsec == before.st_mtim.tv_nsec)
        let differences = try manifest.verify(dir.path)
        #expect(differences == [TreeManifest.Difference(path: "kernel/sched/rt.c", kind: .changed)])
    }

    @Test func addedRemovedAndReplacedEntriesAreListed() throws {
        let dir = try makeTree()
        let manifest = try TreeManifest.record(dir.path)
        try FileSystem.write(Path.join(dir.path, "kernel/sched/new.o"), "object\n")
        try FileSystem.removeFile(Path.join(dir.path, "Makefile"))
        // Same contents, new inode: what `sed -i` or an editor's save does.
        let policy = Path.join(dir.path, "kernel/sched/build_policy.c")
        let bytes = try FileSystem.read(policy)
        try FileSystem.removeFile(policy)
        try FileSystem.write(policy, bytes, mode: 0o755)
        let differences = Set(try manifest.verify(dir.path).map(\.description))
        #expect(differences == ["added kernel/sched/new.o", "removed Makefile", "changed kernel/sched/build_policy.c"])
    }

    @Test func readOnlyRecordingDropsWriteBitsAndKeepsExecuteBits() throws {
        let dir = try makeTree()
        let manifest = try TreeManifest.record(dir.path, makeReadOnly: true)
        let modes = Dictionary(uniqueKeysWithValues: manifest.entries.map { ($0.path, $0.mode) })
        #expect(modes["Makefile"] == 0o444)
        #expect(modes["kernel/sched/build_policy.c"] == 0o555)
        #expect(modes["kernel/sched"] == 0o555)
        #expect(try FileSystem.status(Path.join(dir.path, "kernel")).st_mode & 0o777 == 0o555)
        // Recording again changes nothing, so the manifest still holds.
        #expect(try manifest.verify(dir.path).isEmpty)
    }

    @Test func serializationRoundTrips() throws {
        let dir = try makeTree()
        let manifest = try TreeManifest.record(dir.path)
        let parsed = try TreeManifest.parse(manifest.serialized(), path: "m")
        #expect(parsed == manifest)
    }

    @Test func malformedManifestsNameTheLine() {
        let bad = Array("f 420 1 2 3 4 ok\nf 420 x 2 3 4 broken\n".utf8)
        let error = #expect(throws: KernelError.self) { try TreeManifest.parse(bad, path: "/cache/manifest") }
        #expect(error?.message == "/cache/manifest:2: malformed manifest line")
        let missing = #expect(throws: KernelError.self) { try TreeManifest.record("/nonexistent/tree") }
        #expect(missing?.message.contains("/nonexistent/tree") == true)
    }
}
