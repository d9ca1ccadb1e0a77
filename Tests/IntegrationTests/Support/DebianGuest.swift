// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport

/// A kept Debian guest for tests (`suture vm --image debian --keep NAME`):
/// start it, run commands as root over ssh, copy files in, reboot it from
/// inside, stop it. Started through the CLI, as other tools would.
///
/// It does not take `GuestLock`: callers that boot several guests at once
/// (the fleet tests) decide themselves; one-guest suites hold the lock.
///
/// ```swift
/// let guest = try TestDebianGuest.start("web1")
/// defer { guest.stop() }
/// try guest.copy("/tmp/p.ko", to: "/root/p.ko")
/// let out = try guest.checked("suture load /root/p.ko")
/// ```
final class TestDebianGuest: @unchecked Sendable {
    let name: String
    let sshPort: Int
    let sshKey: String
    let release: String
    let suite: String
    /// Boot to sshd answering, as `suture vm` measured it.
    let bootSeconds: Double
    /// The host command that logs in (as `suture vm --keep` printed it).
    let sshCommand: String

    private init(_ report: JSON) throws {
        guard let name = report["name"]?.stringValue, let port = report["sshPort"]?.intValue,
            let key = report["sshKey"]?.stringValue, let release = report["release"]?.stringValue,
            let ssh = report["ssh"]?.stringValue
        else { throw TestError("suture vm --keep printed no guest: \(report)") }
        self.name = name
        sshPort = Int(port)
        sshKey = key
        self.release = release
        suite = report["suite"]?.stringValue ?? ""
        bootSeconds = report["bootSeconds"]?.doubleValue ?? 0
        sshCommand = ssh
    }

    /// Boots guest `name` (its disk too, when kept by `stop(keepDisk:)`).
    static func start(
        _ name: String, kernel: String? = nil, append: [String] = [], timeout: Double = 900
    ) throws -> TestDebianGuest {
        var arguments = ["vm", "--image", "debian", "--keep", name, "--json"]
        if let kernel { arguments += ["--kernel", kernel] }
        for parameter in append { arguments += ["--append", parameter] }
        let run = try SutureBinary.run(arguments, timeout: timeout)
        guard run.termination == .exited(0) else {
            throw TestError(
                "suture \(arguments.joined(separator: " ")) failed (\(run.termination)): \(run.stdoutText)\(run.stderrText)"
            )
        }
        return try TestDebianGuest(try JSON.parse(run.stdout))
    }

    var sshArguments: [String] {
        [
            "ssh", "-i", sshKey, "-p", String(sshPort), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
            "-o", "IdentitiesOnly=yes", "root@127.0.0.1",
        ]
    }

    /// Runs a shell line as root in the guest.
    func ssh(_ command: String, input: [UInt8]? = nil, timeout: Double = 300) throws -> CommandResult {
        try Command.run(sshArguments + ["--", command], input: input, timeout: timeout)
    }

    /// Runs a shell line and returns its stdout; throws unless it exits 0.
    @discardableResult
    func checked(_ command: String, timeout: Double = 300) throws -> String {
        let run = try ssh(command, timeout: timeout)
        guard run.termination == .exited(0) else {
            throw TestError("in guest \(name): \(command) → \(run.termination): \(run.stdoutText)\(run.stderrText)")
        }
        return run.stdoutText
    }

    /// Copies a host file to `guestPath` (mode kept: executable or not).
    func copy(_ hostPath: String, to guestPath: String) throws {
        let bytes = try FileSystem.read(hostPath)
        let mode = String(try FileSystem.status(hostPath).st_mode & 0o777, radix: 8)
        let quoted = Progress.shellQuoted(guestPath)
        let run = try ssh(
            "mkdir -p \"$(dirname \(quoted))\" && cat > \(quoted) && chmod \(mode) \(quoted)", input: bytes)
        guard run.termination == .exited(0) else {
            throw TestError("copy \(hostPath) to \(name):\(guestPath) failed: \(run.stderrText)")
        }
    }

    /// The kernel's boot id, new at every boot.
    func bootID() throws -> String {
        try checked("cat /proc/sys/kernel/random/boot_id").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Reboots from inside (`systemctl reboot`) and waits until root logs
    /// in on a new boot; returns the seconds that took.
    @discardableResult
    func reboot(timeout: Double = 600) throws -> Double {
        let before = try bootID()
        let started = Clock.now()
        _ = try? ssh("systemctl reboot", timeout: 30)
        while Clock.now() - started < timeout {
            if let run = try? ssh("cat /proc/sys/kernel/random/boot_id", timeout: 30), run.termination == .exited(0),
                run.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) != before
            {
                return Clock.now() - started
            }
            Clock.sleep(seconds: 1)
        }
        throw TestError("guest \(name) did not come back from a reboot within \(Int(timeout)) s")
    }

    /// Powers the guest off (`suture vm --stop`); `keepDisk` keeps its
    /// overlay for the next `start` of the same name.
    func stop(keepDisk: Bool = false) {
        _ = try? SutureBinary.run(["vm", "--stop", name] + (keepDisk ? ["--keep-disk"] : []), timeout: 120)
    }
}
