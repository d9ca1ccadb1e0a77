// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TargetKernel
import TestSupport
import Testing

/// `suture kernel fetch` against Debian's real archive, then `suture vm`
/// booting the fetched kernel. The download is kept small (`--no-source`:
/// image, headers, common headers, kbuild; about 120 MB) and lands in the
/// ordinary cache (`SUTURE_CACHE`), so a second run downloads nothing.
///
/// The kernel is `SUTURE_TEST_FETCH_KERNEL` if set, else a 6.12 kernel of
/// Debian 12's security archive already in the cache, else
/// `defaultRelease`. Needs network access to deb.debian.org on a fresh cache.
@Suite(.serialized)
struct KernelCatalogCLITests {
    static let defaultRelease = "6.12.118+deb12-amd64"

    static func release() -> String {
        if let wanted = FileSystem.environment("SUTURE_TEST_FETCH_KERNEL"), !wanted.isEmpty { return wanted }
        let cached = KernelResolver().fetched().map(\.release)
            .first { $0.hasPrefix("6.12.") && $0.hasSuffix("+deb12-amd64") }
        return cached ?? defaultRelease
    }

    @Test func fetchesA612Deb12KernelAndBootsIt() async throws {
        let release = Self.release()
        let fetch = try await SutureCLI.run(
            ["kernel", "fetch", release, "--suite", "bookworm-security", "--no-source", "--json"], timeout: 1800)
        #expect(fetch.termination == .exited(0), "\(fetch.stderrText)")
        let json = try JSON.parse(fetch.stdout)
        #expect(json["release"]?.stringValue == release)
        #expect(json["suite"]?.stringValue == "bookworm-security")
        let directory = try #require(json["directory"]?.stringValue)
        #expect(FileSystem.exists(Path.join(directory, "boot/vmlinuz-\(release)")))
        #expect(FileSystem.exists(Path.join(directory, "lib/modules/\(release)/modules.dep")))
        // The headers include the cached common headers, not /usr/src's.
        let makefile = try FileSystem.readText(Path.join(directory, "usr/src/linux-headers-\(release)/Makefile"))
        let included = makefile.split(separator: "\n").first { $0.hasPrefix("include ") }.map {
            String($0.dropFirst(8))
        }
        #expect(included?.hasPrefix(directory + "/usr/src/linux-headers-") == true)
        #expect(included.map { FileSystem.exists($0) } == true)
        let names = json["packages"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(names.contains("linux-image-\(release)"))
        #expect(names.contains("linux-headers-\(release)"))
        #expect(names.contains { $0.hasPrefix("linux-kbuild-") })
        #expect(names.contains { $0.hasSuffix("-common") })
        // Nothing went to the host's /boot or dpkg database.
        #expect(!FileSystem.exists("/boot/vmlinuz-\(release)"))
        #expect(DpkgStatus(path: "/var/lib/dpkg/status").version(of: "linux-image-\(release)") == nil)

        // Idempotent: the second fetch reuses it at once.
        let again = try await SutureCLI.run([
            "kernel", "fetch", release, "--suite", "bookworm-security", "--no-source", "--json",
        ])
        #expect(again.termination == .exited(0), "\(again.stderrText)")
        let againJSON = try JSON.parse(again.stdout)
        #expect(againJSON["reused"]?.boolValue == true)
        #expect(againJSON["downloadedBytes"]?.intValue == 0)
        #expect(again.seconds < 2)

        // Listed as fetched, with its compiler (gcc-12, the host's), never the default.
        let list = try await SutureCLI.run(["kernel", "list", "--json"])
        #expect(list.termination == .exited(0), "\(list.stderrText)")
        let listJSON = try JSON.parse(list.stdout)
        let entry = try #require(listJSON["kernels"]?.arrayValue?.first { $0["release"]?.stringValue == release })
        #expect(entry["fetched"]?.stringValue == directory)
        #expect(entry["default"]?.boolValue == false)
        #expect(listJSON["default"]?.stringValue != release)
        #expect(entry["compiler"]?.stringValue?.contains("gcc-12") == true)
        #expect(entry["hostCompiler"]?.boolValue == true)
        #expect(entry["build"]?.stringValue == "host")

        // It boots, with its modules from the cache.
        let boot = try await SutureCLI.run([
            "vm", "--kernel", release, "--modules", "xfs", "--",
            "uname -r; modprobe xfs && grep -o '^xfs ' /proc/modules",
        ])
        #expect(boot.termination == .exited(0), "\(boot.stderrText)")
        #expect(boot.stdoutText == "\(release)\nxfs \n")
    }

    @Test func anUnknownReleaseIsAClearError() async throws {
        let r = try await SutureCLI.run([
            "kernel", "fetch", "6.12.9999+deb12-amd64", "--suite", "bookworm-security", "--json",
        ])
        #expect(r.termination == .exited(1))
        let json = try JSON.parse(r.stdout)
        #expect(json["error"]?["code"]?.stringValue == "unknown-kernel")
        #expect(
            json["error"]?["message"]?.stringValue?.contains(
                "no suite carries kernel release 6.12.9999+deb12-amd64; searched bookworm-security") == true)
        let unknown = try await SutureCLI.run(["vm", "--kernel", "6.12.9999+deb12-amd64", "--", "true"])
        #expect(unknown.termination == .exited(125))  // suture vm: 125 for a failure before the command runs
        #expect(unknown.stderrText.contains("suture kernel fetch 6.12.9999+deb12-amd64"))
    }

    @Test func anUnreachableSuiteIsAClearErrorAndLeavesNoKernel() async throws {
        let cache = try TemporaryDirectory(prefix: "suture-unreachable")
        // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        let r = try await SutureCLI.run(
            ["kernel", "fetch", Self.defaultRelease, "--suite", "bookworm-security", "--json"],
            environment: ["SUTURE_CACHE": cache.path, "SUTURE_DEBIAN_MIRROR": "http://127.0.0.1:9"], timeout: 120)
        #expect(r.termination == .exited(1))
        let json = try JSON.parse(r.stdout)
        #expect(json["error"]?["code"]?.stringValue == "suite-unreachable")
        let message = json["error"]?["message"]?.stringValue ?? ""
        #expect(
            message.contains("cannot reach suite bookworm-security at http://127.0.0.1:9/debian-security"), "\(message)"
        )
        #expect(message.contains("Connection refused"), "\(message)")
        #expect(((try? FileSystem.list(Path.join(cache.path, "kernels"))) ?? []).isEmpty)
    }
}
