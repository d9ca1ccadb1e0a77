// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// What `install` did with the running kernel.
public enum InstallLoad: String, Sendable {
    /// The patch was loaded now, and its transition finished.
    case loaded
    /// The same module was loaded already.
    case alreadyLoaded
    /// The patch is for another kernel release: checked, not loaded.
    case notRunning
}

/// What `install` did.
public struct InstallOutcome: Sendable {
    /// The entry now in the store.
    public var entry: StoreEntry
    public var load: InstallLoad
    /// Patches the new one replaced when it was loaded; their modules were removed.
    public var replaced: [String]
    /// The record it took the place of, when it was installed before.
    public var previous: InstalledPatch?
}

/// What `uninstall` did.
public struct UninstallOutcome: Sendable {
    /// The entry removed from the store.
    public var entry: StoreEntry
    /// Whether a module of that name is still loaded in the running kernel.
    public var stillLoaded: Bool
}

extension LivepatchManager {
    /// The kernel release the manager acts on: what `uname -r` prints.
    public var runningRelease: String { sysfs.runningRelease() }

    // MARK: - install

    /// Checks a livepatch module and keeps it in `store` for `release`
    /// (default: the running kernel), to be loaded at every boot of it.
    ///
    /// For the running release the module must also load: it is loaded
    /// unless the same file is loaded already, and nothing is stored when
    /// the load fails. For another release it is checked statically only
    /// (livepatch modinfo, vermagic). Installing a name again replaces the
    /// earlier copy and moves it to the end of the install order.
    public func install(
        _ path: String, release: String? = nil, store: PatchStore,
        timeout: Double = 30
    ) throws(LivepatchError) -> InstallOutcome {
        let running = runningRelease
        let target = release ?? running
        let isRunning = target == running
        try PatchStore.requireValidRelease(target)
        let module = try ModuleFile.inspect(path)
        do {
            try module.requireLivepatch(release: target, running: isRunning)
        } catch {
            var failure = error
            if isRunning, error.kind == .vermagic, let built = module.vermagicRelease {
                failure.message +=
                    "; to install it for kernel \(built), which loads it at its boot, add --kernel \(built)"
            }
            throw failure
        }
        let name = module.name
        try PatchStore.requireValidName(name, in: path)
        if isRunning {
            try requireSupport()
            try requireRoot("installing a live patch for the running kernel")
            _ = try SignaturePolicy.read(tree).check(module)
        }
        // The bytes that were checked, not the file read again.
        let bytes = module.image.fileBytes

        let lock = try store.lock(system, action: "install \(name)", say: progress)
        defer { lock.release() }
        let digest = SHA256.hex(bytes)
        var load = InstallLoad.notRunning
        if isRunning, let loaded = sysfs.modules().first(where: { $0.name == name }) {
            try requireSameModule(loaded, digest: digest, installing: path)
            progress("\(name) is loaded already: the same module")
            load = .alreadyLoaded
        }
        let previous = store.entry(name, release: target)?.patch
        let moduleFile = PatchStore.moduleName(name, from: path)
        let sequence = try store.nextSequence(target)
        let staged = try store.stage(bytes, moduleFile: moduleFile, release: target)
        var replaced: [String] = []
        if isRunning && load != .alreadyLoaded {
            do {
                replaced = try self.load(staged, timeout: timeout).replaced
            } catch {
                store.discard(staged, release: target)
                throw error
            }
            load = .loaded
        }
        var record = InstalledPatch(
            name: name, release: target, sequence: sequence, installedAt: Clock.isoTimestamp(),
            source: Path.absolute(path), moduleFile: moduleFile, sha256: digest,
            size: bytes.count, replace: module.replace, vermagic: module.vermagic)
        record.description = module.modinfo.first { $0.key == SutureModinfo.description }?.value
        record.cves = SutureModinfo.cves(module.modinfo)
        record.signer = module.signature?.summary
        let entry: StoreEntry
        do {
            entry = try store.commit(staged: staged, record)
        } catch {
            store.discard(staged, release: target)
            guard load == .loaded else { throw error }
            // Undo the load, unless it replaced patches that cannot come back.
            if replaced.isEmpty, (try? unload(name, timeout: timeout)) != nil {
                throw LivepatchError(error.kind, error.description + "; \(name) was unloaded again")
            }
            throw LivepatchError(
                error.kind,
                error.description
                    + "; \(name) stays loaded but is not installed: `suture unload \(name)` removes it")
        }
        if load != .notRunning, let file = entry.module { noteLoadedFile(name, file) }
        return InstallOutcome(entry: entry, load: load, replaced: replaced, previous: previous)
    }

    /// Refuses to install over a loaded module that is not the same file:
    /// the kernel could not load the new one next to it, so it would be
    /// stored without proof that it loads.
    private func requireSameModule(_ loaded: LoadedModule, digest: String, installing path: String)
        throws(LivepatchError)
    {
        let name = loaded.name
        guard loaded.isLivepatch, sysfs.patch(name) != nil else {
            let what =
                loaded.isLivepatch
                ? "a livepatch module whose patch is disabled or replaced" : "a module that is not a livepatch module"
            throw LivepatchError(
                .alreadyLoaded,
                "\(name) is loaded as \(what); unload it first (`suture unload \(name)`), then install \(path)")
        }
        guard let record = LoadRecord.read(tree, for: loaded), let loadedDigest = record.fileDigestIfUnchanged() else {
            throw LivepatchError(
                .alreadyLoaded,
                "\(name) is loaded already, and whether it is \(path) cannot be told (it was not loaded by suture, or its file changed since); unload it first (`suture unload \(name)`), then install"
            )
        }
        guard loadedDigest == digest else {
            throw LivepatchError(
                .alreadyLoaded,
                "another build of \(name) is loaded (from \(record.file)); unload it first (`suture unload \(name)`), then install \(path)"
            )
        }
    }

    /// Points the load record of the loaded module at its copy in the
    /// store, which has the same bytes: loaded from the staged file and
    /// renamed, or loaded before from a file whose digest matched.
    private func noteLoadedFile(_ name: String, _ file: String) {
        guard let loaded = sysfs.modules().first(where: { $0.name == name }),
            var record = LoadRecord.read(tree, for: loaded),
            let identity = FileIdentity(path: file)
        else { return }
        record.file = file
        record.identity = identity
        try? record.write(tree)
    }

    // MARK: - uninstall

    /// Removes a patch from the store of `release` (default: the running
    /// kernel). The running kernel is not touched: `unload` does that.
    public func uninstall(_ name: String, release: String? = nil, store: PatchStore) throws(LivepatchError)
        -> UninstallOutcome
    {
        let running = runningRelease
        let target = release ?? running
        try PatchStore.requireValidRelease(target)
        let wanted = ModuleName.normalized(name)
        let lock = try store.lock(system, action: "uninstall \(wanted)", say: progress)
        defer { lock.release() }
        let entries = store.entries(target, verify: false)
        guard let entry = entries.first(where: { $0.name == wanted }) else {
            let installed =
                entries.isEmpty
                ? "nothing is installed for it" : "installed: " + entries.map(\.name).joined(separator: ", ")
            throw LivepatchError(
                .notInstalled,
                "\(wanted) is not installed for kernel \(target) (\(store.directory(target))); \(installed)")
        }
        try store.remove(entry, release: target)
        let stillLoaded = target == running && sysfs.isLoaded(wanted)
        return UninstallOutcome(entry: entry, stillLoaded: stillLoaded)
    }
}
