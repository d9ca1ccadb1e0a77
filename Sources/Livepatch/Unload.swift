// SPDX-License-Identifier: GPL-2.0-only
import Platform

extension LivepatchManager {
    /// Disables a patch, waits for the transition and removes its module.
    /// NAME is a module name or file name. A module whose patch is already
    /// gone is simply removed. Returns the names unloaded.
    ///
    /// When the transition does not finish within `timeout`, it reports
    /// the blocking tasks and reverses, so the patch stays fully applied,
    /// and throws `.timeout`.
    public func unload(_ name: String, timeout: Double = 30) throws(LivepatchError) -> [String] {
        try requireSupport()
        try requireRoot("unloading a live patch")
        let wanted = ModuleName.normalized(name)
        let lock = try KernelLock(system, action: "unload \(wanted)", say: progress)
        defer { lock.release() }
        guard let patch = sysfs.patches().first(where: { $0.name == wanted }) else {
            throw notLoaded(wanted)
        }
        try unloadOne(patch, timeout: timeout)
        return [wanted]
    }

    /// Unloads every livepatch module, newest first (reverse stack order).
    /// Stops at the first failure, leaving the older patches in place.
    public func unloadAll(timeout: Double = 30) throws(LivepatchError) -> [String] {
        try requireSupport()
        try requireRoot("unloading live patches")
        let lock = try KernelLock(system, action: "unload --all", say: progress)
        defer { lock.release() }
        var done: [String] = []
        for patch in sysfs.patches().reversed() {
            do {
                try unloadOne(patch, timeout: timeout)
            } catch {
                var failure = error
                if !done.isEmpty { failure.message += " (already unloaded: \(done.joined(separator: ", ")))" }
                throw failure
            }
            done.append(patch.name)
        }
        if done.isEmpty { progress("no livepatch module is loaded") }
        return done
    }

    private func unloadOne(_ patch: PatchStatus, timeout: Double) throws(LivepatchError) {
        let name = patch.name
        if patch.present {
            if patch.enabled {
                // Disables an applied patch, or reverses one still patching.
                progress("\(name): disabling")
                try writeEnabled(name, false)
            }
            switch waitForTransition(name, timeout: timeout) {
            case .gone:
                break
            case .settled(enabled: false):
                break
            case .settled:
                throw LivepatchError(.stuck, "\(name) was enabled again by someone else while it was being disabled")
            case .timedOut:
                let report = blockers(name, direction: .unpatching)
                if let report { reportBlockers(report, direction: .unpatching, after: timeout) }
                progress("\(name): reversing, so that the patch stays fully applied")
                try writeEnabled(name, true)
                let back = waitForTransition(name, timeout: system.settleTimeout)
                let outcome: String
                if case .settled(enabled: true) = back {
                    outcome = "the transition was reversed and the patch stays applied"
                } else {
                    outcome = "its reversal did not finish either; see `suture status \(name)`"
                }
                throw LivepatchError(
                    .timeout,
                    "\(name): disabling did not finish within \(LivepatchText.seconds(timeout)) (\(blockerSummary(report))); \(outcome)"
                )
            }
        } else {
            progress("\(name): its patch is already gone (disabled or replaced)")
        }
        try removeModule(name)
    }

    /// Completes the running transition of `name` by marking every task as
    /// migrated (`klp_force_transition`), then waits for it to end.
    ///
    /// The stacks of the remaining tasks are not checked, and the kernel
    /// never drops its reference to a patch forced out, nor to the patches
    /// a forced cumulative patch replaced: those modules stay loaded for good.
    public func force(_ name: String, confirmed: Bool) throws(LivepatchError) -> PatchStatus {
        try requireSupport()
        try requireRoot("forcing a transition")
        let wanted = ModuleName.normalized(name)
        guard let patch = sysfs.patch(wanted) else { throw notLoaded(wanted) }
        guard let direction = patch.direction else {
            throw LivepatchError(.force, "\(wanted) is not in transition; force only completes a running transition")
        }
        progress("warning: " + Self.forceWarning(wanted, direction: direction, replace: try? status(wanted).replace))
        guard confirmed else {
            throw LivepatchError(.force, "not forcing \(wanted) without --yes")
        }
        let lock = try KernelLock(system, action: "force \(wanted)", say: progress)
        defer { lock.release() }
        do {
            try system.calls.writeAttribute(Path.join(tree.patch(wanted), "force"), "1")
        } catch {
            if error.errno == .invalidArgument {
                throw LivepatchError(.force, "\(wanted) is no longer in transition; nothing to force")
            }
            throw LivepatchError(.io, errno: error.errno, "write 1 to \(tree.patch(wanted))/force")
        }
        progress("\(wanted): forced; waiting for the transition to end")
        switch waitForTransition(wanted, timeout: system.settleTimeout) {
        case .gone, .settled:
            // A patch forced out is freed soon after; show it gone.
            let deadline = Clock.now() + system.settleTimeout
            while let folder = sysfs.patch(wanted), !folder.enabled, Clock.now() < deadline {
                Clock.sleep(seconds: system.pollInterval)
            }
            return try status(wanted)
        case .timedOut:
            throw LivepatchError(
                .stuck, "\(wanted): the forced transition did not end within \(Int(system.settleTimeout)) s")
        }
    }

    /// What forcing gives up, for the direction at hand.
    public static func forceWarning(_ name: String, direction: TransitionDirection, replace: Bool??) -> String {
        var text =
            "forcing marks every remaining task of \(name)'s transition as migrated without checking its stack, so a task still inside a changed function may run old and new code mixed. "
        switch direction {
        case .unpatching:
            text += "The kernel then keeps its reference to \(name)'s module for good: the module can never be removed."
        case .patching:
            switch replace {
            case .some(.some(false)):
                text += "\(name) replaces no earlier patch, so no module is pinned."
            case .some(.some(true)):
                text +=
                    "\(name) replaces earlier patches, and the kernel then keeps its references to their modules for good: they can never be removed."
            default:
                text +=
                    "If \(name) replaces earlier patches, the kernel then keeps its references to their modules for good: they can never be removed."
            }
        }
        return text
    }
}
