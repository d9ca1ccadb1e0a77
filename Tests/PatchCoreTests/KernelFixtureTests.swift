// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform
import Synchronization
import TargetKernel
import Testing

/// Real kernel objects compiled through the target's source-tree workspace
/// before and after the diffs in Tests/Fixtures/kernel, diffed under the
/// kernel rules, and checked against `expected.json` beside each diff.
/// The objects are built at test time; only the diffs are committed.
/// Set SUTURE_UPDATE_GOLDEN=1 to rewrite the goldens.
@Suite(.serialized) struct KernelFixtureTests {
    static let root = Path.join(Path.directory(of: #filePath), "../Fixtures/kernel")

    /// Fixtures whose changed files each compile into one object without
    /// extra include paths. kpatch-style patches need `suture build`'s own
    /// headers and header changes fan out to many objects; both are proven
    /// through `suture build` in IntegrationTests/KpatchBuildTests.
    static var cases: [String] {
        (try? FileSystem.list(root))?.filter {
            FileSystem.isDirectory(Path.join(root, $0)) && !$0.hasPrefix("kpatch-") && !$0.hasPrefix("header-")
        } ?? []
    }

    /// The files a unified diff changes (`+++ b/PATH`).
    static func touchedFiles(_ diff: String) -> [String] {
        diff.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("+++ ") else { return nil }
            var path = line.dropFirst(4).prefix { $0 != "\t" }
            if path.hasPrefix("b/") { path = path.dropFirst(2) }
            return String(path)
        }
    }

    /// Everything the fixtures need, built once per test run: the original
    /// object of every touched file, and every fixture's patched objects.
    /// Fixtures that touch different files share one workspace and one
    /// parallel kbuild run, which keeps the suite to a few compiles.
    struct Built: Sendable {
        let tree: PreparedTree
        let directory: String
        /// Fixture → (object, original path, patched path).
        let pairs: [String: [Pair]]
    }

    struct Pair: Sendable {
        let object: String
        let original: String
        let patched: String
    }

    static let shared = Mutex<Built?>(nil)

    static func prepared() throws -> Built {
        try shared.withLock { cached in
            if let cached { return cached }
            let kernel = try KernelResolver().defaultTarget()
            let tree = try TreeCache().prepare(kernel).tree
            let dir = try TemporaryDirectory(prefix: "suture-kernel-fixtures")
            Cleanup.register { dir.remove() }
            var filesOf: [String: [String]] = [:]
            for name in cases {
                filesOf[name] = touchedFiles(try FileSystem.readText(Path.join(root, name, "patch.diff")))
            }
            let pristine = try Workspace(tree: tree)
            var objectOf: [String: String] = [:]
            for (file, objects) in try pristine.objects(compiling: Array(Set(filesOf.values.joined())).sorted()) {
                try #require(objects.count == 1, "\(file) is compiled by \(objects)")
                objectOf[file] = objects[0]
            }
            try copy(try pristine.compile(Array(Set(objectOf.values)).sorted()), to: Path.join(dir.path, "original"))
            try pristine.remove()

            // Groups of fixtures whose objects do not overlap.
            var groups: [[String]] = []
            for name in cases {
                let objects = Set(filesOf[name]!.map { objectOf[$0]! })
                if let i = groups.firstIndex(where: { group in
                    group.allSatisfy { Set(filesOf[$0]!.map { objectOf[$0]! }).isDisjoint(with: objects) }
                }) {
                    groups[i].append(name)
                } else {
                    groups.append([name])
                }
            }
            var pairs: [String: [Pair]] = [:]
            for (g, group) in groups.enumerated() {
                var replacements: [(path: String, contents: [UInt8])] = []
                for name in group {
                    let scratch = Path.join(dir.path, "sources", name)
                    for file in filesOf[name]! {
                        let target = Path.join(scratch, file)
                        try FileSystem.makeDirectories(Path.directory(of: target))
                        try FileSystem.copyFile(Path.join(tree.sourceDirectory, file), target)
                        try FileSystem.setMode(target, 0o644)
                    }
                    let diff = try FileSystem.read(Path.join(root, name, "patch.diff"))
                    _ = try Command.output(["patch", "-s", "-p1", "-d", scratch], input: diff)
                    replacements += try filesOf[name]!.map {
                        (path: $0, contents: try FileSystem.read(Path.join(scratch, $0)))
                    }
                }
                let workspace = try Workspace(tree: tree, replacing: replacements)
                let objects = Set(group.flatMap { filesOf[$0]!.map { objectOf[$0]! } }).sorted()
                let patchedDir = Path.join(dir.path, "patched-\(g)")
                try copy(try workspace.compile(objects), to: patchedDir)
                try workspace.remove()
                for name in group {
                    pairs[name] = Set(filesOf[name]!.map { objectOf[$0]! }).sorted().map {
                        Pair(
                            object: $0, original: Path.join(dir.path, "original", $0),
                            patched: Path.join(patchedDir, $0))
                    }
                }
            }
            let result = Built(tree: tree, directory: dir.path, pairs: pairs)
            cached = result
            return result
        }
    }

    static func copy(_ built: [String: String], to directory: String) throws {
        for (object, path) in built {
            let target = Path.join(directory, object)
            try FileSystem.makeDirectories(Path.directory(of: target))
            try FileSystem.copyFile(path, target)
        }
    }

    @Test(arguments: cases)
    func matchesGolden(_ name: String) throws {
        let built = try Self.prepared()
        let pairs = try #require(built.pairs[name])
        var reports: [(String, JSON)] = []
        for pair in pairs {
            let result = try ObjectDiff.run(
                original: ELFFile.open(pair.original), patched: ELFFile.open(pair.patched),
                rules: .kernel())
            reports.append((pair.object, result.report.json))
            if let patch = result.patch {
                let out = Path.join(built.directory, "patch-\(name).o")
                try ELFWriter.write(patch.object, to: out)
                let readelf = try Command.run(["readelf", "-aW", out])
                #expect(readelf.stderrText.isEmpty, "\(name): readelf warns: \(readelf.stderrText)")
                let linked = try Command.run(["ld", "-r", "-o", out + ".relinked", out])
                #expect(linked.termination.succeeded, "\(name): ld -r: \(linked.stderrText)")
            }
        }
        let actual = JSON.object(reports).serialized(pretty: true) + "\n"
        let goldenPath = Path.join(Self.root, name, "expected.json")
        if FileSystem.environment("SUTURE_UPDATE_GOLDEN") == "1" { try FileSystem.write(goldenPath, actual) }
        let golden = try FileSystem.readText(goldenPath)
        #expect(actual == golden, "\(name): the report differs from expected.json:\n\(actual)")
        try built.tree.requirePristine(after: "the kernel fixture \(name)")
    }
}
