// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import TargetKernel
import TestSupport
import Testing

/// The build-time run-pre check on the host: the original code of the
/// patched functions against the code the target ships. A hand-made
/// neighbouring version (a copy of the pristine source in which the
/// function proc-string patches computes differently) is refused, naming
/// the function; a function that did not change in it passes.
@Suite(.serialized) struct RunPreTests {
    static let fixtures = Path.join(Path.directory(of: #filePath), "../Fixtures/kernel")

    /// The divergent copy, made once per release at a fixed place so that
    /// its prepared tree (keyed by path, size and mtime) is reused by
    /// later runs.
    static func divergentSource() throws -> String {
        let kernel = try KernelResolver().defaultTarget()
        let copy = "/tmp/suture-runpre-divergent-\(kernel.release)"
        let done = Path.join(copy, ".suture-divergent")
        if FileSystem.exists(done) { return copy }
        let tree = try #require(
            try TreeCache().prepare(kernel).tree, "no prepared tree of \(kernel.release)")
        if FileSystem.exists(copy) { _ = try Command.output(["rm", "-rf", copy]) }
        try FileSystem.makeDirectories(copy)
        _ = try Command.output([
            "sh", "-c", "tar -C \"$1\" --exclude=./_build -cf - . | tar -C \"$2\" -xf -", "sh",
            tree.sourceDirectory, copy,
        ])
        let file = Path.join(copy, "fs/proc/loadavg.c")
        let text = try FileSystem.readText(file)
        let changed = text.replacing("nr_running(), nr_threads,", with: "nr_running(), nr_threads + 1,")
        try #require(changed != text, "fs/proc/loadavg.c no longer has the line the divergence changes")
        try FileSystem.write(file, changed)
        try FileSystem.write(done, "")
        return copy
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
        let source = try Self.divergentSource()
        try BuildRefusalTests.refuse(
            ["--source", source, Path.join(Self.fixtures, "proc-string/patch.diff")], code: "build-code-mismatch",
            mentions: ["loadavg_proc_show", "fs/proc/loadavg.o", "at offset 0x", "original: ", "shipped:  "])
    }

    @Test func unchangedFunctionOfTheNeighbourPasses() throws {
        let source = try Self.divergentSource()
        let (json, _, _) = try Self.build(["--source", source, Path.join(Self.fixtures, "static-data/patch.diff")])
        #expect(json["verification"]?["status"]?.stringValue == "verified", "\(json)")
        let functions = json["verification"]?["functions"]?.arrayValue ?? []
        #expect(functions.contains { $0["role"]?.stringValue == "replaced" }, "\(functions)")
    }

    @Test func noVerifySkipsTheCheckAndSaysWhat() throws {
        let source = try Self.divergentSource()
        let (json, stderr, module) = try Self.build([
            "--source", source, "--no-verify", Path.join(Self.fixtures, "proc-string/patch.diff"),
        ])
        #expect(json["verification"]?["status"]?.stringValue == "skipped", "\(json)")
        #expect(stderr.contains("--no-verify") && stderr.contains("not compared"), "\(stderr)")
        let file = try ELFFile.open(try #require(module))
        #expect(file.section(named: ".suture.runpre") == nil, "a skipped check recorded expected code")
    }

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
