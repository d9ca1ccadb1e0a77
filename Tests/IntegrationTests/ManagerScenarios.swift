// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import Testing

extension ManagerGuestTests {
    static let patchedCmdline = "test_klp_livepatch: this has been live patched\n"
    static let patchedMeminfo = "test_klp_atomic_replace: this has been live patched\n"

    /// load → /proc/cmdline changes → list and status show it → unload → restored.
    @Test func roundTrip() throws {
        let original = try guest.check("cat /proc/cmdline")
        #expect(original.contains("console="))

        let load = try guest.run("suture load \(Self.path("test_klp_livepatch"))")
        #expect(load.commandStatus == 0, "\(load.stderrText)")
        #expect(load.stdoutText.contains("test_klp_livepatch: enabled"))
        #expect(load.stderrText.contains("test_klp_livepatch: patched in"))
        #expect(try guest.check("cat /proc/cmdline") == Self.patchedCmdline)

        let list = try patches()
        #expect(names(list) == ["test_klp_livepatch"])
        let patch = try #require(list.first)
        #expect(patch["module"]?.stringValue == "test_klp_livepatch")
        #expect(patch["enabled"]?.boolValue == true)
        #expect(patch["transition"]?.boolValue == false)
        #expect(patch["replace"]?.isNull == true)
        #expect(patch["file"]?.stringValue == Self.path("test_klp_livepatch"))
        #expect(patch["pendingTasks"]?.arrayValue?.isEmpty == true)
        let object = try #require(patch["objects"]?[0])
        #expect(object["name"]?.stringValue == "vmlinux")
        #expect(object["patched"]?.boolValue == true)
        #expect(
            object["functions"] == .array([.object([("name", .string("cmdline_proc_show")), ("sympos", .int(1))])]))

        let status = try guest.check("suture status test-klp-livepatch")
        #expect(status.hasPrefix("test_klp_livepatch: enabled, replace: unknown\n"))
        #expect(status.contains("    cmdline_proc_show,1"))

        let unload = try guest.run("suture unload test-klp-livepatch.ko")
        #expect(unload.commandStatus == 0, "\(unload.stderrText)")
        #expect(unload.stdoutText == "unloaded: test_klp_livepatch\n")
        #expect(try guest.check("cat /proc/cmdline") == original)
        #expect(try guest.check("suture list") == "no live patches loaded\n")
        try expectClean()
    }

    /// A cumulative patch replaces the earlier one: only it is listed, the
    /// earlier module is removed, and what it does not carry is reverted.
    @Test func atomicReplace() throws {
        let original = try guest.check("cat /proc/cmdline")
        try guest.check("suture load \(Self.path("test_klp_livepatch"))")
        #expect(try guest.check("cat /proc/cmdline") == Self.patchedCmdline)

        let load = try guest.run("suture load --json \(Self.path("test_klp_atomic_replace")) replace=1")
        #expect(load.commandStatus == 0, "\(load.stderrText)")
        #expect(load.stderrText.contains("test_klp_atomic_replace replaced test_klp_livepatch; removing its module"))
        let result = try JSON.parse(load.stdoutText)
        #expect(result["replaced"] == .strings(["test_klp_livepatch"]))
        #expect(names(try #require(result["patches"]?.arrayValue)) == ["test_klp_atomic_replace"])
        #expect(names(try patches()) == ["test_klp_atomic_replace"])
        #expect(try guest.check("grep -c '^test_klp_livepatch ' /proc/modules || true") == "0\n")
        #expect(try guest.check("cat /proc/meminfo") == Self.patchedMeminfo)
        #expect(try guest.check("cat /proc/cmdline") == original)
        try guest.check("suture unload test_klp_atomic_replace")
        #expect(try guest.check("cat /proc/meminfo").contains("MemTotal:"))
        try expectClean()

        // Without replace both stay, stacked, and --all unloads newest first.
        try guest.check("suture load \(Self.path("test_klp_livepatch"))")
        try guest.check("suture load \(Self.path("test_klp_atomic_replace")) replace=0")
        #expect(names(try patches()) == ["test_klp_livepatch", "test_klp_atomic_replace"])
        #expect(try guest.check("cat /proc/cmdline") == Self.patchedCmdline)
        #expect(try guest.check("cat /proc/meminfo") == Self.patchedMeminfo)
        let all = try guest.run("suture unload --all")
        #expect(all.stdoutText == "unloaded: test_klp_atomic_replace, test_klp_livepatch\n")
        #expect(try guest.check("cat /proc/cmdline") == original)
        try expectClean()
    }

    /// The kworker of test_klp_callbacks_busy sleeps in the function the
    /// demo patch replaces. Suture names it, reverses, removes the demo
    /// module while busy still blocks, and fails.
    @Test func blockedTransition() throws {
        try guest.check("insmod \(Self.path("test_klp_callbacks_busy")) block_transition=Y")
        let load = try guest.run("suture load \(Self.path("test_klp_callbacks_demo")) --timeout 5")
        #expect(load.commandStatus == 1)
        #expect(load.kernelProblem == nil)
        let err = load.stderrText
        #expect(err.contains("test_klp_callbacks_demo: the patching transition did not finish within 5 s."))
        #expect(err.contains("kworker/"))
        #expect(err.contains("in busymod_work_func, which test_klp_callbacks_demo changes"))
        #expect(err.contains("> busymod_work_func+0x"))
        #expect(err.contains("reversing the transition"))
        #expect(err.contains("removed module test_klp_callbacks_demo"))
        #expect(err.contains("kernel taint now:"))
        #expect(err.contains("(blocked by kworker/"))
        #expect(err.contains("it was reversed and the module removed"))
        // Busy still blocks, and nothing of the demo patch is left.
        #expect(try guest.check("cat /sys/module/test_klp_callbacks_busy/parameters/block_transition") == "Y\n")
        #expect(try guest.check("grep -c '^test_klp_callbacks_demo ' /proc/modules || true") == "0\n")
        #expect(try guest.check("ls /sys/kernel/livepatch") == "")
        #expect(try guest.check("ls /run/suture/loaded") == "")
        try reset()
        try expectClean()
    }

    /// `suture status` during the blocked transition, and `unload` of the
    /// patch still patching, which reverses it.
    @Test func statusDuringABlockedTransition() throws {
        try guest.check("insmod \(Self.path("test_klp_callbacks_busy")) block_transition=Y")
        try guest.check("suture load --no-wait \(Self.path("test_klp_callbacks_demo"))")
        try guest.check("sleep 2")
        let text = try guest.check("suture status test_klp_callbacks_demo")
        #expect(text.hasPrefix("test_klp_callbacks_demo: patching (transition in progress), replace: unknown\n"))
        #expect(text.contains("  test_klp_callbacks_mod: waiting (module not loaded)"))
        #expect(text.contains("in busymod_work_func, which test_klp_callbacks_demo changes"))
        #expect(text.contains("> busymod_work_func+0x"))
        let sample = "$ suture status test_klp_callbacks_demo\n" + text
        try? FileSystem.write(Path.join(NSTemporaryDirectory(), "suture-manager-status-sample.txt"), sample)
        print(sample)

        let patch = try #require(try patches("suture status test_klp_callbacks_demo --json").first)
        #expect(patch["state"]?.stringValue == "patching")
        #expect(patch["direction"]?.stringValue == "patching")
        let tasks = try #require(patch["pendingTasks"]?.arrayValue)
        let kworker = try #require(tasks.first { $0["patchFunctions"] == .strings(["busymod_work_func"]) })
        #expect(kworker["comm"]?.stringValue?.hasPrefix("kworker/") == true)
        #expect(
            kworker["stack"]?.arrayValue?.contains { $0.stringValue?.hasPrefix("busymod_work_func+") == true } == true)

        // A second load must wait for the kernel: one transition at a time.
        let busy = try guest.run("suture load \(Self.path("test_klp_livepatch"))")
        #expect(busy.commandStatus == 1)
        #expect(busy.stderrText.contains("test_klp_callbacks_demo is in transition (patching)"))

        let unload = try guest.run("suture unload test_klp_callbacks_demo")
        #expect(unload.commandStatus == 0, "\(unload.stderrText)")
        #expect(try guest.check("grep -c '^test_klp_callbacks_demo ' /proc/modules || true") == "0\n")
        try reset()
        try expectClean()
    }

    /// A patch for a module that is not loaded waits for it.
    @Test func waitingObject() throws {
        try guest.check("suture load \(Self.path("test_klp_callbacks_demo"))")
        func object(_ name: String) throws -> JSON? {
            try patches()[0]["objects"]?.arrayValue?.first { $0["name"]?.stringValue == name }
        }
        #expect(try object("vmlinux")?["patched"]?.boolValue == true)
        #expect(try object("test_klp_callbacks_mod")?["patched"]?.boolValue == false)
        #expect(try guest.check("suture list").contains("  test_klp_callbacks_mod: waiting (module not loaded)\n"))

        try guest.check("insmod \(Self.path("test_klp_callbacks_mod"))")
        #expect(try object("test_klp_callbacks_mod")?["patched"]?.boolValue == true)
        #expect(
            try guest.check("suture status test_klp_callbacks_demo").contains("  test_klp_callbacks_mod: patched\n"))

        try guest.check("suture unload test_klp_callbacks_demo")
        try guest.check("rmmod test_klp_callbacks_mod")
        try expectClean()
    }

    /// Each refusal says why and leaves the kernel untouched.
    @Test func refusals() throws {
        func refused(_ command: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let r = try guest.run(command)
            #expect(r.commandStatus == 1, "\(command)", sourceLocation: sourceLocation)
            #expect(r.stderrText.contains(message), "\(command): \(r.stderrText)", sourceLocation: sourceLocation)
            #expect(r.kernelProblem == nil, sourceLocation: sourceLocation)
            #expect(
                try guest.check("ls /sys/kernel/livepatch; grep test_klp_ /proc/modules || true") == "",
                "\(command) left something behind", sourceLocation: sourceLocation)
        }
        try refused(
            "suture load \(Self.path("test_klp_shadow_vars"))",
            "is a kernel module (test_klp_shadow_vars) but not a livepatch module")
        try refused("suture load \(Self.path("test_klp_callbacks_mod"))", "not a livepatch module")
        try refused("suture load \(Self.path("wrong_vermagic"))", "was built for kernel ")
        try refused("suture load \(Self.path("wrong_vermagic"))", "-other (vermagic \"")
        try refused("su nobody -c \"$(command -v suture) load \(Self.path("test_klp_livepatch"))\"", "needs root")
        try refused("suture load \(Self.path("garbage"))", "is not a kernel module")
        try refused("suture load \(Self.path("missing"))", "no such file")
        try refused(
            "suture load \(Self.path("test_klp_livepatch")) no_such_parameter=1",
            "has no parameter \"no_such_parameter\"")

        let json = try guest.run("suture load --json \(Self.path("garbage"))")
        #expect(json.commandStatus == 1)
        #expect(try JSON.parse(json.stdoutText)["error"]?["code"]?.stringValue == "livepatch-not-module")

        // The kernel's own refusal: the pre-patch callback fails, and the
        // reason from the kernel log is quoted.
        try refused(
            "suture load \(Self.path("test_klp_callbacks_demo")) pre_patch_ret=-19",
            "the kernel refused test_klp_callbacks_demo")
        try refused(
            "suture load \(Self.path("test_klp_callbacks_demo")) pre_patch_ret=-19",
            "livepatch: pre-patch callback failed for object 'vmlinux'")
        #expect(try guest.check("dmesg").contains("livepatch: failed to enable patch 'test_klp_callbacks_demo'"))
        try expectQuietKernelLog(allowing: ["pre-patch callback failed", "failed to enable patch"])
        _ = try guest.run("dmesg -c")

        // The kernel itself would take the wrong release: only Suture's check stops it.
        try guest.check("insmod \(Self.path("wrong_vermagic"))")
        #expect(try guest.check("cat /proc/cmdline") == Self.patchedCmdline)
        try guest.check("suture unload test_klp_livepatch")
        try expectClean()
    }

    /// Two loads at once: the second waits for the first, with a message;
    /// nothing is left half-loaded.
    @Test func concurrentLoads() throws {
        try guest.check("insmod \(Self.path("test_klp_callbacks_busy")) block_transition=Y")
        let both = try guest.run(
            """
            (suture load \(Self.path("test_klp_callbacks_demo")) --timeout 4 >/tmp/a.out 2>/tmp/a.err; echo $? >/tmp/a.rc) &
            sleep 1
            suture load \(Self.path("test_klp_livepatch")) >/tmp/b.out 2>/tmp/b.err; echo $? >/tmp/b.rc
            wait
            cat /tmp/a.rc /tmp/b.rc
            """)
        #expect(both.stdoutText == "1\n0\n", "\(both.stderrText)")
        let waited = try guest.check("cat /tmp/b.err")
        #expect(waited.contains("another suture process (pid "))
        #expect(waited.contains("load test_klp_callbacks_demo) is changing live patches; waiting up to 30 s"))
        #expect(try guest.check("cat /tmp/a.err").contains("removed module test_klp_callbacks_demo"))
        #expect(names(try patches()) == ["test_klp_livepatch"])
        #expect(try guest.check("grep -c '^test_klp_callbacks_demo ' /proc/modules || true") == "0\n")
        try reset()
        try expectClean()

        // The same module twice at once: one loads it, the other refuses.
        let twice = try guest.run(
            """
            suture load \(Self.path("test_klp_livepatch")) >/dev/null 2>/tmp/c.err & c=$!
            suture load \(Self.path("test_klp_livepatch")) >/dev/null 2>/tmp/d.err; d=$?
            wait $c; c=$?
            echo $((c + d)) $((c * d)); cat /tmp/c.err /tmp/d.err
            """)
        #expect(twice.stdoutText.hasPrefix("1 0\n"), "\(twice.stdoutText)")
        #expect(twice.stdoutText.contains("is already loaded"))
        #expect(try guest.check("grep -c '^test_klp_livepatch ' /proc/modules") == "1\n")
        #expect(names(try patches()) == ["test_klp_livepatch"])
        try guest.check("suture unload test_klp_livepatch")
        try expectClean()
    }

    /// `force` refuses without --yes, then completes the blocked transition.
    @Test func forceCompletesABlockedTransition() throws {
        try guest.check("insmod \(Self.path("test_klp_callbacks_busy")) block_transition=Y")
        try guest.check("suture load --no-wait \(Self.path("test_klp_callbacks_demo"))")
        let unconfirmed = try guest.run("suture force test_klp_callbacks_demo")
        #expect(unconfirmed.commandStatus == 1)
        #expect(unconfirmed.stderrText.contains("warning: forcing marks every remaining task"))
        #expect(unconfirmed.stderrText.contains("not forcing test_klp_callbacks_demo without --yes"))
        #expect(try guest.check("cat /sys/kernel/livepatch/test_klp_callbacks_demo/transition") == "1\n")

        let forced = try guest.run("suture force test_klp_callbacks_demo --yes --json")
        #expect(forced.commandStatus == 0, "\(forced.stderrText)")
        let patch = try #require(try JSON.parse(forced.stdoutText)["patches"]?[0])
        #expect(patch["state"]?.stringValue == "enabled")
        #expect(try guest.check("cat /sys/kernel/livepatch/test_klp_callbacks_demo/transition") == "0\n")

        // A patch forced in while patching, replacing nothing, can still go
        // once the busy work ends.
        try guest.check("echo N > /sys/module/test_klp_callbacks_busy/parameters/block_transition")
        try guest.check("suture unload test_klp_callbacks_demo")
        try guest.check("rmmod test_klp_callbacks_busy")
        try expectQuietKernelLog(allowing: ["forcing remaining tasks to the patched state"])
        _ = try guest.run("dmesg -c")
        try expectClean()
    }

    /// Every livepatch module among the kernel's tests loads and unloads.
    @Test func everyKernelTestPatchRoundTrips() throws {
        for name in ["test_klp_callbacks_demo2", "test_klp_state", "test_klp_state2", "test_klp_state3"] {
            let load = try guest.run("suture load \(Self.path(name))")
            #expect(load.commandStatus == 0, "\(name): \(load.stderrText)")
            #expect(names(try patches()) == [name])
            try guest.check("suture unload \(name)")
        }
        try expectClean()
    }
}
