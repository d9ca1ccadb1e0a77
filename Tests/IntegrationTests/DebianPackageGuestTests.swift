// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport
import Testing

/// `suture process build --deb` end to end: the test package (a daemon and
/// its client, fully hardened) built on the host with `dpkg-buildpackage`,
/// installed with `dpkg -i` in a Debian guest, where systemd starts the
/// daemon; its client loops against it while `suture process apply` and
/// `revert` run on the unit's main process. The client never sees an error.
@Suite(.serialized)
struct DebianPackageGuestTests {
    /// The package's debian/ and client, and the daemon's sources and fix
    /// from the server fixture.
    static let fixtures = Path.join(Path.directory(of: Path.directory(of: #filePath)), "ProcessPatchTests/Fixtures")

    @Test func packagedDaemonIsPatchedUnderLoadInADebianGuest() async throws {
        let scratch = try TemporaryDirectory(prefix: "suture-deb-guest")
        defer { scratch.remove() }
        let package = Path.join(scratch.path, "suture-hello-1.0")
        _ = try Command.output(["cp", "-r", Path.join(Self.fixtures, "debian"), package])
        for file in ["server.c", "respond.c", "respond.h", "patch.diff"] {
            try FileSystem.copyFile(Path.join(Self.fixtures, "server", file), Path.join(package, file))
        }
        let patch = Path.join(scratch.path, "fix.patch.o")
        let build = try SutureBinary.run([
            "process", "build", Path.join(package, "patch.diff"), "--deb", package, "--binary", "/usr/sbin/hellod",
            "-o", patch, "--json",
        ])
        try #require(build.termination == .exited(0), "process build --deb: \(build.stdoutText)\(build.stderrText)")
        let built = try JSON.parse(build.stdout)
        let deb = try #require(built["packages"]?.arrayValue?.first?.stringValue, "\(built.serialized())")

        try await GuestLock.withLock {
            let started = Clock.now()
            let guest = try TestDebianGuest.start("deb-\(getpid())")
            defer { guest.stop() }
            try guest.copy(deb, to: "/root/suture-hello.deb")
            try guest.copy(patch, to: "/root/fix.patch.o")
            // Installed as dpkg does; its postinst enables and starts the unit.
            try guest.checked("dpkg -i /root/suture-hello.deb")
            let active = try guest.ssh("systemctl is-active suture-hello.service").stdoutText
            let journal = try guest.checked("journalctl -o cat -u suture-hello.service | tail")
            #expect(active == "active\n", "\(journal)")
            let pid = try guest.checked("systemctl show -p MainPID --value suture-hello.service")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try guest.checked("readlink /proc/\(pid)/exe") == "/usr/sbin/hellod\n")

            // The client, in a loop until told to stop, one line per answer.
            let loop =
                "i=0; while [ ! -e /root/stop ]; do i=$((i+1)); "
                + "/usr/bin/hello-client 7070 c$i >> /root/answers 2>&1 || echo \"FAIL $i\" >> /root/failures; done; "
                + "touch /root/done"
            try guest.checked("systemd-run --unit=hello-load --quiet sh -c '\(loop)'")
            func count(_ version: String) throws -> Int {
                Int(
                    try guest.checked("grep -c ' \(version)$' /root/answers || true").trimmingCharacters(
                        in: .whitespacesAndNewlines)) ?? 0
            }
            func waitFor(_ version: String, more: Int) throws -> Bool {
                let target = try count(version) + more
                let deadline = Clock.now() + 120
                while Clock.now() < deadline {
                    if try count(version) >= target { return true }
                    Clock.sleep(seconds: 0.5)
                }
                return false
            }
            #expect(try waitFor("v1", more: 10), "no answers before the patch")

            let apply = try guest.ssh("suture process apply --pid \(pid) /root/fix.patch.o --timeout 60 --json")
            try #require(apply.termination == .exited(0), "apply: \(apply.stdoutText)\(apply.stderrText)")
            let applied = try JSON.parse(apply.stdoutText)
            print("DebianPackageGuestTests: apply \(applied.serialized())")
            #expect(try waitFor("v2", more: 10), "no v2 answers after apply")
            let status = try JSON.parse(try guest.checked("suture process status --pid \(pid) --json"))
            #expect(status["patches"]?.arrayValue?.count == 1, "\(status.serialized())")

            let revert = try guest.ssh("suture process revert --pid \(pid) --timeout 60 --json")
            try #require(revert.termination == .exited(0), "revert: \(revert.stdoutText)\(revert.stderrText)")
            #expect(try waitFor("v1", more: 10), "no v1 answers after revert")
            try guest.checked("touch /root/stop; for i in $(seq 100); do [ -e /root/done ] && break; sleep 0.2; done")

            let failures = try guest.checked("cat /root/failures 2>/dev/null || true")
            #expect(failures.isEmpty, "the client saw errors: \(failures.prefix(500))")
            // v1, then only v2, then only v1 again: each answer is whole.
            let answers = try guest.checked("cat /root/answers").split(separator: "\n").map(String.init)
            let versions = answers.map { String($0.split(separator: " ").last ?? "") }
            #expect(
                versions.allSatisfy { $0 == "v1" || $0 == "v2" },
                "odd answers: \(answers.filter { !$0.hasSuffix(" v1") && !$0.hasSuffix(" v2") }.prefix(5))")
            var runs: [String] = []
            for v in versions where runs.last != v { runs.append(v) }
            #expect(runs == ["v1", "v2", "v1"], "answer versions in order: \(runs)")
            print(
                "DebianPackageGuestTests: \(answers.count) answers, \(versions.filter { $0 == "v2" }.count) patched, booted in \(guest.bootSeconds) s, \(Int(Clock.now() - started)) s with the guest"
            )
            #expect(try guest.checked("systemctl is-active suture-hello.service") == "active\n")
        }
    }
}
