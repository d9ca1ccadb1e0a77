// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import SystemPackage

/// What `load` did.
public struct LoadOutcome: Sendable {
    /// The new patch's state at the end.
    public var patch: PatchStatus
    /// Patches the new one replaced; their modules were removed.
    public var replaced: [String]
    /// Whether the transition was waited for (not `--no-wait`).
    public var waited: Bool
    /// Seconds from the load to the end of the transition.
    public var seconds: Double
    /// The load-time run-pre check of each recorded function.
    public var verification: [RunningCodeCheck] = []
    /// Seconds the load-time run-pre check took.
    public var verifySeconds = 0.0
}

extension LivepatchManager {
    /// Loads a livepatch module with `finit_module` and waits for its
    /// transition.
    ///
    /// Refuses files that are not livepatch modules for the running kernel.
    /// When the transition does not finish within `timeout` seconds, it
    /// reports the blocking tasks, reverses the transition, removes the
    /// module and throws `.timeout`: nothing of the patch remains. When the
    /// new patch replaced earlier ones, their modules are removed.
    public func load(
        _ path: String, parameters: [String] = [], timeout: Double = 30,
        wait: Bool = true, verify: Bool = true
    ) throws(LivepatchError) -> LoadOutcome {
        let module = try ModuleFile.inspect(path)
        try module.requireLivepatch(runningRelease: sysfs.runningRelease())
        let parameterString = try module.parameterString(parameters)
        try requireSupport()
        try requireRoot("loading a live patch")
        let name = module.name
        let policy = SignaturePolicy.read(tree)
        if let warning = try policy.check(module) { progress("warning: \(warning)") }

        let lock = try KernelLock(system, action: "load \(name)", say: progress)
        defer { lock.release() }

        if let loaded = sysfs.modules().first(where: { $0.name == name }) {
            let what = loaded.isLivepatch ? "a livepatch module" : "a module"
            throw LivepatchError(
                .alreadyLoaded,
                "\(what) named \(name) is already loaded; unload it first (`suture unload \(name)`), or rebuild the patch under a new name"
            )
        }
        if let running = sysfs.transitionPatch() {
            throw LivepatchError(
                .busy,
                "\(running.name) is in transition (\(running.direction?.rawValue ?? "")), and the kernel runs one transition at a time; see `suture status \(running.name)`"
            )
        }

        let verifyStarted = Clock.now()
        let checks = verify ? try verifyRunningCode(module) : []
        let verifySeconds = Clock.now() - verifyStarted

        let before = Set(sysfs.patchNames())
        let taintBefore = KernelTaint.read(tree)
        let identity = try insert(module, parameters: parameterString, policy: policy)
        let started = Clock.now()
        if let size = sysfs.modules().first(where: { $0.name == name })?.size {
            var record = LoadRecord(
                name: name, file: Path.absolute(path), identity: identity, replace: module.replace,
                loadedAt: Clock.isoTimestamp(), moduleSize: size)
            record.builtFor = module.modinfo.first { $0.key == SutureModinfo.release }?.value
            record.diffs = module.modinfo.filter { $0.key == SutureModinfo.diff }.map(\.value)
            record.description = module.modinfo.first { $0.key == SutureModinfo.description }?.value
            record.cves = SutureModinfo.cves(module.modinfo)
            record.signed = module.signature != nil
            record.signer = module.signature?.summary
            record.verification =
                checks.isEmpty && !verify ? ["not verified at load (--no-verify)"] : checks.map(\.line)
            try? record.write(tree)
        }
        guard sysfs.transitionState(name) != nil else {
            // Loaded, but no patch registered: its init did not call
            // klp_enable_patch. Take it out again.
            try? removeModule(name)
            throw LivepatchError(
                .loadFailed,
                "\(name) loaded but registered no live patch (its init did not call klp_enable_patch); it was removed")
        }
        progress("loaded \(name); patching")
        guard wait else {
            return LoadOutcome(
                patch: try status(name), replaced: [], waited: false, seconds: Clock.now() - started,
                verification: checks, verifySeconds: verifySeconds)
        }

        switch waitForTransition(name, timeout: timeout) {
        case .settled(enabled: true):
            break
        case .settled, .gone:
            try? removeModule(name)
            throw LivepatchError(
                .stuck, "\(name) was disabled by someone else during its transition; its module was removed")
        case .timedOut:
            try abandon(name, after: timeout, taintBefore: taintBefore)
        }
        let seconds = Clock.now() - started
        progress("\(name): patched in \(LivepatchText.seconds(seconds))")

        // A cumulative patch disables every earlier patch as its transition
        // completes (klp_unpatch_replaced_patches) and frees them soon
        // after; their modules stay loaded until someone removes them.
        let replaced = before.filter { old in
            guard let folder = sysfs.patch(old) else { return true }
            return !folder.enabled && !folder.transition
        }.filter { sysfs.isLoaded($0) }.sorted()
        for old in replaced {
            progress("\(name) replaced \(old); removing its module")
            try removeModule(old)
        }
        return LoadOutcome(
            patch: try status(name), replaced: replaced, waited: true, seconds: seconds, verification: checks,
            verifySeconds: verifySeconds)
    }

    /// The load-time run-pre check of the functions the module records;
    /// a running function that differs refuses the load.
    private func verifyRunningCode(_ module: ModuleFile) throws(LivepatchError) -> [RunningCodeCheck] {
        guard let record = try RunPreRecord.read(module.image.elf) else { return [] }
        let checks = RunningCodeCheck.check(record, tree: tree)
        let bad = checks.filter { $0.status == .mismatch }
        guard bad.isEmpty else {
            throw LivepatchError(
                .codeMismatch,
                "\(module.name): the running kernel's code is not the code the patch was built against, so it may already have been changed at run time or the patch is for another build; not loaded:\n"
                    + bad.map { "  " + $0.line }.joined(separator: "\n"))
        }
        for check in checks { progress("run-pre: \(check.line)") }
        return checks
    }

    /// `finit_module`, with the kernel's reason when it refuses. Returns
    /// the identity of the file that was loaded.
    private func insert(_ module: ModuleFile, parameters: String, policy: SignaturePolicy) throws(LivepatchError)
        -> FileIdentity
    {
        // The sealed bytes that were checked, never the file again.
        let fd = module.image.sealed.fd
        let identity = module.image.identity
        let log = KernelLogCursor(path: tree.kmsg)
        do {
            try system.calls.load(fd, parameters: parameters)
        } catch {
            if let refusal = policy.explainRefusal(module, errno: error.errno) { throw refusal }
            let relevant = log.messages().filter { $0.contains(module.name) || $0.hasPrefix("livepatch: ") }
            let quoted = relevant.isEmpty ? "" : "; kernel log: " + relevant.suffix(5).joined(separator: " | ")
            let reason = error.errno.map { "\($0.shortDescription): " } ?? ""
            var failure = LivepatchError(
                .loadFailed, "the kernel refused \(module.name) (\(reason)\(Self.explain(error.errno)))\(quoted)")
            failure.errno = error.errno
            failure.showsErrno = false
            throw failure
        }
        return identity
    }

    /// What a `finit_module` errno means for a livepatch module. Other
    /// values are what the module's init (`klp_enable_patch`) returned.
    static func explain(_ errno: Errno?) -> String {
        switch errno {
        case .fileExists?: return "a module of that name is loaded"
        case .resourceBusy?: return "another live patch is in transition"
        case .execFormatError?: return "invalid module format: built for another kernel or architecture"
        case .permissionDenied?, .notPermitted?:
            return "module loading is not permitted: lockdown, Secure Boot or modules_disabled"
        case .noSuchFileOrDirectory?: return "it needs a symbol the kernel does not have"
        case Errno(rawValue: 129)?: return "its signature was rejected"  // EKEYREJECTED
        default: return "its init or the livepatch core failed"
        }
    }

    /// After a timeout: report, reverse, wait, remove, report taint; throws.
    private func abandon(_ name: String, after timeout: Double, taintBefore: KernelTaint?) throws(LivepatchError)
        -> Never
    {
        let report = blockers(name, direction: .patching)
        if let report { reportBlockers(report, direction: .patching, after: timeout) }
        progress("\(name): reversing the transition (writing 0 to \(tree.patch(name))/enabled)")
        try writeEnabled(name, false)
        switch waitForTransition(name, timeout: system.settleTimeout) {
        case .gone, .settled:
            break
        case .timedOut:
            let stuck = blockers(name, direction: .unpatching)
            if let stuck { reportBlockers(stuck, direction: .unpatching, after: system.settleTimeout) }
            _ = reportTaint(since: taintBefore)
            throw LivepatchError(
                .stuck,
                "\(name): the transition timed out after \(LivepatchText.seconds(timeout)) (\(blockerSummary(report))), and its reversal did not finish within \(Int(system.settleTimeout)) s either (\(blockerSummary(stuck))); the patch stays in transition. `suture force \(name) --yes` completes it, but the module can then never be removed"
            )
        }
        progress("\(name): reversed; removing the module")
        try removeModule(name)
        _ = reportTaint(since: taintBefore)
        throw LivepatchError(
            .timeout,
            "\(name): the transition did not finish within \(LivepatchText.seconds(timeout)) (\(blockerSummary(report))); it was reversed and the module removed"
        )
    }
}
