// SPDX-License-Identifier: GPL-2.0-only
import Livepatch
import Platform
import Testing

/// The load-time run-pre check against a fake kernel: a `/proc/kcore` with
/// one segment of "kernel text", a `/proc/kallsyms`, and the livepatch
/// sysfs tree. The guest runs the same check against the real kernel
/// (BuildScenarioTests).
@Suite struct RunningCodeTests {
    static let base: UInt64 = 0xffff_ffff_8100_0000
    /// foo at +0x10: ftrace NOP5, body, a jump-label site (NOP5), ret.
    static let foo: [UInt8] = [0x0f, 0x1f, 0x44, 0x00, 0x00, 0x48, 0x89, 0xf8, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0xc3]
    static let record = """
        suture-runpre 1
        function vmlinux foo 0 replaced ..........4889f8..........c3
        site ftrace 0 5 e800000000
        site jumpLabel 8 5 0f1f440000

        """

    /// A fake tree whose text holds `code` at foo's address.
    static func tree(_ dir: String, code: [UInt8], patchedBy: String? = nil) throws -> KernelTree {
        let tree = KernelTree(root: dir)
        try FileSystem.makeDirectories(tree.proc)
        var text = [UInt8](repeating: 0xcc, count: 0x100)
        text.replaceSubrange(0x10..<(0x10 + code.count), with: code)
        try FileSystem.write(Path.join(tree.proc, "kcore"), Self.core(text, at: Self.base))
        try FileSystem.write(
            Path.join(tree.proc, "kallsyms"),
            "ffffffff81000000 T _text\nffffffff81000010 t foo\nffffffff81000010 t bar\t[mod]\n")
        try FileSystem.makeDirectories(tree.livepatch)
        if let patchedBy { try FileSystem.makeDirectories(Path.join(tree.patch(patchedBy), "vmlinux/foo,1")) }
        return tree
    }

    /// An ELF core file with one PT_LOAD segment.
    static func core(_ bytes: [UInt8], at address: UInt64) -> [UInt8] {
        func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
        var header: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        header += le(4, 2) + le(62, 2) + le(1, 4) + le(0, 8) + le(64, 8) + le(0, 8) + le(0, 4)
        header += le(64, 2) + le(56, 2) + le(1, 2) + le(0, 2) + le(0, 2) + le(0, 2)
        let program =
            le(1, 4) + le(7, 4) + le(120, 8) + le(address, 8) + le(0, 8) + le(UInt64(bytes.count), 8)
            + le(UInt64(bytes.count), 8) + le(4096, 8)
        return header + program + bytes
    }

    @Test func matchingCodeIsVerified() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let record = try RunPreRecord.parse(Self.record, file: "test.ko")
        #expect(record.functions.count == 1 && record.functions[0].sites.count == 2)
        let checks = RunningCodeCheck.check(record, tree: try Self.tree(dir.path, code: Self.foo))
        #expect(checks.map(\.status) == [.verified], "\(checks)")
        #expect(checks[0].detail.contains("masked: ftrace 1, jumpLabel 1"), "\(checks[0].detail)")
        #expect(!checks[0].detail.contains("switched"), "the static key is in its default state: \(checks[0].detail)")
    }

    @Test func differentCodeIsAMismatchAtItsOffset() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var code = Self.foo
        code[6] = 0x8b
        let checks = RunningCodeCheck.check(
            try RunPreRecord.parse(Self.record, file: "test.ko"), tree: try Self.tree(dir.path, code: code))
        #expect(checks.map(\.status) == [.mismatch])
        #expect(checks[0].detail.contains("offset 0x6") && checks[0].detail.contains("[8b]"), "\(checks[0].detail)")
    }

    @Test func rewrittenSitesReportTheirRunTimeState() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var code = Self.foo
        // ftrace calls out at the entry, and the static branch jumps.
        code.replaceSubrange(0..<5, with: [0xe8, 1, 2, 3, 4])
        code.replaceSubrange(8..<13, with: [0xe9, 0, 0, 0, 0])
        let record = try RunPreRecord.parse(Self.record, file: "test.ko")
        let traced = RunningCodeCheck.check(record, tree: try Self.tree(dir.path, code: code))
        #expect(traced.map(\.status) == [.verified])
        #expect(
            traced[0].detail.contains("traced by ftrace")
                && traced[0].detail.contains("static key at +0x8 switched from its default (now jumps)"))
        let other = try TemporaryDirectory()
        defer { other.remove() }
        let patched = RunningCodeCheck.check(
            record, tree: try Self.tree(other.path, code: code, patchedBy: "livepatch_first"))
        #expect(patched.map(\.status) == [.alreadyPatched])
        #expect(patched[0].detail.contains("already patched by livepatch_first"), "\(patched[0].detail)")
    }

    @Test func withoutKcoreNothingIsVerified() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try Self.tree(dir.path, code: Self.foo)
        try FileSystem.removeFile(Path.join(tree.proc, "kcore"))
        let checks = RunningCodeCheck.check(try RunPreRecord.parse(Self.record, file: "test.ko"), tree: tree)
        #expect(checks.map(\.status) == [.unavailable])
    }

    @Test func moduleFunctionsOfAnAbsentModuleAreNotLoaded() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let text = "suture-runpre 1\nfunction other baz 0 referenced c3\nfunction mod bar 0 replaced ..\n"
        let checks = RunningCodeCheck.check(
            try RunPreRecord.parse(text, file: "test.ko"), tree: try Self.tree(dir.path, code: Self.foo))
        #expect(checks.map(\.status) == [.notLoaded, .verified], "\(checks)")
    }

    @Test func placesFindTheCodeWithoutReadingAllOfKallsyms() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try Self.tree(dir.path, code: Self.foo)
        let sections = Path.join(tree.module("mod"), "sections")
        try FileSystem.makeDirectories(sections)
        try FileSystem.write(Path.join(sections, ".text"), "0xffffffff81000008\n")
        // The image was linked 16 MiB lower than the running kernel's _text;
        // kallsyms names the function nothing the record knows.
        try FileSystem.write(
            Path.join(tree.proc, "kallsyms"), "0000000000000000 A fixed_percpu_data\nffffffff81000000 T _text\n")
        let text = """
            suture-runpre 1
            image-text 0xffffffff80000000
            function vmlinux renamed 0 replaced ..........4889f8..........c3 0xffffffff80000010
            function mod other 0 replaced 4889f8 .text+13
            function absent gone 0 replaced c3 .text+0

            """
        let checks = RunningCodeCheck.check(try RunPreRecord.parse(text, file: "test.ko"), tree: tree)
        #expect(checks.map(\.status) == [.verified, .verified, .notLoaded], "\(checks)")
    }

    @Test func malformedRecordsAreRefused() {
        for text in [
            "suture-runpre 2\n", "suture-runpre 1\nfunction vmlinux foo x replaced c3\n",
            "suture-runpre 1\nfunction vmlinux foo 0 replaced c\n", "suture-runpre 1\nfunction vmlinux foo 0 r zz\n",
            "suture-runpre 1\nsite ftrace 0 5\n", "suture-runpre 1\nfunction vmlinux foo 0 r c3\nsite ftrace 0 5\n",
            "suture-runpre 1\nbogus\n", "suture-runpre 1\nimage-text 1234\n",
            "suture-runpre 1\nfunction vmlinux foo 0 r c3c3\nsite ftrace 0 2 c3\n",
        ] {
            #expect(throws: LivepatchError.self, "\(text)") { try RunPreRecord.parse(text, file: "test.ko") }
        }
    }
}
