// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TargetKernel
import TestSupport
import Testing

/// The Ansible collection (`ansible/`, `suture.livepatch`) against three
/// Debian guests booted once, in parallel, and shared by every scenario:
/// ansible-playbook runs the rollout playbook with an inventory of their
/// forwarded ssh ports. The scenarios run in order, each leaving the
/// guests as the next expects them (the failing ones revert everything).
/// The patch is the kernel's own `test_klp_livepatch` (it replaces
/// /proc/cmdline), built once, in a folder of per-release builds as
/// `suture build --kernel A --kernel B -o DIR` writes them.
@Suite(.serialized)
struct FleetTests {
    static let patch = "test_klp_livepatch"
    static let patched = "test_klp_livepatch: this has been live patched"
    /// A health check that fails on a host where /root/unhealthy exists.
    static let health = "test ! -e /root/unhealthy"

    @Test func rolloutCanaryRevertAndReboot() async throws {
        let module = try TestModules.bytes(Self.patch)
        let release = try KernelResolver().resolve(nil).release
        try await GuestLock.withLock {
            let started = Clock.now()
            defer { print("fleet: every scenario, boots included, took \(Int(Clock.now() - started)) s") }
            let fleet = try Fleet(count: 3)
            defer { fleet.stop() }
            print("fleet: three Debian guests up in \(Int(fleet.bootSeconds)) s")
            let builds = try fleet.scratch.write("builds/\(release)/test-klp-livepatch.ko", "")
            try FileSystem.write(builds, module)
            let buildDirectory = fleet.scratch.file("builds")
            // A folder of builds for another kernel only.
            let otherDirectory = fleet.scratch.file("other-builds")
            try FileSystem.makeDirectories(Path.join(otherDirectory, "0.0.0-0-none"))

            try noBuildIsNamedAndLeftAlone(fleet, otherDirectory, release)
            try checkModeChangesNothing(fleet, buildDirectory)
            try failingCanaryIsRevertedAlone(fleet, buildDirectory)
            try failureInSecondBatchRevertsEveryHostDone(fleet, buildDirectory)
            try goodRolloutReachesEveryHost(fleet, buildDirectory)
            try secondRunChangesNothing(fleet, buildDirectory)
            try rebootBringsThePatchBack(fleet)
        }
    }

    // MARK: - Scenarios

    func noBuildIsNamedAndLeftAlone(_ fleet: Fleet, _ directory: String, _ release: String) throws {
        let (run, report) = try fleet.rollout(["suture_src": directory, "suture_health_command": Self.health])
        #expect(run.termination.succeeded, "\(run.stdoutText)")
        let noBuild = report["noBuild"] as? [[String: Any]] ?? []
        #expect(noBuild.compactMap { $0["host"] as? String } == fleet.guests.map(\.host))
        #expect(noBuild.allSatisfy { $0["release"] as? String == release })
        for guest in fleet.guests {
            #expect(
                run.stdoutText.contains("no build for kernel \(release) in \(directory): \(guest.host) is left alone"))
            #expect(Fleet.changedCount(run.stdoutText, host: guest.host) == 0)
            #expect(try guest.loaded().isEmpty)
            #expect(try guest.installed().isEmpty)
        }
    }

    func checkModeChangesNothing(_ fleet: Fleet, _ directory: String) throws {
        let run = try fleet.adHoc(
            "guest1", "suture.livepatch.suture_patch", "src=\(directory) state=installed", check: true)
        #expect(run.termination.succeeded, "\(run.stdoutText)")
        #expect(run.stdoutText.contains("guest1 | CHANGED"), "\(run.stdoutText)")
        #expect(run.stdoutText.contains("\"install\"]"), "\(run.stdoutText)")
        #expect(try fleet.guests[0].loaded().isEmpty)
        #expect(try fleet.guests[0].installed().isEmpty)
    }

    func failingCanaryIsRevertedAlone(_ fleet: Fleet, _ directory: String) throws {
        let canary = fleet.guests[0]
        _ = try canary.check("touch /root/unhealthy")
        defer { _ = try? canary.check("rm -f /root/unhealthy") }
        let (run, report) = try fleet.rollout([
            "suture_src": directory, "suture_health_command": Self.health, "suture_health_retries": 1,
        ])
        #expect(!run.termination.succeeded)
        #expect(
            run.stdoutText.contains("rollout stopped: guest1 failed at \\\"Health check (command)\\\""),
            "\(run.stdoutText)"
        )
        #expect(report["result"] as? String == "reverted")
        #expect((report["failed"] as? [[String: Any]])?.compactMap { $0["host"] as? String } == ["guest1"])
        #expect(report["reverted"] as? [String] == ["guest1"])
        #expect(report["untouched"] as? [String] == ["guest2", "guest3"])
        // It was loaded (the health check runs after the load), then reverted.
        let log = try canary.check("dmesg")
        #expect(log.contains("'\(Self.patch)': patching complete"))
        #expect(log.contains("'\(Self.patch)': unpatching complete"))
        #expect(try canary.loaded().isEmpty)
        #expect(try canary.installed().isEmpty)
        for guest in fleet.guests.dropFirst() {
            #expect(!run.stdoutText.contains("[\(guest.host)]"))
            #expect(try !guest.check("dmesg").contains(Self.patch))
            #expect(try guest.installed().isEmpty)
        }
    }

    func failureInSecondBatchRevertsEveryHostDone(_ fleet: Fleet, _ directory: String) throws {
        let failing = fleet.guests[2]
        _ = try failing.check("touch /root/unhealthy")
        defer { _ = try? failing.check("rm -f /root/unhealthy") }
        let (run, report) = try fleet.rollout([
            "suture_src": directory, "suture_health_command": Self.health, "suture_health_retries": 1,
            "suture_batches": [1, 2],
        ])
        #expect(!run.termination.succeeded)
        #expect((report["failed"] as? [[String: Any]])?.compactMap { $0["host"] as? String } == ["guest3"])
        #expect(Set(report["reverted"] as? [String] ?? []) == ["guest1", "guest2", "guest3"])
        #expect(report["revertFailed"] as? [String] == [])
        for guest in fleet.guests {
            #expect(try guest.loaded().isEmpty, "\(guest.host)")
            #expect(try guest.installed().isEmpty, "\(guest.host)")
            #expect(try guest.check("cat /proc/cmdline") != Self.patched + "\n")
        }
    }

    func goodRolloutReachesEveryHost(_ fleet: Fleet, _ directory: String) throws {
        let started = Clock.now()
        let (run, report) = try fleet.rollout(["suture_src": directory, "suture_health_command": Self.health])
        print("fleet: rollout to three guests took \(String(format: "%.1f", Clock.now() - started)) s")
        #expect(run.termination.succeeded, "\(Command.tail(run.stdoutText, lines: 40))")
        #expect(report["patched"] as? [String] == ["guest1", "guest2", "guest3"])
        for guest in fleet.guests {
            #expect(try guest.loaded() == [Self.patch], "\(guest.host)")
            let store = try guest.json("suture list --installed --json")["installed"] as? [[String: Any]] ?? []
            #expect(store.compactMap { $0["name"] as? String } == [Self.patch])
            #expect(store.first?["state"] as? String == "loaded")
            #expect(try guest.check("cat /proc/cmdline") == Self.patched + "\n")
            #expect(try guest.check("systemctl is-enabled suture.service") == "enabled\n")
        }
    }

    func secondRunChangesNothing(_ fleet: Fleet, _ directory: String) throws {
        let (run, report) = try fleet.rollout(["suture_src": directory, "suture_health_command": Self.health])
        #expect(run.termination.succeeded)
        #expect(report["changed"] as? [String] == [])
        for guest in fleet.guests {
            #expect(Fleet.changedCount(run.stdoutText, host: guest.host) == 0, "\(guest.host)")
        }
    }

    func rebootBringsThePatchBack(_ fleet: Fleet) throws {
        let guest = fleet.guests[1]
        let seconds = try guest.guest.reboot()
        print("fleet: \(guest.host) rebooted to sshd in \(Int(seconds)) s")
        #expect(try guest.loaded() == [Self.patch])
        #expect(try guest.check("cat /proc/cmdline") == Self.patched + "\n")
        let unit = try guest.check("systemctl show -p ActiveState -p Result suture.service")
        #expect(unit.contains("ActiveState=active") && unit.contains("Result=success"), "\(unit)")
        // That the unit runs before sysinit.target ends is DebianGuestTests' to check.
    }
}
