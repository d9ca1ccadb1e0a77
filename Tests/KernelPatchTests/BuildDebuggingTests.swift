// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TestSupport
import Testing

/// `suture build --keep-tmp`, `--verbose` and `--quiet`, on a diff that
/// stops the build at its first command (`patch`), so they run in seconds.
@Suite(.serialized) struct BuildDebuggingTests {
    /// proc-string with context from another kernel: `patch` refuses it.
    static func staleDiff(in dir: TemporaryDirectory) throws -> String {
        let good = try FileSystem.readText(Path.join(BuildRefusalTests.fixtures, "proc-string/patch.diff"))
        let bad = Path.join(dir.path, "stale.diff")
        try FileSystem.write(
            bad,
            good.replacingFirst("get_avenrun(avnrun, FIXED_1/200, 0);", with: "get_avenrun(avnrun, FIXED_1/100, 0);"))
        return bad
    }

    func build(_ arguments: [String], diff: String, output: String) throws -> CommandResult {
        let run = try Command.run(
            [try SutureBinary.checked(), "build", "-o", output] + arguments + [diff], timeout: 600)
        #expect(run.termination == .exited(1), "\(run.stderrText)")
        return run
    }

    @Test func verboseShowsEveryCommandAndKeepTmpKeepsTheScratchFolder() throws {
        let dir = try TemporaryDirectory(prefix: "suture-debugging")
        defer { dir.remove() }
        let diff = try Self.staleDiff(in: dir)
        let run = try build(["--verbose", "--keep-tmp"], diff: diff, output: Path.join(dir.path, "out"))
        let lines = run.stderrText.split(separator: "\n").map(String.init)
        // The dry run, quoted as a shell takes it.
        #expect(
            lines.contains {
                $0.hasPrefix("suture: run: patch -p1 --batch --forward --fuzz=0") && $0.contains("--dry-run")
            },
            "\(run.stderrText)")
        let kept = try #require(lines.first { $0.hasPrefix("suture: kept the scratch folder ") }, "\(run.stderrText)")
        let path = String(kept.dropFirst("suture: kept the scratch folder ".count))
        defer { try? FileSystem.removeTree(path) }
        #expect(FileSystem.isDirectory(path))
        #expect(FileSystem.isDirectory(Path.join(path, "sources")), "\((try? FileSystem.list(path)) ?? [])")
        #expect(!FileSystem.exists(Path.join(dir.path, "out")))
    }

    @Test func withoutKeepTmpTheScratchFolderGoes() throws {
        let dir = try TemporaryDirectory(prefix: "suture-debugging")
        defer { dir.remove() }
        let diff = try Self.staleDiff(in: dir)
        let run = try build([], diff: diff, output: dir.path)
        #expect(!run.stderrText.contains("suture: run:"))
        #expect(!run.stderrText.contains("kept the scratch folder"))
    }

    @Test func quietPrintsOnlyTheError() throws {
        let dir = try TemporaryDirectory(prefix: "suture-debugging")
        defer { dir.remove() }
        let diff = try Self.staleDiff(in: dir)
        let loud = try build([], diff: diff, output: dir.path)
        #expect(loud.stderrText.contains("suture: applying"), "\(loud.stderrText)")
        let quiet = try build(["--quiet"], diff: diff, output: dir.path)
        let lines = quiet.stderrText.split(separator: "\n")
        #expect(
            lines.first?.hasPrefix("suture: ") == true && quiet.stderrText.contains("Hunk #1 FAILED"),
            "\(quiet.stderrText)")
        #expect(!quiet.stderrText.contains("applying"), "\(quiet.stderrText)")
        #expect(!quiet.stderrText.contains("preparing"), "\(quiet.stderrText)")
        let both = try Command.run([try SutureBinary.checked(), "build", "--quiet", "--verbose", diff])
        #expect(both.termination == .exited(64))
    }
}
