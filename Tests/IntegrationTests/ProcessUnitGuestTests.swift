// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport
import Testing

/// `suture process apply --unit` under real systemd, in a Debian guest: a
/// service whose shell starts three copies of a program that maps a shared
/// library; one library patch for all of them, found through the unit's
/// cgroup, then reverted the same way.
@Suite(.serialized)
struct ProcessUnitGuestTests {
    /// The library fixture of the process tests (program, library, diff).
    static let fixture = Path.join(
        Path.directory(of: Path.directory(of: #filePath)), "ProcessPatchTests", "Fixtures", "sharedlib")

    @Test func aLibraryFixForEveryProcessOfASystemdService() async throws {
        // Built on the host (Debian 12, as the guest of this kernel): the
        // program and library keep their absolute paths in the guest.
        let scratch = try TemporaryDirectory(prefix: "suture-unit-guest")
        let source = Path.join(scratch.path, "src")
        _ = try Command.output(["cp", "-r", Self.fixture, source])
        let patch = Path.join(scratch.path, "fix.patch.o")
        let build = try SutureBinary.run([
            "process", "build", Path.join(source, "patch.diff"), "--source", source, "--build", "make",
            "--binary", "libshared.so", "-o", patch,
        ])
        try #require(build.termination == .exited(0), "process build: \(build.stdoutText)\(build.stderrText)")

        let waited = Clock.now()
        try await GuestLock.withLock {
            let name = "unit-\(getpid())"
            let locked = Clock.now()
            let guest = try TestDebianGuest.start(name)
            defer { guest.stop() }
            let booted = Clock.now()
            defer {
                print(
                    "ProcessUnitGuestTests: lock \(Int(locked - waited)) s, boot \(Int(booted - locked)) s (sshd after \(guest.bootSeconds) s), test \(Int(Clock.now() - booted)) s"
                )
            }
            for file in ["app", "libshared.so"] {
                try guest.copy(Path.join(source, file), to: Path.join(source, file))
            }
            try guest.copy(patch, to: patch)
            let unit = """
                [Unit]
                Description=three copies of the suture library test program
                [Service]
                ExecStart=/bin/sh -c 'for i in 1 2 3; do \(source)/app > /run/sl.$i & done; wait'
                """
            try guest.checked(
                "printf '%s\\n' \(Progress.shellQuoted(unit)) > /etc/systemd/system/sl.service && systemctl daemon-reload && systemctl start sl.service"
            )
            let outputs = "/run/sl.1 /run/sl.2 /run/sl.3"
            // Each program's last describe line, once all three print.
            func lastLines() throws -> [String] {
                try guest.checked("for f in \(outputs); do grep describe $f | tail -n 1; done").split(
                    separator: "\n"
                ).map(String.init)
            }
            func waitFor(_ line: String) throws -> [String] {
                var last: [String] = []
                for _ in 0..<100 {
                    last = (try? lastLines()) ?? []
                    if last.count == 3 && last.allSatisfy({ $0 == line }) { break }
                    Clock.sleep(seconds: 0.2)
                }
                return last
            }
            #expect(try waitFor("describe v1 6") == Array(repeating: "describe v1 6", count: 3))

            let apply = try JSON.parse(try guest.checked("suture process apply --unit sl.service \(patch) --json"))
            #expect(apply["cgroup"]?.stringValue == "/system.slice/sl.service", "\(apply.serialized())")
            let states = (apply["processes"]?.arrayValue ?? []).map { $0["state"]?.stringValue ?? "" }.sorted()
            // The unit's shell maps no libshared.so and is skipped.
            #expect(states == ["applied", "applied", "applied", "skipped"], "\(apply.serialized())")
            #expect(try waitFor("describe v2 15") == Array(repeating: "describe v2 15", count: 3))

            let status = try JSON.parse(try guest.checked("suture process status --unit sl --json"))
            let patched = (status["processes"]?.arrayValue ?? []).filter {
                $0["patches"]?[0]?["state"]?.stringValue == "applied"
            }
            #expect(patched.count == 3, "\(status.serialized())")
            let text = try guest.checked("suture process status --unit sl.service")
            #expect(text.hasPrefix("unit sl.service (cgroup /system.slice/sl.service): 4 process(es)"), "\(text)")

            let revert = try JSON.parse(try guest.checked("suture process revert --unit sl.service --json"))
            #expect(revert["reverted"]?.intValue == 3, "\(revert.serialized())")
            #expect(try waitFor("describe v1 6") == Array(repeating: "describe v1 6", count: 3))
            #expect(try guest.checked("systemctl is-active sl.service") == "active\n")
            #expect(try guest.checked("grep -l memfd:suture: /proc/[0-9]*/maps 2>/dev/null | wc -l") == "0\n")
        }
    }
}
