// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TargetKernel
import TestSupport
import Testing

/// Kernels of other Debian releases, built in build roots of their own
/// compiler and proven in a guest of each: Debian 13's 6.12 (gcc-14) and
/// sid's 7.2 (gcc-16). Each fetches its kernel (with source) and makes its
/// root on a fresh cache (`SUTURE_CACHE`; reused after), so it needs
/// deb.debian.org. One guest boot per kernel carries both patches.
@Suite(.serialized)
struct BuildRootTests {
    static let trixie = (release: "6.12.117+deb13-amd64", suite: "trixie", root: "trixie-gcc-14")
    static let sid = (release: "7.2.13+deb14-amd64", suite: "sid", root: "sid-gcc-16")
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/buildroot").standardized.path
    static let demo = "\(fixtures)/version.diff"
    static let binfmt = "\(fixtures)/binfmt-misc-6.12.diff"

    /// Fetches and prepares `release`; returns the prepared tree's JSON.
    static func prepare(_ release: String, suite: String, root: String) async throws -> JSON {
        let fetch = try await SutureCLI.run(["kernel", "fetch", release, "--suite", suite, "--json"], timeout: 2400)
        try #require(fetch.termination == .exited(0), "\(fetch.stdoutText)\(fetch.stderrText)")
        let prepare = try await SutureCLI.run(["kernel", "prepare", "--kernel", release, "--json"], timeout: 2400)
        try #require(prepare.termination == .exited(0), "\(prepare.stdoutText)\(prepare.stderrText)")
        let json = try JSON.parse(prepare.stdout)
        #expect(json["buildRoot"]?.stringValue == Path.join(CacheLocation.roots(CacheLocation.root()), root))
        #expect(json["compiler"]?["matches"]?.boolValue == true)
        // Reusing the root and the tree takes well under a second.
        let again = try await SutureCLI.run(["kernel", "prepare", "--kernel", release, "--json"])
        #expect(again.termination == .exited(0), "\(again.stderrText)")
        #expect(again.seconds < 2, "reuse took \(again.seconds) s")
        #expect(try JSON.parse(again.stdout)["reused"]?.boolValue == true)
        return json
    }

    /// Builds the demo and the binfmt_misc module patch for `release`,
    /// checks a shipped function reproduces byte for byte, then loads,
    /// observes, unloads and observes again in one guest.
    static func proveInGuest(_ kernel: (release: String, suite: String, root: String)) async throws {
        _ = try await prepare(kernel.release, suite: kernel.suite, root: kernel.root)
        let scratch = try TemporaryDirectory(prefix: "suture-buildroot-test")
        defer { scratch.remove() }
        var modules: [String: String] = [:]
        for (name, diff) in [("demo", demo), ("binfmt", binfmt)] {
            let build = try await SutureCLI.run(
                ["build", diff, "--kernel", kernel.release, "--name", name, "-o", scratch.path, "--json"],
                timeout: 1800)
            try #require(build.termination == .exited(0), "\(name): \(build.stdoutText)\(build.stderrText)")
            let report = try JSON.parse(build.stdout)
            modules[name] = try #require(report["module"]?.stringValue)
            #expect(report["buildRoot"]?.stringValue?.hasSuffix("/roots/\(kernel.root)") == true)
            // 6.12 and 7.2 clear klp relocations in the core (klp_clear_object_relocs, read from the source).
            #expect(report["relocationClearing"]?.stringValue == "byKernel")
        }

        // Compiled exactly as the distro compiled it: the image's code, byte for byte.
        let reproduce = try await SutureCLI.run(
            ["kernel", "reproduce", "--kernel", kernel.release, "fs/proc/version.o", "fs/proc/meminfo.o", "--json"],
            timeout: 1200)
        #expect(reproduce.termination == .exited(0), "\(reproduce.stdoutText)\(reproduce.stderrText)")
        let report = try JSON.parse(reproduce.stdout)
        #expect((report["compared"]?.intValue ?? 0) >= 3, "\(reproduce.stdoutText)")
        #expect(report["identical"]?.intValue == report["compared"]?.intValue)
        let functions = report["objects"]?.arrayValue?.flatMap { $0["functions"]?.arrayValue ?? [] } ?? []
        #expect(
            functions.contains {
                $0["name"]?.stringValue == "version_proc_show" && $0["identical"]?.boolValue == true
            }, "\(reproduce.stdoutText)")

        let script = """
            set -e
            cat /proc/version
            suture load /root/demo.ko
            echo "after: $(tail -n 1 /proc/version)"
            suture unload livepatch_demo
            echo "restored: $(tail -n 1 /proc/version)"
            modprobe binfmt_misc
            mount -t binfmt_misc none /proc/sys/fs/binfmt_misc
            echo "binfmt before: $(cat /proc/sys/fs/binfmt_misc/status)"
            suture load /root/binfmt.ko
            echo "binfmt after: $(cat /proc/sys/fs/binfmt_misc/status)"
            suture unload livepatch_binfmt
            echo "binfmt restored: $(cat /proc/sys/fs/binfmt_misc/status)"
            ls /sys/kernel/livepatch | wc -l | sed 's/^/left: /'
            """
        let run = try await SutureCLI.run(
            [
                "vm", "--kernel", kernel.release, "--modules", "binfmt_misc", "--timeout", "600",
                "--add", "\(modules["demo"]!):/root/demo.ko", "--add", "\(modules["binfmt"]!):/root/binfmt.ko",
                "--", script,
            ], timeout: 900)
        // 126 would mean an oops, a panic or a warning in the guest.
        #expect(run.termination == .exited(0), "\(run.stdoutText)\(run.stderrText)")
        let out = run.stdoutText
        #expect(out.contains("Linux version \(kernel.release)"), "\(out)")
        #expect(out.contains("after: (live-patched by suture)\n"), "\(out)")
        #expect(!out.contains("restored: (live-patched by suture)"), "\(out)")
        #expect(out.contains("binfmt before: enabled\n"), "\(out)")
        #expect(out.contains("binfmt after: enabled (patched)\n"), "\(out)")
        #expect(out.contains("binfmt restored: enabled\n"), "\(out)")
        #expect(out.contains("left: 0\n"), "\(out)")
    }

    @Test func trixieKernelInItsGcc14Root() async throws {
        try await Self.proveInGuest(Self.trixie)
    }

    @Test func sidKernelInItsGcc16Root() async throws {
        try await Self.proveInGuest(Self.sid)
    }

    /// One diff for a Debian 12 6.1, a trixie 6.12 and a sid 7.2 kernel in
    /// one command, and a kernel that does not exist, which fails alone.
    @Test func oneDiffForEveryKernel() async throws {
        let host = try TestGuest.targetKernel().release
        let scratch = try TemporaryDirectory(prefix: "suture-multi-build")
        defer { scratch.remove() }
        for kernel in [Self.trixie, Self.sid] {
            let fetch = try await SutureCLI.run(
                ["kernel", "fetch", kernel.release, "--suite", kernel.suite, "--json"], timeout: 2400)
            try #require(fetch.termination == .exited(0), "\(fetch.stderrText)")
        }
        let bogus = "6.12.9999+deb13-amd64"
        let kernels = [host, Self.trixie.release, bogus, Self.sid.release]
        let r = try await SutureCLI.run(
            ["build", Self.demo, "--name", "version", "-o", scratch.path, "--json"]
                + kernels.flatMap { ["--kernel", $0] }, timeout: 3600)
        #expect(r.termination == .exited(1), "\(r.stderrText)")
        let json = try JSON.parse(r.stdout)
        #expect(json["built"]?.intValue == 3)
        #expect(json["failed"]?.intValue == 1)
        let results = json["kernels"]?.arrayValue ?? []
        #expect(results.map { $0["release"]?.stringValue ?? "" } == kernels)
        for (release, result) in zip(kernels, results) where release != bogus {
            #expect(result["built"]?.boolValue == true, "\(release): \(result.serialized())")
            let module = result["module"]?.stringValue ?? ""
            #expect(module == Path.join(scratch.path, release, "livepatch-version.ko"))
            // The host's 6.1 has no klp_clear_object_relocs: the patch clears them itself.
            #expect(result["relocationClearing"]?.stringValue == (release == host ? "byPatch" : "byKernel"))
            #expect((result["buildRoot"]?.stringValue == nil) == (release == host))
            // Each module is for its own kernel: its vermagic names the release.
            let info = try Command.run(["modinfo", "-F", "vermagic", module])
            #expect(info.stdoutText.hasPrefix(release + " "), "\(release): \(info.stdoutText)")
        }
        let failure = results.count == 4 ? results[2] : .null
        #expect(failure["built"]?.boolValue == false)
        #expect(failure["error"]?["code"]?.stringValue == "unknown-kernel")
        #expect(failure["error"]?["message"]?.stringValue?.contains(bogus) == true)
    }
}
