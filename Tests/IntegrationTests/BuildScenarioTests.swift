// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TestSupport
import Testing
import VM

/// `suture build` end to end: each diff in Tests/Fixtures/kernel becomes a
/// livepatch module on the host, and is proven in one shared guest of the
/// target kernel: observe, `suture load`, observe the change, `suture
/// unload`, observe the restore, and no oops or livepatch error in dmesg.
@Suite(.serialized, .guest(kernelArguments: ["psi=1"]))
struct BuildScenarioTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/kernel").standardized.path

    /// Builds a module from fixture diffs with the built `suture`.
    static func build(_ names: [String], as module: String, extra: [String] = []) throws -> (
        path: String, report: JSON
    ) {
        try build(diffs: names.map { "\(fixtures)/\($0)/patch.diff" }, as: module, extra: extra)
    }

    /// Builds a module from diff files with the built `suture`.
    static func build(diffs: [String], as module: String, extra: [String] = []) throws -> (
        path: String, report: JSON
    ) {
        let dir = try TemporaryDirectory(prefix: "suture-scenario")
        Cleanup.register { dir.remove() }
        let names = diffs
        let run = try Command.run(
            [try SutureBinary.checked(), "build", "--json", "--name", module, "-o", dir.path] + extra + diffs,
            timeout: 900)
        try #require(run.termination == .exited(0), "suture build \(names) failed: \(run.stdoutText)\(run.stderrText)")
        let report = try JSON.parse(run.stdout)
        // The run-pre check passed on the host for every fixture.
        #expect(report["verification"]?["status"]?.stringValue == "verified", "\(names): \(run.stdoutText)")
        #expect(
            (report["verification"]?["functions"]?.arrayValue ?? []).contains { $0["role"]?.stringValue == "replaced" },
            "\(names): no replaced function was verified")
        return (try #require(report["module"]?.stringValue), report)
    }

    /// Uploads and loads a module in the guest; returns its kernel name.
    static func load(_ guest: TestGuest, _ path: String, _ module: String) throws {
        try guest.upload(try FileSystem.read(path), to: "/root/\(module).ko")
        try guest.check("suture load /root/\(module).ko")
        let list = try guest.check("suture list --json")
        #expect(list.contains("\"livepatch_\(module)\""), "suture list does not show livepatch_\(module): \(list)")
        // …and again at load, against the running kernel.
        let status = try guest.check("suture status livepatch_\(module)")
        let runPre = status.split(separator: "\n").filter { $0.contains("run-pre: ") }
        #expect(!runPre.isEmpty, "suture status shows no run-pre check: \(status)")
        for line in runPre {
            #expect(
                line.contains("verified against /proc/kcore") || line.contains("module") && line.contains("not loaded"),
                "\(module): \(line)")
        }
    }

    static func unload(_ guest: TestGuest, _ module: String) throws {
        try guest.check("suture unload livepatch_\(module)")
        #expect(try guest.check("ls /sys/kernel/livepatch").isEmpty, "a patch is still registered")
        let errors = try guest.run(
            "dmesg | grep -E 'livepatch: .*([Ee]rror|fail|invalid)|Oops|BUG:|WARNING:|Call Trace'")
        #expect(errors.stdoutText.isEmpty, "kernel log after \(module):\n\(errors.stdoutText)")
    }

    /// load → check → unload → check restored, for a command whose output changes.
    static func scenario(
        _ fixtures: [String], module: String, command: String,
        before: (String) -> Bool, after: (String) -> Bool
    ) throws {
        let guest = try TestGuest.current()
        let (path, _) = try build(fixtures, as: module)
        let original = try guest.check(command)
        #expect(before(original), "\(module): unexpected output before the patch: \(original)")
        try load(guest, path, module)
        let patched = try guest.check(command)
        #expect(after(patched), "\(module): the patch is not visible: \(patched)")
        try unload(guest, module)
        let restored = try guest.check(command)
        #expect(before(restored), "\(module): not restored after unload: \(restored)")
    }

    @Test func procStringChange() throws {
        try Self.scenario(
            ["proc-string"], module: "proc_string", command: "cat /proc/loadavg",
            before: { !$0.contains("patched") }, after: { $0.hasSuffix(" patched\n") })
    }

    @Test func staticFunctionWithStaticData() throws {
        try Self.scenario(
            ["static-data"], module: "static_data", command: "cat /proc/consoles",
            before: { $0.contains("(") && !$0.contains("[") }, after: { $0.contains("[") && $0.contains("]") })
    }

    @Test func staticLocalKeepsItsValue() throws {
        let guest = try TestGuest.current()
        let (path, _) = try Self.build(["static-local"], as: "static_local")
        let write = "sh -c 'echo 0 > /proc/$$/oom_adj'"
        func count(_ text: String) throws -> Int {
            Int(try guest.check("dmesg | grep -c '\(text)' || true").trimmingWhitespace()) ?? -1
        }
        try guest.check(write)
        #expect(try count("oom_adj is deprecated") == 1, "the original once-message was not printed once")
        try Self.load(guest, path, "static_local")
        try guest.check(write)
        try guest.check(write)
        // The new once-flag is the patch's own: printed once. The old one is
        // the running kernel's, already set: neither text comes again.
        #expect(try count("suture: oom_adj written through the patched code") == 1)
        #expect(try count("oom_adj is deprecated") == 1, "the deprecation flag was not the running kernel's")
        try Self.unload(guest, "static_local")
    }

    @Test func newFunction() throws {
        try Self.scenario(
            ["new-function"], module: "new_function", command: "cat /proc/cmdline",
            before: { !$0.contains("suture_new_function") }, after: { $0.hasSuffix(" suture_new_function\n") })
    }

    @Test func newGlobalVariable() throws {
        let guest = try TestGuest.current()
        let (path, _) = try Self.build(["new-global"], as: "new_global")
        try Self.load(guest, path, "new_global")
        let first = try guest.check("cat /proc/cmdline")
        let second = try guest.check("cat /proc/cmdline")
        #expect(first.hasSuffix(" reads=1\n") && second.hasSuffix(" reads=2\n"), "\(first)\(second)")
        try Self.unload(guest, "new_global")
        #expect(!(try guest.check("cat /proc/cmdline")).contains("reads="))
    }

    @Test func functionInlinedIntoItsCallers() throws {
        let guest = try TestGuest.current()
        try guest.check("mkdir -p /mnt/hidden && mount -t proc -o hidepid=invisible proc /mnt/hidden")
        try Self.scenario(
            ["inline"], module: "inline", command: "grep /mnt/hidden /proc/mounts",
            before: { $0.contains("hidepid=invisible") && !$0.contains("patched") },
            after: { $0.contains("hidepid=invisible-patched") })
        try guest.check("umount /mnt/hidden")
    }

    @Test func staticKeyInAnIncludedFile() throws {
        try Self.scenario(
            ["static-key"], module: "static_key", command: "cat /proc/pressure/cpu",
            before: { $0.hasPrefix("some avg10=") && !$0.contains("patched") },
            after: { $0.split(separator: "\n").allSatisfy { $0.hasSuffix(" patched") } })
    }

    @Test func warnOnInTheChangedFunction() throws {
        try Self.scenario(
            ["warn-on"], module: "warn_on", command: "grep '^proc /proc ' /proc/mounts",
            before: { !$0.contains("suture") }, after: { $0.contains(",suture") })
    }

    @Test func copyFromUser() throws {
        try Self.scenario(
            ["copy-from-user"], module: "copy_from_user",
            command: "sh -c 'echo xyz > /proc/$$/comm; read name < /proc/$$/comm; echo $name'",
            before: { $0 == "xyz\n" }, after: { $0 == "Xyz\n" })
    }

    @Test func localNameThatKallsymsHoldsMoreThanOnce() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Self.build(["duplicate-local"], as: "duplicate_local")
        let redirect = try #require(report["functions"]?[0])
        #expect(redirect["name"]?.stringValue == "c_start")
        #expect((redirect["sympos"]?.intValue ?? 0) > 0, "c_start is not unique; a position is needed")
        let consoles = try guest.check("cat /proc/consoles")
        #expect(!consoles.isEmpty)
        try Self.load(guest, path, "duplicate_local")
        #expect(try guest.check("cat /proc/consoles").isEmpty, "/proc/consoles' c_start was not the one patched")
        #expect(try guest.check("cat /proc/cpuinfo").contains("processor"), "another c_start was patched")
        try Self.unload(guest, "duplicate_local")
        #expect(try guest.check("cat /proc/consoles") == consoles)
    }

    @Test func changeInAnIncludedCFile() throws {
        try Self.scenario(
            ["included-file"], module: "included_file", command: "head -1 /proc/schedstat",
            before: { $0.hasPrefix("version ") && !$0.contains("patched") },
            after: { $0.hasSuffix(" patched\n") })
    }

    @Test func twoDiffsInOneBuild() throws {
        try Self.scenario(
            ["proc-string", "static-data"], module: "two_diffs",
            command: "cat /proc/loadavg /proc/consoles",
            before: { !$0.contains("patched") && !$0.contains("[") },
            after: { $0.contains(" patched\n") && $0.contains("[") })
    }
}
