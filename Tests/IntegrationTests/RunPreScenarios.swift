// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TestSupport
import Testing
import VM

/// The load-time run-pre check in the guest: the code a patch was built
/// against compared with `/proc/kcore`, with the run-time state of the
/// sites the kernel rewrites.
extension BuildScenarioTests {
    /// The load's JSON verification entry of `function`.
    static func verification(_ load: String, _ function: String) throws -> JSON {
        let json = try JSON.parse(Array(load.utf8))
        let entries = json["verification"]?.arrayValue ?? []
        return try #require(entries.first { $0["function"]?.stringValue == function }, "\(load)")
    }

    @Test func runPreReportsAFunctionAnotherPatchRedirectsAndStacks() throws {
        let guest = try TestGuest.current()
        let (first, _) = try Self.build(["proc-string"], as: "runpre_first", extra: ["--no-replace"])
        let dir = try TemporaryDirectory(prefix: "suture-runpre")
        defer { dir.remove() }
        let stacked = Path.join(dir.path, "stacked.diff")
        let fixture = try FileSystem.readText("\(Self.fixtures)/proc-string/patch.diff")
        try FileSystem.write(stacked, fixture.replacingOccurrences(of: "%d patched\\n", with: "%d stacked\\n"))
        let (second, _) = try Self.build(diffs: [stacked], as: "runpre_second", extra: ["--no-replace"])

        try Self.load(guest, first, "runpre_first")
        try guest.upload(try FileSystem.read(second), to: "/root/runpre_second.ko")
        let load = try guest.check("suture load --json /root/runpre_second.ko")
        let entry = try Self.verification(load, "loadavg_proc_show")
        #expect(entry["status"]?.stringValue == "alreadyPatched", "\(entry)")
        #expect(entry["detail"]?.stringValue?.contains("already patched by livepatch_runpre_first") == true, "\(entry)")
        let status = try guest.check("suture status livepatch_runpre_second")
        #expect(status.contains("run-pre: loadavg_proc_show (vmlinux): verified against /proc/kcore"), "\(status)")
        #expect(status.contains("already patched by livepatch_runpre_first"), "\(status)")
        // Stacking works: the newest patch runs, and the older one again
        // when it goes.
        #expect(try guest.check("cat /proc/loadavg").hasSuffix(" stacked\n"))
        try guest.check("suture unload livepatch_runpre_second")
        #expect(try guest.check("cat /proc/loadavg").hasSuffix(" patched\n"))
        try Self.unload(guest, "runpre_first")
    }

    @Test func runPreRefusesCodeChangedAtRunTimeAndNoVerifySkips() throws {
        let guest = try TestGuest.current()
        let (path, _) = try Self.build(["proc-string"], as: "runpre_changed")
        // The module's record says one byte of the body is something else,
        // as if the running code had been changed behind the kernel's back.
        var bytes = try FileSystem.read(path)
        let marker = Array("replaced ..........".utf8)
        let at = try #require(
            (0..<(bytes.count - marker.count)).first { bytes[$0..<($0 + marker.count)].elementsEqual(marker) })
        let digit = at + marker.count
        bytes[digit] = bytes[digit] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        try guest.upload(bytes, to: "/root/runpre_changed.ko")
        let refused = try guest.run("suture load --json /root/runpre_changed.ko")
        #expect(refused.commandStatus == 1, "\(refused.stdoutText)")
        #expect(refused.stdoutText.contains("livepatch-code-mismatch"), "\(refused.stdoutText)")
        #expect(refused.stdoutText.contains("loadavg_proc_show"), "\(refused.stdoutText)")
        #expect(try guest.check("ls /sys/kernel/livepatch").isEmpty, "a refused patch was loaded")
        try guest.check("suture load --no-verify /root/runpre_changed.ko")
        #expect(try guest.check("suture status livepatch_runpre_changed").contains("run-pre: not verified at load"))
        try Self.unload(guest, "runpre_changed")
    }
}

extension BuildScenarioTests {
    @Test func runPrePassesAFunctionWithAlternativesParavirtAndAStaticKey() throws {
        let guest = try TestGuest.current()
        let dir = try TemporaryDirectory(prefix: "suture-runpre")
        defer { dir.remove() }
        // sched_debug_header holds alternatives, paravirt sites and the
        // __sched_clock_stable static branch.
        let diff = Path.join(dir.path, "sched-debug.diff")
        let lines = [
            "--- a/kernel/sched/debug.c", "+++ b/kernel/sched/debug.c", "@@ -791,7 +791,7 @@",
            " \tcpu_clk = local_clock();", " \tlocal_irq_restore(flags);", " ",
            "-\tSEQ_printf(m, \"Sched Debug Version: v0.11, %s %.*s\\n\",",
            "+\tSEQ_printf(m, \"Sched Debug Version: v0.11-suture, %s %.*s\\n\",",
            " \t\tinit_utsname()->release,", " \t\t(int)strcspn(init_utsname()->version, \" \"),",
            " \t\tinit_utsname()->version);",
        ]
        try FileSystem.write(diff, lines.joined(separator: "\n") + "\n")
        let (path, report) = try Self.build(diffs: [diff], as: "runpre_alternatives")
        let built = try #require(
            report["verification"]?["functions"]?.arrayValue?.first {
                $0["function"]?.stringValue == "sched_debug_header"
            })
        #expect((built["maskedSites"]?["alternative"]?.intValue ?? 0) > 0, "\(built)")
        #expect((built["maskedSites"]?["paravirt"]?.intValue ?? 0) > 0, "\(built)")
        #expect((built["maskedSites"]?["jumpLabel"]?.intValue ?? 0) > 0, "\(built)")
        try guest.check("grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs none /sys/kernel/debug")
        let header = "head -1 /sys/kernel/debug/sched/debug"
        #expect(try guest.check(header).hasPrefix("Sched Debug Version: v0.11,"))
        try guest.upload(try FileSystem.read(path), to: "/root/runpre_alternatives.ko")
        let load = try guest.check("suture load --json /root/runpre_alternatives.ko")
        let entry = try Self.verification(load, "sched_debug_header")
        #expect(entry["status"]?.stringValue == "verified", "\(entry)")
        #expect(entry["detail"]?.stringValue?.contains("alternative") == true, "\(entry)")
        #expect(try guest.check(header).hasPrefix("Sched Debug Version: v0.11-suture,"))
        try Self.unload(guest, "runpre_alternatives")
    }
}
