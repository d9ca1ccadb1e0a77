// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel
import Testing

/// Build roots' bad input, without a real root: a suite that cannot be
/// reached, a compiler that is no Debian gcc-N, a release name that is not
/// one, and a ready root used by a command in it.
struct BuildRootsTests {
    static let gcc14 = "x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0"

    @Test func anUnreachableSuiteIsAClearErrorAndLeavesNoRoot() throws {
        let cache = try TemporaryDirectory(prefix: "suture-roots-unreachable")
        // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        let roots = BuildRoots(cache: cache.path, mirror: "http://127.0.0.1:9/debian")
        #expect {
            try roots.ensure(suite: "trixie", compilerText: Self.gcc14)
        } throws: { error in
            let error = error as? KernelError
            return error?.kind == .suiteUnreachable
                && error?.message.contains("cannot reach suite trixie at http://127.0.0.1:9/debian") == true
        }
        let left = ((try? FileSystem.list(roots.directory)) ?? []).filter { !$0.hasSuffix(".lock") }
        #expect(left.isEmpty, "\(left)")
    }

    @Test func onlyDebianGccAndReleaseNamesAreTaken() throws {
        let cache = try TemporaryDirectory(prefix: "suture-roots-names")
        let roots = BuildRoots(cache: cache.path, mirror: "http://127.0.0.1:9/debian")
        #expect(throws: KernelError.self) { try roots.ensure(suite: "trixie", compilerText: "clang version 19.1.7") }
        #expect(throws: KernelError.self) { try roots.ensure(suite: "../etc", compilerText: Self.gcc14) }
        #expect(!FileSystem.exists(roots.directory))
    }

    @Test func aCommandRunsInsideTheRootWithItsFolderBound() throws {
        let cache = try TemporaryDirectory(prefix: "suture-roots-run")
        let fake = try FakeBuildRoot(
            cache: cache.path, name: "trixie-gcc-14", program: "x86_64-linux-gnu-gcc-14", prints: Self.gcc14)
        let outcome = try BuildRoots(cache: cache.path).ensure(suite: "trixie", compilerText: Self.gcc14)
        #expect(outcome.reused && outcome.root.path == fake.path)
        // A host folder appears inside at its own path; the root's own files are the root's.
        let work = try TemporaryDirectory(prefix: "suture-roots-bound")
        try FileSystem.write(Path.join(work.path, "probe"), "from the host\n")
        try FileSystem.makeDirectories(Path.join(fake.path, "tmp"))
        try FileSystem.makeDirectories(Path.join(fake.path, "dev"))
        try FileSystem.makeDirectories(Path.join(fake.path, "proc"))
        let r = try outcome.root.run(
            [
                "/bin/sh", "-c",
                "read line < probe; echo \"$line\"; x86_64-linux-gnu-gcc-14 --version; echo made > made",
            ], binds: [work.path],
            workingDirectory: work.path)
        #expect(r.termination == .exited(0), "\(r.stderrText)")
        #expect(r.stdoutText == "from the host\n\(Self.gcc14)\n")
        #expect(try FileSystem.readText(Path.join(work.path, "made")) == "made\n")
        // Nothing stays mounted once the command is done.
        let mounts = try FileSystem.readText("/proc/self/mounts")
        #expect(!mounts.contains(fake.path))
    }
}
