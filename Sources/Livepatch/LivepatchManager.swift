// SPDX-License-Identifier: GPL-2.0-only
import Platform
import SystemPackage

/// Loads, unloads and inspects live patches on the running kernel, through
/// `/sys/kernel/livepatch`, `/proc` and the module system calls.
///
/// Everything that changes the kernel holds `KernelLock`. Progress goes to
/// `progress`, one line at a time; results come back as values and
/// failures as `LivepatchError`.
public struct LivepatchManager: Sendable {
    public let system: LivepatchSystem
    public let sysfs: LivepatchSysfs
    public let tasks: TaskScanner
    let progress: @Sendable (String) -> Void

    public init(_ system: LivepatchSystem, progress: @escaping @Sendable (String) -> Void) {
        self.system = system
        sysfs = LivepatchSysfs(tree: system.tree)
        tasks = TaskScanner(tree: system.tree)
        self.progress = progress
    }

    var tree: KernelTree { system.tree }

    // MARK: - Reading

    /// Every livepatch module and patch in stack order, with the pending
    /// tasks of the patch in transition.
    public func list() throws(LivepatchError) -> [PatchStatus] {
        try requireSupport()
        let patches = sysfs.patches()
        return patches.map { patch in
            guard let direction = patch.direction else { return patch }
            return withPendingTasks(patch, direction: direction, others: patches)
        }
    }

    /// One patch, by module name or file name (`livepatch-foo`, `livepatch_foo`).
    public func status(_ name: String) throws(LivepatchError) -> PatchStatus {
        let wanted = ModuleName.normalized(name)
        guard let patch = try list().first(where: { $0.name == wanted }) else {
            throw notLoaded(wanted)
        }
        return patch
    }

    /// The patch with its pending tasks described.
    /// Only root can read other users' `patch_state` and stacks; others
    /// get no pending tasks rather than a wrong account.
    func withPendingTasks(_ patch: PatchStatus, direction: TransitionDirection, others: [PatchStatus]) -> PatchStatus {
        var result = patch
        guard system.effectiveUserID == 0 else { return result }
        let matcher = PatchFrameMatcher(patch: patch, others: others)
        result.pendingTasks = tasks.describe(tasks.pending(direction), matching: matcher)
        result.hiddenTasksPending = result.pendingTasks.isEmpty
        return result
    }

    // MARK: - Checks shared by the commands

    func requireSupport() throws(LivepatchError) {
        guard sysfs.isSupported else {
            throw LivepatchError(
                .unsupported,
                "the running kernel \(sysfs.runningRelease()) has no live patching support: \(tree.livepatch) does not exist (CONFIG_LIVEPATCH is off)"
            )
        }
    }

    func requireRoot(_ action: String) throws(LivepatchError) {
        guard system.effectiveUserID == 0 else {
            throw LivepatchError(
                .notRoot,
                "\(action) needs root: loading and removing kernel modules needs CAP_SYS_MODULE (running as uid \(system.effectiveUserID))"
            )
        }
    }

    func notLoaded(_ name: String) -> LivepatchError {
        if sysfs.isLoaded(name) {
            return LivepatchError(.notLoaded, "\(name) is loaded but is not a livepatch module")
        }
        return LivepatchError(.notLoaded, "no livepatch module \(name) is loaded")
    }

    // MARK: - Transitions

    /// How a wait for a transition ended.
    enum TransitionEnd {
        /// The transition is over, with the patch enabled or not.
        case settled(enabled: Bool)
        /// The patch folder is gone: the kernel freed the patch.
        case gone
        /// Time ran out while the transition still ran.
        case timedOut
    }

    /// Waits until `name`'s transition ends, printing which tasks are
    /// pending now and then.
    func waitForTransition(_ name: String, timeout: Double) -> TransitionEnd {
        let deadline = Clock.now() + timeout
        var nextProgress = Clock.now() + system.progressInterval
        var lastLine = ""
        while true {
            guard let state = sysfs.transitionState(name) else { return .gone }
            guard state.transition else { return .settled(enabled: state.enabled) }
            let direction: TransitionDirection = state.enabled ? .patching : .unpatching
            let now = Clock.now()
            if now >= deadline { return .timedOut }
            if now >= nextProgress {
                nextProgress = now + system.progressInterval
                let line = progressLine(name, direction: direction)
                if line != lastLine {
                    progress(line)
                    lastLine = line
                }
            }
            Clock.sleep(seconds: min(system.pollInterval, max(0, deadline - now)))
        }
    }

    /// `NAME: patching, 2 tasks pending: kworker/0:2+events (34), …`.
    func progressLine(_ name: String, direction: TransitionDirection) -> String {
        let threads = tasks.pending(direction)
        guard !threads.isEmpty else {
            return
                "\(name): \(direction.rawValue); no pending task is visible in /proc, so idle tasks (swapper/N) remain"
        }
        let shown = threads.prefix(5).map { thread in
            "\(tasks.comm(thread) ?? "?") (\(thread.pid == thread.tid ? "\(thread.pid)" : "\(thread.pid)/\(thread.tid)"))"
        }
        let more = threads.count > shown.count ? ", and \(threads.count - shown.count) more" : ""
        let count = threads.count == 1 ? "1 task" : "\(threads.count) tasks"
        return "\(name): \(direction.rawValue), \(count) pending: \(shown.joined(separator: ", "))\(more)"
    }

    /// Describes the tasks that block `patch`'s transition, for a timeout.
    func blockers(_ name: String, direction: TransitionDirection) -> PatchStatus? {
        let all = sysfs.patches()
        guard let patch = all.first(where: { $0.name == name }) else { return nil }
        return withPendingTasks(patch, direction: direction, others: all)
    }

    /// Prints the blocking tasks with their stacks, the patch's frames marked.
    func reportBlockers(_ status: PatchStatus, direction: TransitionDirection, after seconds: Double) {
        progress(
            "\(status.name): the \(direction.rawValue) transition did not finish within \(LivepatchText.seconds(seconds))."
        )
        for line in LivepatchText.pendingLines(status, indent: "  ") { progress(line) }
    }

    /// A one-line account of the blockers for error messages.
    func blockerSummary(_ status: PatchStatus?) -> String {
        guard let status else { return "" }
        if status.pendingTasks.isEmpty {
            return "no task in /proc was pending, so idle tasks blocked it"
        }
        let shown = status.pendingTasks.prefix(3).map { task -> String in
            let inside = task.patchFunctions.isEmpty ? "" : " in \(task.patchFunctions.joined(separator: ", "))"
            return "\(task.comm) (pid \(task.pid))\(inside)"
        }
        let more = status.pendingTasks.count > 3 ? " and \(status.pendingTasks.count - 3) more" : ""
        return "blocked by " + shown.joined(separator: ", ") + more
    }

    /// Writes `enabled`. Before the write returns, the kernel reverses a
    /// running transition or starts disabling the patch (`enabled_store`).
    func writeEnabled(_ name: String, _ value: Bool) throws(LivepatchError) {
        do {
            try system.calls.writeAttribute(Path.join(tree.patch(name), "enabled"), value ? "1" : "0")
        } catch {
            if error.errno == .noSuchFileOrDirectory { return }  // freed meanwhile
            if error.errno == .resourceBusy {
                let other = sysfs.transitionPatch()?.name ?? "another patch"
                throw LivepatchError(
                    .busy,
                    "cannot \(value ? "enable" : "disable") \(name) now: \(other) is in transition, and the kernel runs one transition at a time"
                )
            }
            throw LivepatchError(.io, errno: error.errno, "write \(value ? 1 : 0) to \(tree.patch(name))/enabled")
        }
    }

    // MARK: - Removing modules

    /// Waits until the module's references allow removal, then removes it
    /// with `delete_module`. The livepatch core holds one reference per
    /// live patch and drops it when it frees the patch.
    func removeModule(_ name: String) throws(LivepatchError) {
        let deadline = Clock.now() + system.settleTimeout
        var announced = false
        while true {
            guard let module = sysfs.modules().first(where: { $0.name == name }) else {
                LoadRecord.remove(tree, name)
                return
            }
            let references = sysfs.referenceCount(name) ?? module.referenceCount
            if references == 0 && module.state == "Live" {
                do {
                    try system.calls.remove(name)
                    LoadRecord.remove(tree, name)
                    progress("removed module \(name)")
                    return
                } catch {
                    switch error.errno {
                    case .noSuchFileOrDirectory?:
                        LoadRecord.remove(tree, name)
                        return
                    case .wouldBlock?, .resourceBusy?:
                        break  // a reference appeared; wait again
                    default:
                        throw LivepatchError(.removeFailed, errno: error.errno, "delete_module \(name)")
                    }
                }
            }
            if Clock.now() >= deadline {
                throw LivepatchError(
                    .stuck,
                    "module \(name) still has \(references) reference\(references == 1 ? "" : "s") after \(Int(system.settleTimeout)) s, so it cannot be removed; try `suture unload \(name)` later"
                )
            }
            if !announced && references > 0 {
                progress(
                    "\(name): waiting for the kernel to drop its \(references) reference\(references == 1 ? "" : "s") to the module"
                )
                announced = true
            }
            Clock.sleep(seconds: system.pollInterval)
        }
    }

    /// Reports taint flags set since `before`, and the whole mask.
    func reportTaint(since before: KernelTaint?) -> KernelTaint? {
        guard let after = KernelTaint.read(tree) else { return nil }
        let added = before.map { after.added(since: $0) } ?? after
        if added.mask != 0 {
            progress("kernel taint set by this attempt: \(added.summary); the kernel keeps taint flags until reboot")
        }
        progress("kernel taint now: \(after.letters.isEmpty ? "none" : after.letters) (\(after.mask))")
        return after
    }
}
