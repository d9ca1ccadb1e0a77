// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel
import Testing

/// `Packages` index parsing and kernel selection, on a fixture cut from
/// Debian 12's security archive (bookworm-security, 6.12.117 and 6.12.118;
/// 6.12.117's common headers deliberately left out).
@Suite struct KernelCatalogTests {
    static let fixture = Path.join(StandIn.fixtures, "Packages-bookworm-security")

    func index() throws -> PackageIndex {
        PackageIndex(text: try FileSystem.readText(Self.fixture))
    }

    @Test func parsesStanzasWithTheirDownloadFields() throws {
        let index = try index()
        #expect(index.packages.count == 14)
        let image = try #require(index.package("linux-image-6.12.118+deb12-amd64", version: "6.12.118-1~deb12u1"))
        #expect(
            image.filename
                == "pool/updates/main/l/linux-signed-6.12-amd64/linux-image-6.12.118+deb12-amd64_6.12.118-1~deb12u1_amd64.deb"
        )
        #expect(image.size == 107_211_068)
        #expect(image.sha256 == "8e837371953d0d8e1e9e998a340340dcbd7a13619d529a16773a56870d69bd13")
        let headers = try #require(index.package("linux-headers-6.12.118+deb12-amd64", version: "6.12.118-1~deb12u1"))
        #expect(
            headers.dependencyNames == [
                "linux-base", "linux-headers-6.12.118+deb12-common", "linux-image-6.12.118+deb12-amd64",
                "linux-image-6.12.118+deb12-amd64-unsigned", "linux-kbuild-6.12.118+deb12", "gcc-12",
            ])
        #expect(index.versions(of: "linux-source-6.12").map(\.version) == ["6.12.118-1~deb12u1", "6.12.117-1~deb12u1"])
    }

    @Test func continuationLinesAndBrokenStanzasAreSkipped() {
        let index = PackageIndex(
            text: """
                Package: a
                Version: 1.0
                Description: first line
                 a continued line: Version: 9
                Size: 12

                Package: no-version
                Size: 3

                Version: 2.0
                """)
        #expect(index.packages == [PackageStanza(name: "a", version: "1.0", size: 12, summary: "first line")])
    }

    @Test func selectsByReleaseWithHeadersCommonKbuildAndSource() throws {
        let selection = try KernelSelector.select(
            "6.12.118+deb12-amd64", suites: [("bookworm-security", try index())], withSource: true)
        #expect(selection.suite == "bookworm-security")
        #expect(selection.release == "6.12.118+deb12-amd64")
        #expect(selection.version == "6.12.118-1~deb12u1")
        // The signed image, not -unsigned or -dbg.
        #expect(selection.image.name == "linux-image-6.12.118+deb12-amd64")
        #expect(
            selection.headers.map(\.name) == [
                "linux-headers-6.12.118+deb12-amd64", "linux-headers-6.12.118+deb12-common",
                "linux-kbuild-6.12.118+deb12",
            ])
        #expect(selection.source?.name == "linux-source-6.12")
        #expect(selection.source?.version == "6.12.118-1~deb12u1")
        #expect(selection.all.allSatisfy { $0.version == "6.12.118-1~deb12u1" })
        #expect(selection.downloadSize == selection.all.reduce(0) { $0 + ($1.size ?? 0) })
        #expect(selection.downloadSize > 100_000_000)
    }

    @Test func packageVersionPicksThePlainFlavourNotMetaCloudOrDebug() throws {
        let selection = try KernelSelector.select(
            "6.12.118-1~deb12u1", suites: [("bookworm-security", try index())], withSource: false)
        // linux-image-6.12-amd64 (the meta-package) and the cloud flavour share the version.
        #expect(selection.release == "6.12.118+deb12-amd64")
        #expect(selection.source == nil)
        #expect(!selection.all.contains { $0.name.hasPrefix("linux-source") })
    }

    @Test func aMissingPieceIsNamed() throws {
        #expect {
            try KernelSelector.select(
                "6.12.117+deb12-amd64", suites: [("bookworm-security", try index())], withSource: true)
        } throws: { error in
            let error = error as? KernelError
            return error?.kind == .missingPiece
                && error?.message.contains("linux-headers-6.12.117+deb12-common") == true
        }
    }

    @Test func anUnknownKernelNamesTheSuitesSearched() throws {
        let index = try index()
        #expect {
            try KernelSelector.select(
                "6.12.99+deb12-amd64",
                suites: [("bookworm", PackageIndex(packages: [])), ("bookworm-security", index)], withSource: true)
        } throws: { error in
            let error = error as? KernelError
            return error?.kind == .unknownKernel && error?.message.contains("bookworm, bookworm-security") == true
        }
    }

    @Test func theFirstSuiteCarryingTheKernelWins() throws {
        let index = try index()
        let selection = try KernelSelector.select(
            "6.12.118+deb12-amd64",
            suites: [
                ("bookworm", PackageIndex(packages: [])), ("bookworm-backports", index), ("bookworm-security", index),
            ],
            withSource: true)
        #expect(selection.suite == "bookworm-backports")
    }

    @Test func releasesAndPackageVersionsAreTold() {
        #expect(KernelSelector.looksLikeRelease("6.12.118+deb12-amd64"))
        #expect(KernelSelector.looksLikeRelease("6.1.0-57-amd64"))
        #expect(KernelSelector.looksLikeRelease("7.2.13+deb14-cloud-amd64"))
        #expect(!KernelSelector.looksLikeRelease("6.12.118-1~deb12u1"))
        #expect(!KernelSelector.looksLikeRelease("6.1.192-3"))
    }

    @Test func theRecordRoundTripsAndReadsAsDpkgStatus() throws {
        let record = KernelCatalog.Record(
            release: "6.12.118+deb12-amd64", suite: "bookworm-security", version: "6.12.118-1~deb12u1",
            packages: [
                ("linux-image-6.12.118+deb12-amd64", "6.12.118-1~deb12u1"), ("linux-source-6.12", "6.12.118-1~deb12u1"),
            ])
        #expect(KernelCatalog.Record(text: record.text) == record)
        #expect(record.hasSource)
        let dir = try TemporaryDirectory(prefix: "suture-record")
        let path = Path.join(dir.path, "status")
        try FileSystem.write(path, record.text)
        let status = DpkgStatus(path: path)
        #expect(status.version(of: "linux-source-6.12") == "6.12.118-1~deb12u1")
        #expect(status.version(of: "linux-image-6.12.118+deb12-amd64") == "6.12.118-1~deb12u1")
        #expect(KernelCatalog.Record(text: "Package: x\nVersion: 1\n") == nil)
    }

    @Test func aptStateStaysInsideTheCache() {
        let text = KernelCatalog.aptConfiguration(directory: "/c/apt/sid")
        var paths: [String] = []
        for line in text.split(separator: "\n") where line.hasPrefix("Dir::") {
            let quoted = line.split(separator: "\"")
            if quoted.count >= 2 { paths.append(String(quoted[1])) }
        }
        #expect(paths.count >= 10)
        #expect(paths.allSatisfy { $0.hasPrefix("/c/apt/sid/") || $0 == "/dev/null" })
        #expect(text.contains("Dir::Etc::Parts \"/c/apt/sid/empty\";"))
        #expect(text.contains("Dir::State::status \"/c/apt/sid/status\";"))
    }

    @Test func fetchRefusesBadNamesAndSuitesBeforeTouchingTheNetwork() throws {
        let dir = try TemporaryDirectory(prefix: "suture-catalog")
        let catalog = KernelCatalog(root: dir.path)
        for (spec, suites) in [
            ("../x", KernelCatalog.suites), ("", KernelCatalog.suites), ("6.12.118+deb12-amd64", ["stretch"]),
        ] {
            #expect {
                try catalog.fetch(spec, suites: suites)
            } throws: { error in
                (error as? KernelError)?.kind == .usage
            }
        }
        #expect(!FileSystem.exists(Path.join(dir.path, "kernels")))
        #expect(!FileSystem.exists(Path.join(dir.path, "apt")))
    }
}

extension KernelCatalogTests {
    @Test func theHeadersMakefileIncludesTheCachedCommonHeaders() {
        let text = "include /usr/src/linux-headers-6.12.118+deb12-common/Makefile\n"
        #expect(
            KernelCatalog.relocatedMakefile(text, root: "/c/kernels/6.12.118+deb12-amd64")
                == "include /c/kernels/6.12.118+deb12-amd64/usr/src/linux-headers-6.12.118+deb12-common/Makefile\n")
        let other = "obj-m := x.o\ninclude $(srctree)/Makefile\n"
        #expect(KernelCatalog.relocatedMakefile(other, root: "/c") == other)
    }
}
