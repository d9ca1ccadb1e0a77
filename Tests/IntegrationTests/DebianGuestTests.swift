// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport
import Testing

/// Real Debian guests (`suture vm --image debian`): systemd as init, sshd,
/// python3, the kernel's own modules and this suture; and the boot unit
/// under real systemd. One guest, booted three times (twice by rebooting
/// from inside, once more with a kernel parameter added), serves every
/// assertion.
@Suite(.serialized)
struct DebianGuestTests {
    @Test func aPatchInstalledInADebianGuestIsBackAfterARebootThroughSutureServiceUnlessDisabled() async throws {
        let patch = try await PersistenceModules.shared.modules().procString
        try await GuestLock.withLock {
            let name = "boot-\(getpid())"
            var guest = try TestDebianGuest.start(name)
            defer { guest.stop() }
            print(
                "DebianGuestTests: guest \(name) (\(guest.suite), \(guest.release)) booted to sshd in \(guest.bootSeconds) s"
            )

            // A real Debian: systemd is PID 1 and reaches a running system.
            #expect(try guest.checked("cat /proc/1/comm") == "systemd\n")
            let state = try guest.ssh("systemctl is-system-running --wait", timeout: 300)
            let failed = try guest.checked("systemctl --failed --no-legend")
            #expect(state.stdoutText == "running\n", "failed units: \(failed)")
            #expect(try guest.checked("python3 -c 'print(6 * 7)'") == "42\n")
            #expect(try guest.checked("uname -r") == guest.release + "\n")
            #expect(
                try guest.checked("grep -o 'VERSION_CODENAME=.*' /etc/os-release")
                    == "VERSION_CODENAME=\(guest.suite)\n")
            // The suture there is the one that booted it.
            let hostVersion = try SutureBinary.run(["--version"]).stdoutText
            #expect(try guest.checked("/usr/local/bin/suture --version") == hostVersion)
            // The kernel's own modules are there for modprobe.
            #expect(try guest.checked("modprobe xfs && grep -c '^xfs ' /proc/modules") == "1\n")
            // sshd is forwarded on 127.0.0.1 only.
            #expect(Self.listeners(port: guest.sshPort) == ["127.0.0.1"])

            // Installed with the unit suture install --unit writes.
            try guest.copy(patch.path, to: patch.guestPath)
            try guest.checked("suture install --unit && systemctl daemon-reload")
            let installed = try JSON.parse(try guest.checked("suture install --json \(patch.guestPath)"))
            #expect(installed["unit"]?.stringValue == "enabled")
            #expect(try guest.checked("cat /proc/loadavg").hasSuffix(" patched\n"))
            let commandLine = try guest.checked("cat /proc/cmdline")

            // A real reboot from inside comes back on the same kernel and
            // command line, with the patch loaded by suture.service before
            // sysinit.target was reached.
            let rebootSeconds = try guest.reboot()
            print("DebianGuestTests: reboot to sshd in \(rebootSeconds) s")
            #expect(try guest.checked("uname -r") == guest.release + "\n")
            #expect(try guest.checked("cat /proc/cmdline") == commandLine)
            #expect(try guest.checked("cat /sys/kernel/livepatch/\(patch.name)/enabled") == "1\n")
            #expect(try guest.checked("cat /proc/loadavg").hasSuffix(" patched\n"))
            let unit = try Self.properties(
                guest.checked(
                    "systemctl show suture.service -p ActiveState -p Result -p ExecMainStatus -p ExecMainExitTimestampMonotonic"
                ))
            #expect(unit["ActiveState"] == "active")
            #expect(unit["Result"] == "success")
            #expect(unit["ExecMainStatus"] == "0")
            let sysinit = try Self.properties(
                guest.checked("systemctl show sysinit.target -p ActiveEnterTimestampMonotonic"))
            let loadedAt = UInt64(unit["ExecMainExitTimestampMonotonic"] ?? "") ?? 0
            let sysinitAt = UInt64(sysinit["ActiveEnterTimestampMonotonic"] ?? "") ?? 0
            #expect(
                loadedAt > 0 && sysinitAt > 0 && loadedAt <= sysinitAt,
                "suture.service ended at \(loadedAt) µs, sysinit.target reached at \(sysinitAt) µs")
            let chain = try guest.checked("systemctl list-dependencies --after --plain --no-legend sysinit.target")
            #expect(chain.contains("suture.service"), "sysinit.target does not wait for suture.service: \(chain)")
            let journal = try guest.checked("journalctl -b -o cat -u suture.service")
            #expect(journal.contains(patch.name) || journal.contains("proc_string"), "journal: \(journal)")

            // Booted again with suture.enable=0: the unit is skipped, the
            // patch stays installed but not loaded.
            guest.stop(keepDisk: true)
            guest = try TestDebianGuest.start(name, append: ["suture.enable=0"])
            #expect(try guest.checked("cat /proc/cmdline").contains("suture.enable=0"))
            let skipped = try Self.properties(
                guest.checked("systemctl show suture.service -p ActiveState -p ConditionResult -p UnitFileState"))
            #expect(skipped["ConditionResult"] == "no")
            #expect(skipped["ActiveState"] == "inactive")
            #expect(skipped["UnitFileState"] == "enabled")
            #expect(try guest.ssh("test -e /sys/kernel/livepatch/\(patch.name)").termination == .exited(1))
            #expect(try !guest.checked("cat /proc/loadavg").hasSuffix(" patched\n"))
            let listed = try guest.checked("suture list --installed --json")
            let notLoaded = try JSON.parse(listed)["notLoaded"]
            #expect(notLoaded.map { "\($0)" }?.contains("proc_string") == true, "suture list --installed: \(listed)")
        }
    }

    /// The Debian guest's options are checked before anything boots.
    @Test func debianGuestOptionsAreCheckedBeforeBooting() throws {
        for (arguments, status) in [
            (["vm", "--keep", "x", "--", "true"], Int32(64)),  // --keep needs --image debian
            (["vm", "--image", "debian", "--keep", "../x"], 64),  // not a guest name
            (["vm", "--image", "debian", "--keep", "x", "--", "true"], 64),  // one action
            (["vm", "--image", "debian", "--append", "a b", "--", "true"], 64),
            (["vm", "--stop", "x", "--keep-disk", "--kernel", "6.1"], 64),
            (["vm", "--stop", "no-such-guest-\(getpid())"], 1),
        ] {
            let run = try SutureBinary.run(arguments, timeout: 60)
            #expect(run.termination == .exited(status), "suture \(arguments): \(run.termination) \(run.stderrText)")
        }
        let listed = try JSON.parse(try SutureBinary.run(["vm", "--list", "--json"], timeout: 60).stdout)
        #expect(listed["guests"] != nil)
    }

    /// `systemctl show` output as a dictionary.
    static func properties(_ text: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            result[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return result
    }

    /// The local addresses listening on a TCP port (IPv4 and IPv6).
    static func listeners(port: Int) -> [String] {
        var addresses: [String] = []
        let hexPort = String(format: "%04X", port)
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            for line in (FileSystem.readTextIfPresent(file) ?? "").split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 3, fields[3] == "0A" else { continue }  // LISTEN
                let local = fields[1].split(separator: ":")
                guard local.count == 2, local[1] == hexPort else { continue }
                if local[0] == "0100007F" {
                    addresses.append("127.0.0.1")
                } else {
                    addresses.append(String(local[0]))
                }
            }
        }
        return addresses
    }
}
