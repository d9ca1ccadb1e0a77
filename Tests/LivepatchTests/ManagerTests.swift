// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Livepatch
import Platform
import SystemPackage
import Testing

/// load, unload, force and the lock against the fake kernel's livepatch core.
@Suite struct ManagerTests {
    let kernel: FakeKernel
    let files: TemporaryDirectory
    let log = ProgressLog()

    init() throws {
        kernel = try FakeKernel()
        files = try TemporaryDirectory(prefix: "suture-manager-test")
        kernel.start()
    }

    func manager(uid: UInt32 = 0, _ adjust: (inout LivepatchSystem) -> Void = { _ in }) -> LivepatchManager {
        var system = kernel.system(uid: uid)
        adjust(&system)
        return LivepatchManager(system, progress: log.sink)
    }

    func module(_ name: String, replace: Bool? = nil, parameters: [(String, String)] = []) throws -> String {
        try SyntheticModule.write(
            name, in: files.path, fileName: name.replacingOccurrences(of: "_", with: "-") + ".ko",
            replace: replace, parameters: parameters)
    }

    // MARK: - load

    @Test func loadWaitsForTheTransitionAndRecordsTheLoad() throws {
        let path = try module("livepatch_one", replace: false, parameters: [("replace", "int")])
        let outcome = try manager().load(path, parameters: ["replace=0"])
        #expect(outcome.waited)
        #expect(outcome.replaced.isEmpty)
        #expect(outcome.patch.state == "enabled")
        #expect(outcome.patch.replace == false)
        #expect(outcome.patch.file == path)
        #expect(kernel.loads.map(\.parameters) == ["replace=0"])
        #expect(kernel.loads.first?.image == (try FileSystem.read(path)))
        let loaded = try #require(LivepatchSysfs(tree: kernel.tree).modules().first)
        let record = try #require(LoadRecord.read(kernel.tree, for: loaded))
        #expect(record.identity == FileIdentity(path: path))
        #expect(record.fileDigestIfUnchanged() == (try SHA256.hex(file: path)))
        try FileSystem.write(path, [1, 2, 3])
        #expect(record.fileDigestIfUnchanged() == nil)
        #expect(record.replace == false)
        #expect(log.text.contains("loaded livepatch_one; patching"))
    }

    @Test func refusalsHappenBeforeTheKernelIsTouched() throws {
        let path = try module("livepatch_one")
        let notRoot = #expect(throws: LivepatchError.self) { try manager(uid: 65534).load(path) }
        #expect(notRoot?.kind == .notRoot)
        #expect(notRoot?.description.contains("uid 65534") == true)

        let old = try SyntheticModule.write("old", in: files.path, release: "6.1.0-1-amd64")
        #expect(refusal { try manager().load(old) } == .vermagic)
        #expect(refusal { try manager().load(path, parameters: ["nope=1"]) } == .parameter)
        #expect(refusal { try manager().load(files.path + "/missing.ko") } == .missingFile)

        try FileSystem.removeTree(kernel.tree.livepatch)
        #expect(refusal { try manager().load(path) } == .unsupported)
        #expect(kernel.loads.isEmpty)
    }

    @Test func refusesASecondCopyAndABusyKernel() throws {
        let path = try module("livepatch_one")
        _ = try manager().load(path)
        let again = #expect(throws: LivepatchError.self) { try manager().load(path) }
        #expect(again?.kind == .alreadyLoaded)

        kernel.addTask(pid: 9, comm: "stuck", stack: [], blocks: [.patching])
        _ = try manager().load(try module("livepatch_two"), wait: false)
        let busy = #expect(throws: LivepatchError.self) { try manager().load(try module("livepatch_three")) }
        #expect(busy?.kind == .busy)
        #expect(busy?.description.contains("livepatch_two is in transition (patching)") == true)
        #expect(kernel.loads.count == 2)
    }

    @Test func noWaitReturnsDuringTheTransition() throws {
        kernel.addTask(pid: 9, comm: "stuck", stack: [], blocks: [.patching])
        let outcome = try manager().load(try module("livepatch_one"), wait: false)
        #expect(!outcome.waited)
        #expect(outcome.patch.state == "patching")
        #expect(outcome.patch.pendingTasks.map(\.comm) == ["stuck"])
    }

    @Test func kernelRefusalQuotesTheKernelLog() throws {
        kernel.loadFailure = (
            .invalidArgument,
            ["livepatch: Livepatch patch (livepatch_one) is not compatible with the already installed livepatches."]
        )
        let error = #expect(throws: LivepatchError.self) { try manager().load(try module("livepatch_one")) }
        #expect(error?.kind == .loadFailed)
        #expect(error?.errno == .invalidArgument)
        #expect(
            error?.description
                == "the kernel refused livepatch_one (Invalid argument: its init or the livepatch core failed); kernel log: livepatch: Livepatch patch (livepatch_one) is not compatible with the already installed livepatches."
        )
        #expect(kernel.moduleNames.isEmpty)
    }

    @Test func compressedModulesAreLoadedDecompressed() throws {
        try #require(Command.which("xz") != nil, "xz (xz-utils) is needed to compress a module")
        let path = try module("livepatch_xz")
        _ = try Command.output(["xz", "-k", path])
        let outcome = try manager().load(path + ".xz")
        #expect(outcome.patch.name == "livepatch_xz")
        #expect(kernel.loads.first?.image == (try FileSystem.read(path)))
    }

    /// The blocked transition: the kworker sleeps in the function the patch
    /// replaces. Suture names it, reverses, removes the module and fails.
    @Test func timeoutReportsReversesAndRemoves() throws {
        kernel.addModule("test_klp_callbacks_busy", livepatch: false)
        kernel.patchObjects["test_klp_callbacks_demo"] = SysfsTests.demoObjects
        kernel.addTask(pid: 1, comm: "init", stack: ["do_wait+0x1/0x2"])
        kernel.addTask(pid: 34, comm: "kworker/0:2+events", stack: SysfsTests.busyStack, blocks: [.patching])
        let started = Date()
        let error = #expect(throws: LivepatchError.self) {
            try manager().load(try module("test_klp_callbacks_demo"), timeout: 0.3)
        }
        #expect(Date().timeIntervalSince(started) >= 0.3)
        #expect(error?.kind == .timeout)
        #expect(
            error?.description
                == "test_klp_callbacks_demo: the transition did not finish within 0.30 s (blocked by kworker/0:2+events (pid 34) in busymod_work_func); it was reversed and the module removed"
        )
        #expect(
            log.text.contains("kworker/0:2+events pid 34, in busymod_work_func, which test_klp_callbacks_demo changes"))
        #expect(log.text.contains("  > busymod_work_func+0x1d/0x40 [test_klp_callbacks_busy]"))
        #expect(log.text.contains("patching, 1 task pending: kworker/0:2+events (34)"))
        #expect(log.text.contains("reversing the transition"))
        #expect(log.text.contains("removed module test_klp_callbacks_demo"))
        #expect(
            log.text.contains(
                "kernel taint set by this attempt: O (out-of-tree module), E (unsigned module), K (live patched)"))
        #expect(kernel.moduleNames == ["test_klp_callbacks_busy"])
        #expect(kernel.patchNames.isEmpty)
        #expect(FileSystem.readTextIfPresent(Path.join(kernel.tree.records, "test_klp_callbacks_demo.json")) == nil)
    }

    @Test func timeoutWithOnlyIdleTasksPendingSaysSo() throws {
        kernel.blockByIdleTask([.patching])
        let error = #expect(throws: LivepatchError.self) {
            try manager().load(try module("livepatch_one"), timeout: 0.2)
        }
        #expect(error?.kind == .timeout)
        #expect(error?.description.contains("no task in /proc was pending, so idle tasks blocked it") == true)
        #expect(log.text.contains("idle tasks (swapper/N)"))
        #expect(kernel.moduleNames.isEmpty)
    }

    /// When the reversal blocks too, nothing can be removed: Suture says so
    /// and leaves the module, rather than pretending.
    @Test func blockedReversalIsReportedAndLeftAlone() throws {
        kernel.addTask(
            pid: 34, comm: "kworker/0:2", stack: ["livepatch_cmdline_proc_show+0x1/0x10 [livepatch_one]"],
            blocks: [.patching, .unpatching])
        let error = #expect(throws: LivepatchError.self) {
            try manager { $0.settleTimeout = 0.2 }.load(try module("livepatch_one"), timeout: 0.2)
        }
        #expect(error?.kind == .stuck)
        #expect(error?.description.contains("its reversal did not finish") == true)
        #expect(error?.description.contains("suture force livepatch_one --yes") == true)
        #expect(kernel.moduleNames == ["livepatch_one"])
        #expect(kernel.patchState("livepatch_one")?.transition == true)
        #expect(log.text.contains("in livepatch_cmdline_proc_show, which livepatch_one changes"))
    }

    @Test func cumulativePatchRemovesTheReplacedModules() throws {
        _ = try manager().load(try module("livepatch_one"))
        _ = try manager().load(try module("livepatch_two"))
        let outcome = try manager().load(try module("livepatch_cumulative", replace: true))
        #expect(outcome.replaced == ["livepatch_one", "livepatch_two"])
        #expect(kernel.moduleNames == ["livepatch_cumulative"])
        #expect(kernel.removals == ["livepatch_one", "livepatch_two"])
        #expect(try manager().list().map(\.name) == ["livepatch_cumulative"])
        #expect(log.text.contains("livepatch_cumulative replaced livepatch_one; removing its module"))
    }

    // MARK: - unload

    @Test func unloadByFileNameDisablesWaitsAndRemoves() throws {
        _ = try manager().load(try module("livepatch_one"))
        #expect(try manager().unload("livepatch-one.ko") == ["livepatch_one"])
        #expect(kernel.moduleNames.isEmpty)
        #expect(kernel.patchNames.isEmpty)
        #expect(try manager().list().isEmpty)
        #expect(log.text.contains("livepatch_one: disabling"))
    }

    @Test func unloadOfAGonePatchJustRemovesTheModule() throws {
        kernel.addModule("livepatch_old", livepatch: true)
        #expect(try manager().unload("livepatch_old") == ["livepatch_old"])
        #expect(kernel.removals == ["livepatch_old"])
        #expect(log.text.contains("already gone"))
        let error = #expect(throws: LivepatchError.self) { try manager().unload("livepatch_old") }
        #expect(error?.kind == .notLoaded)
    }

    @Test func unloadAllGoesInReverseStackOrder() throws {
        for name in ["livepatch_a", "livepatch_b", "livepatch_c"] {
            _ = try manager().load(try module(name))
        }
        kernel.addModule("livepatch_gone", livepatch: true)
        kernel.addModule("ordinary", livepatch: false)
        #expect(try manager().unloadAll() == ["livepatch_gone", "livepatch_c", "livepatch_b", "livepatch_a"])
        #expect(kernel.removals == ["livepatch_gone", "livepatch_c", "livepatch_b", "livepatch_a"])
        #expect(kernel.moduleNames == ["ordinary"])
    }

    @Test func unloadThatTimesOutKeepsThePatchApplied() throws {
        _ = try manager().load(try module("livepatch_one"))
        kernel.addTask(
            pid: 50, comm: "reader", stack: ["livepatch_cmdline_proc_show+0x1/0x10 [livepatch_one]"],
            blocks: [.unpatching])
        let error = #expect(throws: LivepatchError.self) { try manager().unload("livepatch_one", timeout: 0.2) }
        #expect(error?.kind == .timeout)
        #expect(error?.description.contains("the transition was reversed and the patch stays applied") == true)
        #expect(error?.description.contains("reader (pid 50) in livepatch_cmdline_proc_show") == true)
        #expect(kernel.patchState("livepatch_one")! == (true, false))
        #expect(kernel.moduleNames == ["livepatch_one"])
    }

    @Test func unloadAllStopsAtAFailure() throws {
        _ = try manager().load(try module("livepatch_a"))
        _ = try manager().load(try module("livepatch_b"))
        kernel.addTask(pid: 50, comm: "reader", stack: [], blocks: [.unpatching])
        let error = #expect(throws: LivepatchError.self) { try manager().unloadAll(timeout: 0.1) }
        #expect(error?.kind == .timeout)
        #expect(kernel.moduleNames == ["livepatch_a", "livepatch_b"])
    }

    // MARK: - force

    @Test func forceNeedsATransitionAndConfirmation() throws {
        _ = try manager().load(try module("livepatch_one"))
        let idle = #expect(throws: LivepatchError.self) { try manager().force("livepatch_one", confirmed: true) }
        #expect(idle?.kind == .force)
        #expect(idle?.description.contains("not in transition") == true)

        kernel.addTask(pid: 9, comm: "stuck", stack: [], blocks: [.patching])
        _ = try manager().load(try module("livepatch_two", replace: false), wait: false)
        let unconfirmed = #expect(throws: LivepatchError.self) {
            try manager().force("livepatch_two", confirmed: false)
        }
        #expect(unconfirmed?.kind == .force)
        #expect(log.text.contains("warning: forcing marks every remaining task"))
        #expect(log.text.contains("replaces no earlier patch"))
        #expect(kernel.patchState("livepatch_two")! == (true, true))

        let patch = try manager().force("livepatch_two", confirmed: true)
        #expect(patch.state == "enabled")
    }

    @Test func aPatchForcedOutKeepsItsModule() throws {
        _ = try manager().load(try module("livepatch_one"))
        kernel.addTask(pid: 9, comm: "stuck", stack: [], blocks: [.unpatching])
        _ = try? manager().unload("livepatch_one", timeout: 0.05)  // reverses back to enabled
        #expect(kernel.patchState("livepatch_one")! == (true, false))
        // Start disabling by hand, then force it.
        try kernel.writeAttribute(Path.join(kernel.tree.patch("livepatch_one"), "enabled"), "0")
        #expect(kernel.patchState("livepatch_one")! == (false, true))
        let forced = try manager().force("livepatch_one", confirmed: true)
        #expect(forced.state == "gone")
        #expect(log.text.contains("the module can never be removed"))
        #expect(kernel.patchNames.isEmpty)
        #expect(kernel.references("livepatch_one") == 1)
        let error = #expect(throws: LivepatchError.self) { try manager().unload("livepatch_one") }
        #expect(error?.kind == .stuck)
    }

    // MARK: - The lock

    @Test func aSecondProcessWaitsThenGivesUp() throws {
        let holder = try FileLock(path: kernel.tree.lock, timeout: 1)
        try FileSystem.write(kernel.tree.lock + ".owner", "pid 4242: load other\n")
        let error = #expect(throws: LivepatchError.self) { try manager().load(try module("livepatch_one")) }
        #expect(error?.kind == .locked)
        #expect(error?.description.contains("(pid 4242: load other)") == true)
        #expect(
            log.text.contains(
                "another suture process (pid 4242: load other) is changing live patches; waiting up to 0 s")
                || log.text.contains("waiting up to"))
        #expect(kernel.loads.isEmpty)
        holder.unlock()
        _ = try manager().load(try module("livepatch_one"))
        #expect(kernel.loads.count == 1)
    }

    @Test func aSecondProcessProceedsOnceTheLockIsFree() throws {
        let holder = try FileLock(path: kernel.tree.lock, timeout: 1)
        let release = Thread {
            Thread.sleep(forTimeInterval: 0.2)
            holder.unlock()
        }
        release.start()
        _ = try manager { $0.lockTimeout = 5 }.load(try module("livepatch_one"))
        #expect(log.text.contains("is changing live patches; waiting up to 5 s"))
        #expect(kernel.moduleNames == ["livepatch_one"])
    }
}
