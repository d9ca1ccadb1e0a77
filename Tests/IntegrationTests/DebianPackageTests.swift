// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport
import Testing

/// The Debian packages (debian/, scripts/package.sh) installed with apt in
/// a fresh Debian guest, and a patch loaded by the packaged /usr/bin/suture.
///
/// The packages are those in `SUTURE_TEST_DEBS` (a folder), else in the
/// tree's `out/deb`: scripts/test.sh builds them with
/// scripts/check-package.sh first (a build from inside `swift test` would
/// wait forever for SwiftPM's lock on .build). The packaged suture must
/// name this tree's commit, so stale packages fail.
@Suite(.serialized)
struct DebianPackageTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// The two packages of this tree's version.
    static func packages() throws -> (runtime: String, build: String) {
        let version = try Command.run(["dpkg-parsechangelog", "-S", "Version"], workingDirectory: root)
            .stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        var folder = ProcessInfo.processInfo.environment["SUTURE_TEST_DEBS"] ?? ""
        if folder.isEmpty { folder = Path.join(root, "out/deb") }
        let runtime = Path.join(folder, "suture_\(version)_amd64.deb")
        let build = Path.join(folder, "suture-build_\(version)_all.deb")
        guard FileSystem.exists(runtime), FileSystem.exists(build) else {
            throw TestError(
                "no \(runtime) or \(build): build them with `bash scripts/package.sh` (or set SUTURE_TEST_DEBS)")
        }
        return (runtime, build)
    }

    /// The commit `suture --version` names for this tree.
    static func commit() throws -> String {
        try Command.run(
            ["git", "-c", "safe.directory=\(root)", "rev-parse", "--short=12", "HEAD"], workingDirectory: root
        )
        .stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func thePackagesInstallInAFreshDebianGuestAndThePackagedSutureLoadsAPatch() async throws {
        let debs = try Self.packages()
        let patch = try await PersistenceModules.shared.modules().procString
        try await GuestLock.withLock {
            let guest = try TestDebianGuest.start("pkg-\(getpid())")
            defer { guest.stop() }
            try guest.copy(debs.runtime, to: "/root/debs/\(Path.base(of: debs.runtime))")
            try guest.copy(debs.build, to: "/root/debs/\(Path.base(of: debs.build))")
            try guest.copy(patch.path, to: patch.guestPath)
            // apt resolves suture-build's dependencies (compiler, QEMU) from the archive.
            let started = Clock.now()
            let install = try guest.ssh(
                "cd /root/debs && DEBIAN_FRONTEND=noninteractive apt-get update -qq"
                    + " && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends"
                    + " -o Dpkg::Options::=--force-unsafe-io ./*.deb",
                timeout: 1200)
            #expect(install.termination == .exited(0), "apt install: \(install.stdoutText)\(install.stderrText)")
            print("DebianPackageTests: apt install of both packages took \(Int(Clock.now() - started)) s")
            let status = try guest.checked("dpkg-query -W -f='${Package} ${Status}\\n' suture suture-build")
            #expect(status == "suture install ok installed\nsuture-build install ok installed\n")
            #expect(try guest.checked("command -v gcc qemu-system-x86_64 make") != "")

            // The packaged binary, not the one the guest boots with.
            let hostVersion = try SutureBinary.run(["--version"]).stdoutText
            let packaged = try guest.checked("/usr/bin/suture --version")
            #expect(packaged.hasPrefix("suture "), "\(packaged)")
            #expect(hostVersion.hasPrefix(packaged.split(separator: "(").first.map(String.init) ?? "?"))
            #expect(packaged.contains("(commit \(try Self.commit())"), "stale packages? \(packaged)")
            #expect(try guest.checked("systemctl is-enabled suture.service || true") == "disabled\n")
            #expect(
                try guest.checked("systemctl show suture.service -p FragmentPath")
                    == "FragmentPath=/lib/systemd/system/suture.service\n")

            let loaded = try guest.ssh("/usr/bin/suture load \(patch.guestPath)", timeout: 300)
            #expect(loaded.termination == .exited(0), "\(loaded.stdoutText)\(loaded.stderrText)")
            #expect(try guest.checked("cat /sys/kernel/livepatch/\(patch.name)/enabled") == "1\n")
            #expect(try guest.checked("cat /proc/loadavg").hasSuffix(" patched\n"))
            let uname = try guest.checked("/usr/bin/suture uname")
            #expect(uname.contains(guest.release), "\(uname)")
            let info = try guest.checked("/usr/bin/suture info \(patch.guestPath)")
            #expect(info.contains(PersistenceModules.procStringDescription), "\(info)")

            let unloaded = try guest.ssh("/usr/bin/suture unload \(patch.name)", timeout: 300)
            #expect(unloaded.termination == .exited(0), "\(unloaded.stdoutText)\(unloaded.stderrText)")
            #expect(try guest.ssh("test -e /sys/kernel/livepatch/\(patch.name)").termination == .exited(1))
            #expect(try !guest.checked("cat /proc/loadavg").hasSuffix(" patched\n"))

            // Installing a patch enables the packaged unit.
            let installed = try JSON.parse(try guest.checked("/usr/bin/suture install --json \(patch.guestPath)"))
            #expect(installed["unit"]?.stringValue == "enabled")
            #expect(try guest.checked("systemctl is-enabled suture.service") == "enabled\n")
        }
    }
}
