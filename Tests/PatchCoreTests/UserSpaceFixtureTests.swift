// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform
import Testing

/// Small C programs and diffs, compiled by gcc in the test, diffed under
/// user-space rules, and checked against the golden `--json` report beside
/// them (`expected.json`). Set SUTURE_UPDATE_GOLDEN=1 to rewrite the goldens
/// after checking the new output by hand.
@Suite struct UserSpaceFixtureTests {
    static let root = Path.join(Path.directory(of: #filePath), "Fixtures/user")

    static var cases: [String] { (try? FileSystem.list(root)) ?? [] }

    /// Builds the fixture before and after its diff; both compile as the
    /// same file name, as a real rebuild would.
    static func build(_ name: String, in dir: String) throws -> (original: String, patched: String) {
        let fixture = Path.join(root, name)
        let source = try FileSystem.list(fixture).first { $0.hasPrefix("orig.") }!
        let ext = String(source.dropFirst("orig.".count))
        let compiler = ext == "cpp" ? "g++" : "gcc"
        var objects: [String] = []
        for side in ["original", "patched"] {
            let sideDir = Path.join(dir, side)
            try FileSystem.makeDirectories(sideDir)
            try FileSystem.copyFile(Path.join(fixture, source), Path.join(sideDir, "fixture.\(ext)"))
            if side == "patched" {
                let diff = try FileSystem.read(Path.join(fixture, "patch.diff"))
                _ = try Command.output(["patch", "-s", "-p1", "-d", sideDir], input: diff)
            }
            let object = Path.join(sideDir, "fixture.o")
            _ = try Command.output(
                [
                    compiler, "-O2", "-c", "-ffunction-sections", "-fdata-sections",
                    "-o", object, "fixture.\(ext)",
                ], workingDirectory: sideDir)
            objects.append(object)
        }
        return (objects[0], objects[1])
    }

    @Test(arguments: cases)
    func matchesGolden(_ name: String) throws {
        let dir = try TemporaryDirectory(prefix: "suture-diff-\(name)")
        defer { dir.remove() }
        let (original, patched) = try Self.build(name, in: dir.path)
        let result = try ObjectDiff.run(
            original: ELFFile.open(original), patched: ELFFile.open(patched), rules: .userSpace())
        let actual = result.report.json.serialized(pretty: true) + "\n"
        let goldenPath = Path.join(Self.root, name, "expected.json")
        if FileSystem.environment("SUTURE_UPDATE_GOLDEN") == "1" {
            try FileSystem.write(goldenPath, actual)
        }
        let golden = try FileSystem.readText(goldenPath)
        #expect(actual == golden, "\(name): the report differs from expected.json:\n\(actual)")

        // A patch object, when there is one, is valid for binutils.
        if let patch = result.patch {
            let out = Path.join(dir.path, "patch.o")
            try ELFWriter.write(patch.object, to: out)
            let readelf = try Command.run(["readelf", "-aW", out])
            #expect(readelf.stderrText.isEmpty, "\(name): readelf warns: \(readelf.stderrText)")
            let linked = try Command.run(["ld", "-r", "-o", Path.join(dir.path, "relinked.o"), out])
            #expect(linked.termination.succeeded, "\(name): ld -r failed: \(linked.stderrText)")
        } else {
            #expect(!result.refusals.isEmpty || !result.hasFunctionalChange)
        }
    }
}
