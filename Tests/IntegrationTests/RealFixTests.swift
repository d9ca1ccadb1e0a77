// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TestSupport
import Testing
import VM

/// What real stable fixes are full of, built with `suture build` from diffs
/// against the Debian source (Tests/Fixtures/kernel) and proven in one
/// shared guest: load, observe the change, unload, observe the restore, no
/// oops. Compiler-generated locals (`__func__`, once-flags, dynamic debug
/// in a module), a helper added in one file and called from another, an
/// added export, a diff that applies only with fuzz, and a static function
/// that its module has twice.
@Suite(.serialized, .guest(modules: ["binfmt_misc", "loop", "vfat", "nls_cp437", "nls_ascii"]))
struct RealFixTests {
    typealias Scenarios = BuildScenarioTests

    /// Builds a fixture with extra `suture build` arguments; returns the
    /// run, and the module path and report when it succeeded.
    static func build(_ name: String, as module: String, _ extra: [String] = []) throws -> (
        run: CommandResult, path: String?, report: JSON?
    ) {
        let dir = try TemporaryDirectory(prefix: "suture-realfix")
        Cleanup.register { dir.remove() }
        let started = Clock.now()
        let run = try Command.run(
            [try SutureBinary.checked(), "build", "--json", "--name", module, "-o", dir.path]
                + extra + ["\(Scenarios.fixtures)/\(name)/patch.diff"], timeout: 900)
        print("suture build \(name): \(Int((Clock.now() - started).rounded())) s")
        guard run.termination == .exited(0) else { return (run, nil, nil) }
        let report = try JSON.parse(run.stdout)
        return (run, report["module"]?.stringValue, report)
    }

    static func built(_ name: String, as module: String, _ extra: [String] = []) throws -> (path: String, report: JSON)
    {
        let (run, path, report) = try build(name, as: module, extra)
        let p = try #require(path, "suture build \(name) failed: \(run.stdoutText)\(run.stderrText)")
        return (p, try #require(report))
    }

    static func count(_ guest: TestGuest, _ text: String) throws -> Int {
        Int(try guest.check("dmesg | grep -c '\(text)' || true").trimmingWhitespace()) ?? -1
    }

    static func mountFat(_ guest: TestGuest) throws {
        try guest.check(
            "dd if=/dev/zero of=/tmp/realfix.img bs=1024 count=4096 2>/dev/null && mkdosfs /tmp/realfix.img >/dev/null")
        try guest.check("mkdir -p /mnt/realfix && mount -t vfat -o loop /tmp/realfix.img /mnt/realfix")
    }

    static func unmountFat(_ guest: TestGuest) throws {
        try guest.check("umount /mnt/realfix && rm -f /tmp/realfix.img")
    }

    // MARK: - Compiler-generated locals

    @Test func newPrErrWithFunc() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Self.built("pr-err-func", as: "pr_err_func")
        let klp = report["objects"]?[0]?["klpSymbols"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(!klp.contains { $0.contains("__func__") }, "__func__ must be carried, not referred to: \(klp)")
        let message = "uptime_proc_show: suture: uptime read by pid"
        try guest.check("cat /proc/uptime")
        #expect(try Self.count(guest, message) == 0)
        try Scenarios.load(guest, path, "pr_err_func")
        try guest.check("cat /proc/uptime")
        #expect(try Self.count(guest, message) == 1, "the new pr_err with __func__ did not print its function's name")
        try Scenarios.unload(guest, "pr_err_func")
        try guest.check("cat /proc/uptime")
        #expect(try Self.count(guest, message) == 1, "still printed after unload")
    }

    @Test func fixInAModuleFunctionThatAlreadyUsesFunc() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Self.built("func-existing", as: "func_existing")
        #expect(report["objects"]?[0]?["target"]?.stringValue == "fat")
        try Self.mountFat(guest)
        try guest.check("dd if=/dev/zero of=/mnt/realfix/big bs=1024 count=64 2>/dev/null && sync")
        let read = "echo 3 > /proc/sys/vm/drop_caches && cat /mnt/realfix/big > /dev/null"
        let message = "fat_get_cluster: suture: cluster"
        try guest.check(read)
        #expect(try Self.count(guest, message) == 0)
        try Scenarios.load(guest, path, "func_existing")
        try guest.check(read)
        let patched = try Self.count(guest, message)
        #expect(patched > 0, "fat_get_cluster's new message (with its existing __func__) did not show")
        try Scenarios.unload(guest, "func_existing")
        try guest.check(read)
        #expect(try Self.count(guest, message) == patched, "still printed after unload")
        try Self.unmountFat(guest)
    }

    @Test func existingPrDebugInAModuleFunction() throws {
        let guest = try TestGuest.current()
        let (path, _) = try Self.built("module-dyndbg", as: "module_dyndbg")
        let root = "/proc/sys/fs/binfmt_misc"
        try guest.check("modprobe binfmt_misc && mount -t binfmt_misc none \(root)")
        func register(_ name: String) throws -> Bool {
            try guest.run("printf ':\(name):E::sutx::/bin/sh:' > \(root)/register").commandStatus == 0
        }
        func remove(_ name: String) throws { try guest.check("echo -1 > '\(root)/\(name)'") }
        #expect(try register("a b"), "the original accepts a name with a space")
        try remove("a b")
        try Scenarios.load(guest, path, "module_dyndbg")
        #expect(!(try register("c d")), "the patched create_entry still accepts a space")
        #expect(try register("plain"), "the patched create_entry refuses a plain name")
        try remove("plain")
        try Scenarios.unload(guest, "module_dyndbg")
        #expect(try register("e f"), "not restored after unload")
        try remove("e f")
        try guest.check("umount \(root) && rmmod binfmt_misc")
    }

    @Test func renumberedBtfIdsAndAControllablePrDebug() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Self.built("btf-id-counter", as: "btf_id_counter")
        #expect(
            report["objects"]?[0]?["changed"]?.arrayValue?.compactMap(\.stringValue) == ["s_show"],
            "only s_show changed; the renumbered __BTF_ID__ symbol is the same")
        try guest.check("grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs none /sys/kernel/debug")
        let message = "s_show: [a-z_0-9]* of module"
        try guest.check("cat /proc/kallsyms > /dev/null")
        #expect(try Self.count(guest, message) == 0)
        try Scenarios.load(guest, path, "btf_id_counter")
        let control = "/sys/kernel/debug/dynamic_debug/control"
        #expect(
            try guest.check("grep -c 'livepatch_btf_id_counter' \(control) || true").trimmingWhitespace() != "0",
            "the patch's pr_debug is not registered with dynamic debug")
        try guest.check("echo 'module livepatch_btf_id_counter +p' > \(control) && cat /proc/kallsyms > /dev/null")
        #expect(try Self.count(guest, message) > 0, "the patch's pr_debug, turned on, printed nothing")
        try guest.check("echo 'module livepatch_btf_id_counter -p' > \(control)")
        try Scenarios.unload(guest, "btf_id_counter")
        // A fresh log: the lines above may fill busybox dmesg's window.
        try guest.check("dmesg -c > /dev/null && cat /proc/kallsyms > /dev/null")
        #expect(try Self.count(guest, message) == 0, "printed after unload")
    }

    // MARK: - New globals, exports, fuzz

    @Test func helperAddedInOneFileCalledFromAnother() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Self.built("helper-across", as: "helper_across")
        let klp = (report["objects"]?.arrayValue ?? []).flatMap {
            $0["klpSymbols"]?.arrayValue?.compactMap(\.stringValue) ?? []
        }
        #expect(!klp.contains { $0.contains("proc_loadavg_tasks") }, "the helper must resolve inside the patch: \(klp)")
        func threads(_ line: String) -> Int {
            let field = line.split(separator: " ").dropFirst(3).first ?? ""
            return Int(field.split(separator: "/").last ?? "") ?? -1
        }
        let before = threads(try guest.check("cat /proc/loadavg"))
        #expect(before > 0 && before < 100000)
        try Scenarios.load(guest, path, "helper_across")
        #expect(threads(try guest.check("cat /proc/loadavg")) >= 100000, "the helper's result is not shown")
        try Scenarios.unload(guest, "helper_across")
        #expect(threads(try guest.check("cat /proc/loadavg")) < 100000)
    }

    @Test func addedExportIsDroppedWithAWarning() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Self.built("export-added", as: "export_added")
        let warnings = report["warnings"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(warnings.contains { $0.contains("EXPORT_SYMBOL_GPL(render_sigset_t) dropped") }, "\(warnings)")
        let command = "grep Suture /proc/self/status || true"
        #expect(try guest.check(command).isEmpty)
        try Scenarios.load(guest, path, "export_added")
        #expect(try guest.check(command) == "Suture:\tpatched\n")
        try Scenarios.unload(guest, "export_added")
        #expect(try guest.check(command).isEmpty)
    }

    @Test func diffForANearbyKernelAppliesOnlyWithFuzz() throws {
        let guest = try TestGuest.current()
        let exact = try Self.build("fuzz-context", as: "fuzz_exact")
        #expect(exact.path == nil, "the diff applied without fuzz")
        #expect(exact.run.stdoutText.contains("build-diff-does-not-apply"), "\(exact.run.stdoutText)")
        let (path, report) = try Self.built("fuzz-context", as: "fuzz_context", ["--fuzz", "1"])
        let hunk = try #require(report["hunks"]?[0])
        #expect(
            hunk["fuzz"]?.intValue == 1 && hunk["offset"]?.intValue == -6
                && hunk["file"]?.stringValue == "fs/proc/version.c",
            "\(hunk)")
        #expect(try guest.check("cat /proc/version").hasPrefix("Linux version"))
        try Scenarios.load(guest, path, "fuzz_context")
        #expect(try guest.check("cat /proc/version").hasPrefix("Patched-Linux version"))
        try Scenarios.unload(guest, "fuzz_context")
        #expect(try guest.check("cat /proc/version").hasPrefix("Linux version"))
    }

    // MARK: - Finding the symbol in a module

    @Test func staticFunctionThatItsModuleHasTwice() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Self.built("module-duplicate-static", as: "duplicate_static")
        let redirect = try #require(report["functions"]?[0])
        #expect(redirect["name"]?.stringValue == "init_once" && redirect["target"]?.stringValue == "fat")
        #expect(redirect["sympos"]?.intValue == 2, "fs/fat/inode.c's init_once is the second in fat.ko: \(redirect)")
        try Self.mountFat(guest)
        let message = "FAT-fs: suture: inode constructor patched"
        try Scenarios.load(guest, path, "duplicate_static")
        // New inodes need new slabs of the fat inode cache, whose
        // constructor is the patched init_once.
        try guest.check("mkdir /mnt/realfix/d && for i in $(seq 1 400); do : > /mnt/realfix/d/f$i; done")
        #expect(try Self.count(guest, message) == 1, "the patched constructor did not run")
        try Scenarios.unload(guest, "duplicate_static")
        try guest.check("mkdir /mnt/realfix/e && for i in $(seq 1 400); do : > /mnt/realfix/e/f$i; done")
        #expect(try Self.count(guest, message) == 1)
        try Self.unmountFat(guest)
    }

    // Last: it leaves a kernel warning (taint W) in the guest.
    @Test func newWarnOnce() throws {
        let guest = try TestGuest.current()
        let (path, _) = try Self.built("warn-once-new", as: "warn_once_new")
        // `read` rather than `cat`: the shell would exec cat, which renames the process.
        let write = "sh -c 'echo abcdefghijklmnopqrstuvwxyz > /proc/$$/comm; read name < /proc/$$/comm; echo $name'"
        #expect(try guest.check(write) == "abcdefghijklmno\n")
        try Scenarios.load(guest, path, "warn_once_new")
        let first = try guest.run(write)
        #expect(
            first.stdoutText.hasPrefix("pqrstuvwxyz"),
            "the rest of a cut name comes as a second write: \(first.stdoutText)")
        #expect(first.kernelProblem == .warning, "the new WARN_ONCE did not fire")
        #expect(first.kernelLog.contains("comm_write: comm truncated to 15 bytes"), "\(first.kernelLog)")
        let second = try guest.run(write)
        #expect(
            second.kernelProblem == nil && !second.kernelLog.contains("comm truncated"),
            "WARN_ONCE fired twice:\n\(second.kernelLog)")
        // The expected warning is checked; the rest of the log must stay clean.
        try guest.check("dmesg -c > /dev/null")
        try Scenarios.unload(guest, "warn_once_new")
        #expect(try guest.check(write) == "abcdefghijklmno\n")
    }
}

extension RealFixTests {
    /// The load-time run-pre check of a module function whose static keys
    /// (its pr_debug sites) were enabled at run time: the sites are masked,
    /// and reported as switched.
    @Test func runPrePassesAModuleFunctionWithEnabledStaticKeys() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Self.built("module-dyndbg", as: "runpre_dyndbg")
        let functions = report["verification"]?["functions"]?.arrayValue ?? []
        let replaced = try #require(functions.first { $0["role"]?.stringValue == "replaced" }, "\(report)")
        let name = try #require(replaced["function"]?.stringValue)
        #expect((replaced["maskedSites"]?["jumpLabel"]?.intValue ?? 0) > 0, "\(replaced)")
        try guest.check("modprobe binfmt_misc")
        try guest.check("grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs none /sys/kernel/debug")
        try guest.check("echo 'module binfmt_misc +p' > /sys/kernel/debug/dynamic_debug/control")
        try guest.upload(try FileSystem.read(path), to: "/root/runpre_dyndbg.ko")
        let load = try guest.check("suture load --json /root/runpre_dyndbg.ko")
        let entry = try Scenarios.verification(load, name)
        #expect(entry["status"]?.stringValue == "verified", "\(entry)")
        #expect(entry["detail"]?.stringValue?.contains("switched from its default (now jumps)") == true, "\(entry)")
        try Scenarios.unload(guest, "runpre_dyndbg")
        try guest.check("echo 'module binfmt_misc -p' > /sys/kernel/debug/dynamic_debug/control && rmmod binfmt_misc")
    }
}
