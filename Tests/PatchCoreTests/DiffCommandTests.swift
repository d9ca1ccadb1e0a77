// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import TestSupport
import Testing

/// `suture diff` as users run it: output file, JSON, refusals and exit codes.
@Suite struct DiffCommandTests {
    @Test func writesThePatchObjectAndReportsJSON() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (original, patched) = try UserSpaceFixtureTests.build("new-function", in: dir.path)
        let out = Path.join(dir.path, "patch.o")
        let run = try Command.run([
            try SutureBinary.checked(), "diff", "--user-space", "--json", original, patched, "-o", out,
        ])
        #expect(run.termination == .exited(0), "\(run.stderrText)")
        let report = try JSON.parse(run.stdout)
        #expect(report.objectValue?.map(\.0) == ["functions", "data", "refusals", "included"])
        let statuses = Dictionary(
            uniqueKeysWithValues: (report["functions"]?.arrayValue ?? []).map {
                ($0["name"]!.stringValue!, $0["status"]!.stringValue!)
            })
        #expect(statuses["compute"] == "changed")
        #expect(statuses["adjust"] == "new")
        let patch = try ELFFile.open(out)
        #expect(patch.symbols.contains { $0.name == "adjust" && $0.isFunction && !$0.isUndefined })
        #expect(patch.section(named: ".suture.manifest") != nil)
    }

    @Test func refusalsExitOneAndWriteNothing() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (original, patched) = try UserSpaceFixtureTests.build("data-initializer", in: dir.path)
        let out = Path.join(dir.path, "patch.o")
        let text = try Command.run([try SutureBinary.checked(), "diff", "--user-space", original, patched, "-o", out])
        #expect(text.termination == .exited(1))
        #expect(text.stderrText.contains("limit: existing data in .data.limit"), "\(text.stderrText)")
        #expect(!FileSystem.exists(out))
        let json = try Command.run([
            try SutureBinary.checked(), "diff", "--user-space", "--json", original, patched, "-o", out,
        ])
        #expect(json.termination == .exited(1))
        let report = try JSON.parse(json.stdout)
        #expect(report["refusals"]?[0]?["symbol"]?.stringValue == "limit")
        // The same object carries the error, with the refusals by object.
        #expect(report["error"]?["code"]?.stringValue == "diff-refused", "\(json.stdoutText)")
        let refusal = report["error"]?["refusals"]?[0]
        #expect(refusal?["object"]?.stringValue == patched)
        #expect(refusal?["function"]?.stringValue == "limit")
        #expect(refusal?["reason"]?.stringValue?.contains("existing data") == true, "\(json.stdoutText)")
        #expect(!FileSystem.exists(out))
    }

    @Test func badInputNamesTheFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let garbage = Path.join(dir.path, "garbage.o")
        try FileSystem.write(garbage, "not an object")
        let run = try Command.run([try SutureBinary.checked(), "diff", garbage, garbage])
        #expect(run.termination == .exited(1))
        #expect(run.stderrText.contains("garbage.o: byte 0x0"))
        let exe = Path.join(dir.path, "exe")
        _ = try Command.output(["gcc", "-o", exe, "-x", "c", "-"], input: Array("int main(void){return 0;}".utf8))
        let notObject = try Command.run([try SutureBinary.checked(), "diff", exe, exe])
        #expect(notObject.termination == .exited(1))
        #expect(notObject.stderrText.contains("not a relocatable object"))
    }
}
