// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import TargetKernel
import TestSupport
import Testing

/// The build-time run-pre check on the host: the original code of the
/// patched functions against the code the target ships. A hand-made
/// neighbouring version (`--source-diff`: the pristine fs/proc/loadavg.c
/// with one line of the function proc-string patches computing
/// differently) is refused, naming the function; a function that did not
/// change in it passes. (A real neighbouring Debian version:
/// CorpusSliceTests.)
@Suite(.serialized) struct RunPreTests {
    static let fixtures = Path.join(Path.directory(of: #filePath), "../Fixtures/kernel")

    /// The divergence as a diff of the default target's pristine source,
    /// written into `dir`.
    static func divergence(in dir: TemporaryDirectory) throws -> String {
        let kernel = try KernelResolver().defaultTarget()
        let tree = try TreeCache().prepare(kernel).tree
        let text = try FileSystem.readText(Path.join(tree.sourceDirectory, "fs/proc/loadavg.c"))
        let changed = text.replacing("nr_running(), nr_threads,", with: "nr_running(), nr_threads + 1,")
        try #require(changed != text, "fs/proc/loadavg.c no longer has the line the divergence changes")
        let (a, b) = (Path.join(dir.path, "loadavg.a"), Path.join(dir.path, "loadavg.b"))
        try FileSystem.write(a, text)
        try FileSystem.write(b, changed)
        let run = try Command.run([
            "diff", "-u", "--label", "a/fs/proc/loadavg.c", "--label", "b/fs/proc/loadavg.c", a, b,
        ])
        try #require(run.termination == .exited(1), "diff failed: \(run.stderrText)")
        let path = Path.join(dir.path, "divergence.diff")
        try FileSystem.write(path, run.stdoutText)
        return path
    }

    static func build(_ arguments: [String]) throws -> (json: JSON, stderr: String, module: String?) {
        let dir = try TemporaryDirectory(prefix: "suture-runpre")
        Cleanup.register { dir.remove() }
        let run = try Command.run(
            [try SutureBinary.checked(), "build", "--json", "-o", dir.path] + arguments, timeout: 900)
        try #require(run.termination == .exited(0), "suture build failed: \(run.stdoutText)\(run.stderrText)")
        let json = try JSON.parse(run.stdout)
        return (json, run.stderrText, json["module"]?.stringValue)
    }

    @Test func divergentFunctionIsRefusedNamingIt() throws {
        let dir = try TemporaryDirectory(prefix: "suture-runpre")
        defer { dir.remove() }
        let divergence = try Self.divergence(in: dir)
        try BuildRefusalTests.refuse(
            ["--source-diff", divergence, Path.join(Self.fixtures, "proc-string/patch.diff")],
            code: "build-code-mismatch",
            mentions: ["loadavg_proc_show", "fs/proc/loadavg.o", "at offset 0x", "original: ", "shipped:  "])
    }

    @Test func unchangedFunctionOfTheNeighbourPasses() throws {
        let dir = try TemporaryDirectory(prefix: "suture-runpre")
        defer { dir.remove() }
        let divergence = try Self.divergence(in: dir)
        let (json, _, _) = try Self.build([
            "--source-diff", divergence, Path.join(Self.fixtures, "static-data/patch.diff"),
        ])
        #expect(json["verification"]?["status"]?.stringValue == "verified", "\(json)")
        let functions = json["verification"]?["functions"]?.arrayValue ?? []
        #expect(functions.contains { $0["role"]?.stringValue == "replaced" }, "\(functions)")
        #expect(json["sourceDiffs"]?.arrayValue?.first?["path"]?.stringValue == divergence, "\(json)")
    }

    @Test func noVerifySkipsTheCheckAndSaysWhat() throws {
        let dir = try TemporaryDirectory(prefix: "suture-runpre")
        defer { dir.remove() }
        let divergence = try Self.divergence(in: dir)
        let (json, stderr, module) = try Self.build([
            "--source-diff", divergence, "--no-verify", Path.join(Self.fixtures, "proc-string/patch.diff"),
        ])
        #expect(json["verification"]?["status"]?.stringValue == "skipped", "\(json)")
        #expect(stderr.contains("--no-verify") && stderr.contains("not compared"), "\(stderr)")
        let file = try ELFFile.open(try #require(module))
        #expect(file.section(named: ".suture.runpre") == nil, "a skipped check recorded expected code")
    }

    @Test func sourceDiffThatDoesNotApplyIsNamed() throws {
        let fuzzy = Path.join(Self.fixtures, "fuzz-context/patch.diff")
        try BuildRefusalTests.refuse(
            ["--source-diff", fuzzy, Path.join(Self.fixtures, "proc-string/patch.diff")],
            code: "build-diff-does-not-apply", mentions: [fuzzy, "fs/proc/version.c", "Hunk #1 FAILED"])
    }

    /// The divergent builds cache their original objects apart from the
    /// pristine tree's: built after them (this suite runs in order), this
    /// would be refused otherwise.
    @Test func fixtureIsVerifiedAndItsModuleRecordsTheExpectedCode() throws {
        let (json, _, module) = try Self.build([Path.join(Self.fixtures, "proc-string/patch.diff")])
        let functions = json["verification"]?["functions"]?.arrayValue ?? []
        let show = try #require(functions.first { $0["function"]?.stringValue == "loadavg_proc_show" }, "\(json)")
        #expect(show["status"]?.stringValue == "verified")
        #expect(show["maskedSites"]?["ftrace"]?.intValue == 1, "\(show)")
        #expect((show["relocationBytes"]?.intValue ?? 0) > 0)
        let file = try ELFFile.open(try #require(module))
        let section = try #require(file.section(named: ".suture.runpre"))
        #expect(!section.isAllocated, "the record must not be loaded into the kernel")
        let text = String(decoding: file.data(section).array, as: UTF8.self)
        #expect(text.hasPrefix("suture-runpre 1\nimage-text 0x"), "\(text)")
        #expect(text.contains("\nfunction vmlinux loadavg_proc_show 0 replaced .........."), "\(text)")
        // The ftrace site, with the shipped call to __fentry__ (e8 rel32).
        #expect(text.contains("\nsite ftrace 0 5 e8"), "\(text)")
    }
}
