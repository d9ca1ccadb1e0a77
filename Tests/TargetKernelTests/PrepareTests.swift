// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import TargetKernel
import TestSupport
import Testing

/// `prepare` with stand-in trees in private caches: the source checks, the
/// compiler check, locking, interruption and repair. Each runs in seconds.
@Suite struct PrepareStandInTests {
    @Test func aMatchingTarballIsPreparedAndItsRevisionCannotBeChecked() throws {
        let kernel = try SharedTree.kernel()
        let upstream = try #require(kernel.upstreamVersion)
        let dir = try TemporaryDirectory(prefix: "suture-prepare")
        let tarball = try StandIn.tarball(version: upstream, in: dir.path)
        let cache = TreeCache(root: Path.join(dir.path, "cache"))
        let outcome = try cache.prepare(kernel, source: tarball)
        let tree = outcome.tree
        #expect(!outcome.reused)
        #expect(tree.origin == .user(path: tarball))
        #expect(tree.upstreamVersion == upstream)
        #expect(tree.key.hasPrefix("\(kernel.release)-") && tree.key.contains("-src-"))
        #expect(
            outcome.warnings.contains { $0.contains("distro revision") && $0.contains(kernel.packageVersion ?? "?") })
        #expect(outcome.phases.map(\.name) == ["source", "olddefconfig", "modules_prepare", "manifest"])
        // The stand-in's modules_prepare saw KERNELRELEASE, as kbuild does.
        let uts = try FileSystem.readText(Path.join(tree.buildDirectory, "include/generated/utsrelease.h"))
        #expect(uts.contains("\"\(kernel.release)\""))
        #expect(
            try FileSystem.read(Path.join(tree.buildDirectory, ".config"))
                == FileSystem.read(try #require(kernel.config)))
        #expect(try tree.verify().isEmpty)
        #expect(try FileSystem.status(Path.join(tree.sourceDirectory, "README")).st_mode & 0o222 == 0)
        // Nothing but the tree and its lock in the cache.
        #expect(entries(cache.treesDirectory) == [tree.key, "\(tree.key).lock"])
        #expect(entries(tree.path) == ["manifest", "source", "tree.json"])
        // The same tarball again: reused, untouched.
        let again = try cache.prepare(kernel, source: tarball)
        #expect(again.reused)
        #expect(again.tree.path == tree.path)
    }

    @Test func aMismatchingTarballIsRefusedNamingBothVersions() throws {
        let kernel = try SharedTree.kernel()
        let upstream = try #require(kernel.upstreamVersion)
        let other = StandIn.otherVersion(upstream)
        let dir = try TemporaryDirectory(prefix: "suture-prepare")
        let tarball = try StandIn.tarball(version: other, in: dir.path)
        let cache = TreeCache(root: Path.join(dir.path, "cache"))
        let error = #expect(throws: KernelError.self) { try cache.prepare(kernel, source: tarball) }
        #expect(error?.kind == .sourceMismatch)
        #expect(error?.message.contains("Linux \(other)") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("Linux \(upstream)") == true)
        #expect(error?.message.contains(tarball) == true)
        // The refused tree is gone; only the lock file stays.
        #expect(entries(cache.treesDirectory).allSatisfy { $0.hasSuffix(".lock") })
    }

    @Test func aSourceFolderMustBeCleanAndMatch() throws {
        let kernel = try SharedTree.kernel()
        let upstream = try #require(kernel.upstreamVersion)
        let dir = try TemporaryDirectory(prefix: "suture-prepare")
        let folder = try StandIn.folder(version: upstream, in: dir.path)
        let cache = TreeCache(root: Path.join(dir.path, "cache"))
        let outcome = try cache.prepare(kernel, source: folder)
        #expect(outcome.tree.origin == .user(path: folder))
        #expect(try outcome.tree.verify().isEmpty)
        // The user's folder was copied, not used in place.
        #expect(!FileSystem.exists(Path.join(folder, "_build")))

        try FileSystem.write(Path.join(folder, ".config"), "CONFIG_X=y\n")
        let dirty = #expect(throws: KernelError.self) {
            try TreeCache(root: Path.join(dir.path, "cache2")).prepare(kernel, source: folder)
        }
        #expect(dirty?.kind == .sourceMismatch)
        #expect(dirty?.message.contains("not a clean source tree") == true)
    }

    @Test func aCompilerMismatchIsRefusedUnlessAllowed() throws {
        let root = try FakeRoot()
        try root.addKernel(
            "6.1.0-99-amd64", packageVersion: "6.1.192-3", headers: false,
            compiler: "gcc-99 (Fake 99.1.0-1) 99.1.0")
        let kernel = root.resolver().describe("6.1.0-99-amd64")
        let dir = try TemporaryDirectory(prefix: "suture-prepare")
        let tarball = try StandIn.tarball(version: "6.1.192", in: dir.path)
        let cache = TreeCache(root: Path.join(dir.path, "cache"))
        let error = #expect(throws: KernelError.self) { try cache.prepare(kernel, source: tarball) }
        #expect(error?.kind == .compilerMismatch)
        #expect(error?.message.contains("gcc-99 (Fake 99.1.0-1) 99.1.0") == true)
        let host = try Command.output(["gcc", "--version"]).split(separator: "\n")[0]
        #expect(error?.message.contains(String(host)) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("--allow-compiler-mismatch") == true)
        #expect(entries(cache.treesDirectory).isEmpty)

        let allowed = try cache.prepare(kernel, source: tarball, allowCompilerMismatch: true)
        #expect(allowed.warnings.contains { $0.hasPrefix("compiler mismatch allowed") })
        #expect(allowed.tree.compiler.matches == false)
    }

    @Test func noMatchingSourceNamesBothVersions() throws {
        let root = try FakeRoot()
        // A package version the archive has never had, and an installed source of another.
        try root.addKernel("6.1.0-98-amd64", packageVersion: "6.1.999-1", headers: false)
        try root.addSource(series: "6.1", version: "6.1.27-1")
        let kernel = root.resolver().describe("6.1.0-98-amd64")
        let dir = try TemporaryDirectory(prefix: "suture-prepare")
        let cache = TreeCache(root: Path.join(dir.path, "cache"))
        let error = #expect(throws: KernelError.self) { try cache.prepare(kernel) }
        #expect(error?.kind == .missingPiece)
        #expect(error?.message.contains("6.1.999-1") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("installed linux-source-6.1 is 6.1.27-1") == true)
        #expect(error?.message.contains("--source") == true)
        #expect(entries(cache.treesDirectory).allSatisfy { $0.hasSuffix(".lock") })
    }

    @Test func aKernelWithoutConfigCannotBePrepared() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-97-amd64", packageVersion: "6.1.192-3", config: false)
        let error = #expect(throws: KernelError.self) {
            try TreeCache(root: Path.join(root.path, "cache")).prepare(root.resolver().describe("6.1.0-97-amd64"))
        }
        #expect(error?.kind == .missingPiece)
        #expect(error?.message.contains("/boot/config-6.1.0-97-amd64") == true)
    }

    @Test func anInterruptedPrepareIsNeverReadyAndARetryIsClean() throws {
        let kernel = try SharedTree.kernel()
        let upstream = try #require(kernel.upstreamVersion)
        let dir = try TemporaryDirectory(prefix: "suture-prepare")
        let tarball = try StandIn.tarball(version: upstream, in: dir.path)
        let cacheRoot = Path.join(dir.path, "cache")
        let cache = TreeCache(root: cacheRoot)
        let key = try cache.key(for: kernel, source: tarball)

        for signal in [SIGKILL, SIGTERM] {
            let child = try ChildProcess(
                [
                    try SutureBinary.checked(), "kernel", "prepare", "--kernel", kernel.release, "--source", tarball,
                    "--cache", cacheRoot,
                ],
                environment: Command.environment(["SUTURE_TEST_STALL": "1"]),
                stdout: .null, stderr: .null, newProcessGroup: true)
            // Wait until the stand-in's modules_prepare is running.
            let deadline = Clock.now() + 30
            var partial: String?
            while Clock.now() < deadline && partial == nil {
                let name = ".\(key).partial-\(child.pid)"
                if FileSystem.exists(Path.join(cache.treesDirectory, name, "source/_build/stalled")) { partial = name }
                if partial == nil { Clock.sleep(seconds: 0.05) }
            }
            try #require(partial != nil, "the prepare never reached modules_prepare")
            child.signal(signal, group: true)
            let end = child.wait()
            // SIGTERM reaches make too, so suture may report make's failure
            // (status 1) before its signal handler re-raises the signal.
            #expect(end == .signaled(signal) || (signal == SIGTERM && end == .exited(1)), "\(end)")
            // Never marked ready.
            #expect(!FileSystem.exists(Path.join(cache.treesDirectory, key)))
            if signal == SIGTERM {
                // A catchable signal cleans up its partial folder.
                #expect(!entries(cache.treesDirectory).contains { $0.contains(".partial-") })
            }
        }
        // SIGKILL left a partial folder; the retry removes it and finishes.
        let outcome = try cache.prepare(kernel, source: tarball)
        #expect(!outcome.reused)
        #expect(entries(cache.treesDirectory) == [key, "\(key).lock"])
        #expect(try outcome.tree.verify().isEmpty)
    }

    @Test func aDamagedTreeIsRefusedAndPreparedAgain() throws {
        let kernel = try SharedTree.kernel()
        let dir = try TemporaryDirectory(prefix: "suture-prepare")
        let tarball = try StandIn.tarball(version: try #require(kernel.upstreamVersion), in: dir.path)
        let cache = TreeCache(root: Path.join(dir.path, "cache"))
        let tree = try cache.prepare(kernel, source: tarball).tree

        let readme = Path.join(tree.sourceDirectory, "README")
        try FileSystem.setMode(readme, 0o644)
        try FileSystem.write(readme, "changed by hand\n")
        try FileSystem.write(Path.join(tree.buildDirectory, "stray.o"), "x")
        let differences = Set(try tree.verify().map(\.description))
        #expect(differences == ["changed README", "added _build/stray.o"])
        let refused = #expect(throws: KernelError.self) { try Workspace(tree: tree) }
        #expect(refused?.kind == .notPristine)
        #expect(refused?.message.contains("README") == true)

        let repaired = try cache.prepare(kernel, source: tarball)
        #expect(!repaired.reused)
        #expect(repaired.warnings.contains { $0.contains("no longer pristine") })
        #expect(try repaired.tree.verify().isEmpty)
        #expect(try FileSystem.readText(Path.join(repaired.tree.sourceDirectory, "README")).hasPrefix("A stand-in"))
    }
}
