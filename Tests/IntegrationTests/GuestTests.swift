// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import Testing
import VM

/// The library API on one shared boot of the target kernel: commands,
/// uploads, modules and a live patch. Nothing here may break the guest.
@Suite(.serialized, .guest(modules: ["binfmt_misc", "xfs"]))
struct GuestTests {
    @Test func outputAndStatusComeBackByteForByte() throws {
        let guest = try TestGuest.current()
        let r = try guest.run(#"printf 'a\nb\r\nc\000d'; printf 'err\n' >&2; exit 7"#)
        #expect(r.stdout == [97, 10, 98, 13, 10, 99, 0, 100])
        #expect(r.stderr == Array("err\n".utf8))
        #expect(r.commandStatus == 7)
        #expect(r.exitStatus == 7)
        #expect(r.kernelProblem == nil)
        #expect(!r.timedOut)
    }

    @Test func failingCommandsFail() throws {
        let guest = try TestGuest.current()
        #expect(try guest.run("false").commandStatus == 1)
        #expect(try guest.run("exit 42").commandStatus == 42)
        #expect(try guest.run("kill -9 $$").commandStatus == 137)
        #expect(try guest.run("/nonexistent/tool").commandStatus == 127)
    }

    @Test func runsAsRootButNotAsPid1() throws {
        let guest = try TestGuest.current()
        let lines = try guest.check("id -u; echo $$").split(separator: "\n")
        #expect(lines.first == "0")
        #expect(lines.last != "1")
        #expect(try guest.check("su nobody -c 'id -u'") == "65534\n")
    }

    @Test func mountsWhatTheGuestNeeds() throws {
        let guest = try TestGuest.current()
        let mounts = try guest.check("cat /proc/mounts")
        for point in ["/proc", "/sys", "/dev", "/sys/kernel/debug", "/tmp"] {
            #expect(mounts.contains(" \(point) "), "\(point) is not mounted")
        }
        #expect(mounts.contains("tmpfs /tmp tmpfs"))
    }

    @Test func uploadsAndLargeOutputSurviveIntact() throws {
        let guest = try TestGuest.current()
        var generator = SystemRandomNumberGenerator()
        let data = (0..<3_000_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try guest.upload(data, to: "/root/new/dir/blob", mode: 0o640)
        #expect(try guest.check("stat -c %a /root/new/dir/blob") == "640\n")
        let back = try guest.run("cat /root/new/dir/blob")
        #expect(back.commandStatus == 0)
        #expect(back.stdout == data)
        #expect(try guest.vm.download("/root/new/dir/blob") == data)
        // Replacing a file works, and small uploads too.
        try guest.upload(Array("small".utf8), to: "/root/new/dir/blob", mode: 0o755)
        #expect(try guest.check("cat /root/new/dir/blob; stat -c %a /root/new/dir/blob") == "small755\n")
    }

    @Test func sutureRunsInsideTheGuest() throws {
        let guest = try TestGuest.current()
        let help = try guest.check("suture --help")
        #expect(help.contains("USAGE: suture"))
        #expect(help.contains("vm"))
    }

    @Test func modprobeLoadsCarriedModules() throws {
        let guest = try TestGuest.current()
        try guest.check("modprobe binfmt_misc")
        #expect(try guest.check("grep -c '^binfmt_misc ' /proc/modules") == "1\n")
        try guest.check("modprobe xfs")
        #expect(try guest.check("grep -c '^xfs ' /proc/modules") == "1\n")
        #expect(try guest.check("grep -w xfs /proc/filesystems").contains("xfs"))
    }

    /// The kernel's own livepatch sample replaces `cmdline_proc_show`.
    @Test func livepatchChangesAndRestoresProcCmdline() throws {
        let guest = try TestGuest.current()
        try guest.upload(try TestModules.bytes("test_klp_livepatch"), to: "/root/test_klp_livepatch.ko")
        let original = try guest.check("cat /proc/cmdline")
        #expect(original.contains("console=ttyS0"))

        try guest.check("insmod /root/test_klp_livepatch.ko")
        let sysfs = "/sys/kernel/livepatch/test_klp_livepatch"
        try guest.check(
            "while [ \"$(cat \(sysfs)/transition)\" != 0 ]; do sleep 0.1; done; cat \(sysfs)/enabled", timeout: 60)
        #expect(try guest.check("cat /proc/cmdline") == "test_klp_livepatch: this has been live patched\n")

        try guest.check("echo 0 > \(sysfs)/enabled")
        try guest.check("while [ -e \(sysfs) ]; do sleep 0.1; done", timeout: 60)
        #expect(try guest.check("cat /proc/cmdline") == original)
        try guest.check("rmmod test_klp_livepatch")
    }
}

/// Kernel trouble is detected and reported. Its own boot, as the last step
/// panics the guest.
@Suite(.serialized, .guest())
struct KernelProblemTests {
    @Test func warningOopsAndPanicAreReported() throws {
        let guest = try TestGuest.current()
        try guest.upload(try TestModules.bytes("suture_warn"), to: "/root/suture_warn.ko")
        try guest.upload(try TestModules.bytes("suture_oops"), to: "/root/suture_oops.ko")

        let warned = try guest.run("insmod /root/suture_warn.ko")
        #expect(warned.commandStatus == 0)
        #expect(warned.kernelProblem == .warning)
        #expect(warned.exitStatus == 126)
        #expect(warned.kernelLog.contains("suture_warn: a warning on purpose"))

        // The next command starts clean: problems are per command.
        #expect(try guest.run("true").kernelProblem == nil)

        let oopsed = try guest.run("insmod /root/suture_oops.ko")
        #expect(oopsed.kernelProblem == .oops)
        #expect(oopsed.exitStatus == 126)
        #expect(oopsed.commandStatus != 0)
        #expect(oopsed.kernelLog.contains("BUG: kernel NULL pointer dereference"))
        #expect(oopsed.kernelLog.contains("suture_oops"))

        // A non-fatal oops: the guest carries on.
        let after = try guest.run("echo alive; cat /proc/sys/kernel/tainted")
        #expect(after.stdoutText.hasPrefix("alive\n"))
        #expect(after.kernelProblem == nil)

        let panicked = try guest.run("echo c > /proc/sysrq-trigger")
        #expect(panicked.kernelProblem == .panic)
        #expect(panicked.exitStatus == 126)
        #expect(panicked.commandStatus == nil)
        #expect(panicked.kernelLog.contains("Kernel panic - not syncing"))
        #expect(!guest.vm.isRunning)
        #expect(throws: VMError.self) { try guest.run("true") }
    }
}
