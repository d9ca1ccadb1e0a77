// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel
import Testing

@Suite struct ResolverTests {
    // MARK: - The real machine

    @Test func realBootListsTheDebianKernelWithEverythingItNeeds() throws {
        let resolver = KernelResolver()
        let installed = resolver.installed()
        let images = try FileSystem.list("/boot").filter { $0.hasPrefix("vmlinuz-") }
        #expect(installed.count == images.count)
        #expect(Set(installed.map { "vmlinuz-\($0.release)" }) == Set(images))

        let target = try resolver.defaultTarget()
        #expect(target.livepatch)
        #expect(target.config == "/boot/config-\(target.release)")
        #expect(target.imagePackage == "linux-image-\(target.release)")
        let dpkgVersion = try Command.output(["dpkg-query", "-W", "-f", "${Version}", "linux-image-\(target.release)"])
        #expect(target.packageVersion == dpkgVersion)
        #expect(target.headers != nil)
        #expect(target.compiler?.hasPrefix("gcc") == true)
        #expect(target.matchingSourceTarball == "/usr/src/\(target.sourcePackage).tar.xz")
        #expect(target.missingPieces.isEmpty)
        // The default is the newest livepatch kernel by package version.
        for other in installed where other.livepatch && other.release != target.release {
            #expect(DebianVersion(other.packageVersion ?? "0") < DebianVersion(target.packageVersion ?? "0"))
        }
        // Every way of naming it resolves to the same kernel.
        #expect(try resolver.resolve(target.release) == target)
        #expect(try resolver.resolve(nil) == target)
        #expect(try resolver.resolve("/lib/modules/\(target.release)") == target)
        #expect(try resolver.resolve(target.image).release == target.release)
    }

    // MARK: - Fake roots

    @Test func newestFollowsDebianVersionOrderNotStringOrder() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-9-amd64", packageVersion: "6.1.27-1")
        try root.addKernel("6.1.0-57-amd64", packageVersion: "6.1.192-3")
        try root.addKernel("6.1.0-10-amd64", packageVersion: "6.1.38-1")
        let resolver = root.resolver()
        // String order would put 6.1.0-9 first and 6.1.192 before 6.1.27.
        #expect(resolver.installed().map(\.release) == ["6.1.0-57-amd64", "6.1.0-10-amd64", "6.1.0-9-amd64"])
        #expect(try resolver.defaultTarget().release == "6.1.0-57-amd64")
    }

    @Test func releasesWithoutPackagesOrderByReleaseInDpkgOrder() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-9-amd64", packageVersion: nil)
        try root.addKernel("6.1.0-57-amd64", packageVersion: nil)
        #expect(root.resolver().installed().map(\.release) == ["6.1.0-57-amd64", "6.1.0-9-amd64"])
    }

    @Test func kernelsWithoutLivepatchAreNeverTheDefault() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-9-amd64", packageVersion: "6.1.27-1")
        try root.addKernel("6.1.0-57-amd64", packageVersion: "6.1.192-3", livepatch: false)
        try root.addKernel("6.2.0-1-amd64", packageVersion: "6.2.1-1", config: false)
        let target = try root.resolver().defaultTarget()
        #expect(target.release == "6.1.0-9-amd64")
    }

    @Test func theRunningKernelWinsOnlyWhenItIsComplete() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-9-amd64", packageVersion: "6.1.27-1")
        try root.addKernel("6.1.0-57-amd64", packageVersion: "6.1.192-3")
        // Running 6.1.0-9 without its source: the newest wins.
        #expect(try root.resolver(running: "6.1.0-9-amd64").defaultTarget().release == "6.1.0-57-amd64")
        // With the source of exactly its version installed, the running one wins.
        try root.addSource(series: "6.1", version: "6.1.27-1")
        let resolver = root.resolver(running: "6.1.0-9-amd64")
        let target = try resolver.defaultTarget()
        #expect(target.release == "6.1.0-9-amd64")
        #expect(target.isRunning)
        #expect(target.matchingSourceTarball == Path.join(root.path, "usr/src/linux-source-6.1.tar.xz"))
        // The same source does not match the other kernel.
        let other = resolver.describe("6.1.0-57-amd64")
        #expect(other.sourceVersion == "6.1.27-1")
        #expect(other.matchingSourceTarball == nil)
        #expect(other.missingPieces == ["source"])
    }

    @Test func missingPiecesAreNamed() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-9-amd64", packageVersion: "6.1.27-1", config: false, headers: false)
        let kernel = root.resolver().describe("6.1.0-9-amd64")
        #expect(kernel.config == nil)
        #expect(kernel.headers == nil)
        #expect(kernel.compiler == nil)
        #expect(!kernel.livepatch)
        #expect(kernel.missingPieces == ["config", "headers", "livepatch", "source"])
        let json = kernel.json(isDefault: false)
        #expect(json["missing"] == .strings(["config", "headers", "livepatch", "source"]))
        #expect(json["sourceMatches"] == .bool(false))
        #expect(json["config"] == .null)
    }

    @Test func headersAndCompilerAreFoundThroughTheFakeRoot() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-9-amd64", packageVersion: "6.1.27-1", compiler: "gcc-12 (Debian 12.2.0-14) 12.2.0")
        let kernel = root.resolver().describe("6.1.0-9-amd64")
        // The absolute symlink target is read inside the fake root.
        #expect(kernel.headers == Path.join(root.path, "usr/src/linux-headers-6.1.0-9-amd64"))
        #expect(kernel.compiler == "gcc-12 (Debian 12.2.0-14) 12.2.0")
        #expect(kernel.upstreamVersion == "6.1.27")
        #expect(kernel.sourcePackage == "linux-source-6.1")
    }

    @Test func compilerFallsBackToTheConfigWithoutHeaders() throws {
        let root = try FakeRoot()
        try root.addKernel(
            "6.1.0-9-amd64", packageVersion: "6.1.27-1", headers: false, compiler: "gcc-12 (Debian 12.2.0-1) 12.2.0")
        #expect(root.resolver().describe("6.1.0-9-amd64").compiler == "gcc-12 (Debian 12.2.0-1) 12.2.0")
    }

    @Test func removedPackagesAreNotInstalled() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-1-amd64", packageVersion: nil)
        // The status file lists linux-image-6.1.0-1-amd64 as config-files only.
        #expect(root.resolver().describe("6.1.0-1-amd64").packageVersion == nil)
    }

    @Test func errorsNameWhatIsMissing() throws {
        let empty = try FakeRoot()
        let noKernel = #expect(throws: KernelError.self) { try empty.resolver().defaultTarget() }
        #expect(noKernel?.kind == .noKernel)
        #expect(noKernel?.message.contains(Path.join(empty.path, "boot")) == true)

        let root = try FakeRoot()
        try root.addKernel("6.1.0-9-amd64", packageVersion: "6.1.27-1", livepatch: false)
        let noLivepatch = #expect(throws: KernelError.self) { try root.resolver().defaultTarget() }
        #expect(noLivepatch?.kind == .noLivepatch)
        #expect(noLivepatch?.message.contains("6.1.0-9-amd64") == true)

        let unknown = #expect(throws: KernelError.self) { try root.resolver().resolve("5.10.0-1-amd64") }
        #expect(unknown?.kind == .unknownKernel)
        #expect(unknown?.message.contains("installed: 6.1.0-9-amd64") == true)

        let notImage = #expect(throws: KernelError.self) { try root.resolver().resolve("/etc/passwd") }
        #expect(notImage?.message.contains("not a kernel image") == true)
        let missingImage = #expect(throws: KernelError.self) {
            try root.resolver().resolve("/nonexistent/vmlinuz-6.1.0-9-amd64")
        }
        #expect(missingImage?.message.contains("no such kernel image") == true)
    }

    @Test func anImagePathOutsideBootKeepsItsPath() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-9-amd64", packageVersion: "6.1.27-1")
        let copy = Path.join(root.path, "vmlinuz-6.1.0-9-amd64")
        try FileSystem.write(copy, "copy\n")
        let kernel = try root.resolver().resolve(copy)
        #expect(kernel.image == copy)
        #expect(kernel.release == "6.1.0-9-amd64")
        #expect(kernel.config == Path.join(root.path, "boot/config-6.1.0-9-amd64"))
    }
}

@Suite struct KernelConfigTests {
    @Test func parsesValuesAndReportsDrift() {
        let shipped = KernelConfig(
            text: """
                # comment
                CONFIG_LIVEPATCH=y
                CONFIG_XFS_FS=m
                # CONFIG_TEST_LIVEPATCH is not set
                CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"
                CONFIG_PAHOLE_VERSION=124
                """)
        #expect(shipped["LIVEPATCH"] == .yes)
        #expect(shipped["CONFIG_XFS_FS"] == .module)
        #expect(shipped["TEST_LIVEPATCH"] == .no)
        #expect(shipped["NOT_MENTIONED"] == .no)
        #expect(shipped["CC_VERSION_TEXT"] == .value("gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"))
        #expect(shipped["XFS_FS"].isEnabled)

        let result = KernelConfig(
            text: """
                CONFIG_LIVEPATCH=y
                CONFIG_XFS_FS=m
                CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"
                CONFIG_PAHOLE_VERSION=0
                CONFIG_BUILD_SALT=""
                """)
        let drift = shipped.drift(to: result)
        #expect(drift.map(\.name) == ["PAHOLE_VERSION"])
        #expect(drift.first?.expected == .value("124"))
        #expect(drift.first?.actual == .value("0"))
    }
}

/// Kernels fetched into the cache (`suture kernel fetch`): every
/// `--kernel` takes them, the default never does.
@Suite struct FetchedKernelResolverTests {
    @Test func aFetchedKernelResolvesByNameWithEverythingFromItsFolder() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-57-amd64", packageVersion: "6.1.192-3")
        let dir = try root.addFetched("6.12.117+deb13-amd64", version: "6.12.117-1")
        let kernel = try root.resolver().resolve("6.12.117+deb13-amd64")
        #expect(kernel.isFetched)
        #expect(kernel.catalogDirectory == dir)
        #expect(!kernel.isRunning)
        #expect(kernel.image == Path.join(dir, "boot/vmlinuz-6.12.117+deb13-amd64"))
        #expect(kernel.config == Path.join(dir, "boot/config-6.12.117+deb13-amd64"))
        #expect(kernel.modulesDirectory == Path.join(dir, "lib/modules/6.12.117+deb13-amd64"))
        #expect(kernel.headers == Path.join(dir, "usr/src/linux-headers-6.12.117+deb13-amd64"))
        #expect(kernel.imagePackage == "linux-image-6.12.117+deb13-amd64")
        #expect(kernel.packageVersion == "6.12.117-1")
        #expect(kernel.compiler == "x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0")
        #expect(kernel.matchingSourceTarball == Path.join(dir, "usr/src/linux-source-6.12.tar.xz"))
        #expect(kernel.missingPieces.isEmpty)
        // By folder and by image path too.
        #expect(try root.resolver().resolve(dir) == kernel)
        #expect(try root.resolver().resolve(kernel.image) == kernel)
        #expect(root.resolver().fetched() == [kernel])
        // The host's dpkg database does not know it: the record does.
        #expect(root.resolver().dpkg.version(of: "linux-image-6.12.117+deb13-amd64") == nil)
    }

    @Test func aFetchedKernelIsNeverTheDefaultEvenWhenNewer() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-57-amd64", packageVersion: "6.1.192-3")
        try root.addFetched("7.2.13+deb14-amd64", version: "7.2.13-1")
        try root.addFetched("6.12.117+deb13-amd64", version: "6.12.117-1")
        let resolver = root.resolver(running: "7.2.13+deb14-amd64")
        #expect(try resolver.defaultTarget().release == "6.1.0-57-amd64")
        #expect(try resolver.resolve(nil).release == "6.1.0-57-amd64")
        #expect(resolver.installed().map(\.release) == ["6.1.0-57-amd64"])
        // Newest first by package version.
        #expect(resolver.fetched().map(\.release) == ["7.2.13+deb14-amd64", "6.12.117+deb13-amd64"])
    }

    @Test func withOnlyFetchedKernelsThereIsNoDefault() throws {
        let root = try FakeRoot()
        try root.addFetched("6.12.117+deb13-amd64", version: "6.12.117-1")
        #expect {
            try root.resolver().defaultTarget()
        } throws: { error in
            (error as? KernelError)?.kind == .noKernel
        }
        #expect(try root.resolver().resolve("6.12.117+deb13-amd64").isFetched)
    }

    @Test func anInstalledKernelWinsOverAFetchedOneOfTheSameName() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-57-amd64", packageVersion: "6.1.192-3")
        try root.addFetched("6.1.0-57-amd64", version: "6.1.192-3")
        let kernel = try root.resolver().resolve("6.1.0-57-amd64")
        #expect(!kernel.isFetched)
        #expect(kernel.image == Path.join(root.path, "boot/vmlinuz-6.1.0-57-amd64"))
    }

    @Test func aHalfFetchedFolderIsIgnoredAndUnknownKernelsPointAtFetch() throws {
        let root = try FakeRoot()
        try root.addKernel("6.1.0-57-amd64", packageVersion: "6.1.192-3")
        let dir = try root.addFetched("6.12.117+deb13-amd64", version: "6.12.117-1")
        try FileSystem.removeFile(Path.join(dir, KernelCatalog.recordName))
        // A staging folder, as an interrupted fetch could leave it.
        try FileSystem.makeDirectories(Path.join(root.catalog, ".6.12.118+deb13-amd64.partial-1/boot"))
        #expect(root.resolver().fetched().isEmpty)
        #expect {
            try root.resolver().resolve("6.12.117+deb13-amd64")
        } throws: { error in
            let error = error as? KernelError
            return error?.kind == .unknownKernel
                && error?.message.contains("suture kernel fetch 6.12.117+deb13-amd64") == true
                && error?.message.contains("installed: 6.1.0-57-amd64") == true
        }
        #expect(throws: KernelError.self) {
            try root.resolver().resolve(Path.join(root.catalog, ".6.12.118+deb13-amd64.partial-1"))
        }
    }
}

extension FetchedKernelResolverTests {
    @Test func theCompilerIsNamedAsDebianNamesIt() throws {
        let root = try FakeRoot()
        try root.addFetched("6.12.118+deb13-amd64", version: "6.12.118-1")
        try root.addFetched(
            "6.12.118+deb12-amd64", version: "6.12.118-1~deb12u1", compiler: "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0")
        #expect(try root.resolver().resolve("6.12.118+deb13-amd64").compilerName == "gcc-14")
        #expect(try root.resolver().resolve("6.12.118+deb12-amd64").compilerName == "gcc-12")
    }

    @Test func preparingAFetchedKernelWithAnotherCompilerChecksItsBuildRoot() throws {
        let root = try FakeRoot()
        try root.addFetched(
            "6.12.118+deb13-amd64", version: "6.12.118-1", compiler: "x86_64-linux-gnu-gcc-99 (Debian 99.1.0-1) 99.1.0")
        let kernel = try root.resolver().resolve("6.12.118+deb13-amd64")
        let cache = try TemporaryDirectory(prefix: "suture-fetched-prepare")
        // A ready root of the kernel's release whose gcc-99 is another build of it.
        let fake = try FakeBuildRoot(
            cache: cache.path, name: "trixie-gcc-99", program: "x86_64-linux-gnu-gcc-99",
            prints: "x86_64-linux-gnu-gcc-99 (Debian 99.1.0-2) 99.1.0")
        #expect {
            try TreeCache(root: cache.path).prepare(kernel)
        } throws: { error in
            let error = error as? KernelError
            return error?.kind == .compilerMismatch
                && error?.message.contains(
                    "the build root \(fake.path) has \"x86_64-linux-gnu-gcc-99 (Debian 99.1.0-2) 99.1.0\" but the kernel was built with \"x86_64-linux-gnu-gcc-99 (Debian 99.1.0-1) 99.1.0\" (CONFIG_CC_VERSION_TEXT)"
                ) == true
        }
        #expect(!FileSystem.exists(Path.join(cache.path, "trees/6.12.118+deb13-amd64")))
        // The same root, with the exact compiler, is taken as it is, at once.
        _ = try FakeBuildRoot(
            cache: cache.path, name: "trixie-gcc-99", program: "x86_64-linux-gnu-gcc-99",
            prints: "x86_64-linux-gnu-gcc-99 (Debian 99.1.0-1) 99.1.0")
        let outcome = try BuildRoots(cache: cache.path).ensure(for: kernel)
        #expect(outcome.reused)
        #expect(outcome.root.path == fake.path)
        #expect(outcome.seconds < 1)
        #expect(outcome.check.matches)
    }

    @Test func aKernelOfNoKnownReleaseGetsNoBuildRoot() throws {
        let root = try FakeRoot()
        try root.addFetched(
            "6.12.118+deb13-amd64", version: "6.12.118-1", compiler: "clang version 19.1.7 (Debian)")
        let kernel = try root.resolver().resolve("6.12.118+deb13-amd64")
        let cache = try TemporaryDirectory(prefix: "suture-fetched-prepare")
        #expect {
            try TreeCache(root: cache.path).prepare(kernel)
        } throws: { error in
            let error = error as? KernelError
            return error?.kind == .compilerMismatch
                && error?.message.contains("build roots hold Debian's gcc-N packages") == true
        }
        #expect(((try? FileSystem.list(Path.join(cache.path, "roots"))) ?? []).isEmpty)
    }

    @Test func preparingAFetchedKernelWithoutSourcePointsAtFetch() throws {
        let root = try FakeRoot()
        let host = try #require(CompilerCheck.check(kernelCompiler: nil).host)
        try root.addFetched("6.12.118+deb12-amd64", version: "6.12.118-1~deb12u1", source: false, compiler: host)
        let kernel = try root.resolver().resolve("6.12.118+deb12-amd64")
        #expect(kernel.missingPieces == ["source"])
        let cache = try TemporaryDirectory(prefix: "suture-fetched-prepare")
        #expect {
            try TreeCache(root: cache.path).prepare(kernel)
        } throws: { error in
            let error = error as? KernelError
            return error?.kind == .missingPiece
                && error?.message.contains("suture kernel fetch 6.12.118+deb12-amd64") == true
        }
    }
}
