// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// How one installed patch fared in `loadAll`.
public struct LoadAllResult: Sendable {
    public enum Status: String, Sendable {
        /// Loaded now; its transition finished.
        case loaded
        /// Loaded before, from the same module.
        case alreadyLoaded
        /// Not loaded: a cumulative patch installed later replaces it.
        case superseded
        /// Not loaded: see `error`.
        case failed
    }

    public var name: String
    public var status: Status
    public var error: LivepatchError?
    /// Seconds its load took, for `.loaded`.
    public var seconds: Double?

    public init(name: String, status: Status, error: LivepatchError? = nil, seconds: Double? = nil) {
        self.name = name
        self.status = status
        self.error = error
        self.seconds = seconds
    }

    public var json: JSON {
        .object([
            ("name", .string(name)),
            ("status", .string(status.rawValue)),
            (
                "error",
                error.map { .object([("code", .string($0.code)), ("message", .string($0.description))]) } ?? .null
            ),
            ("seconds", seconds.map { .double(($0 * 1000).rounded() / 1000) } ?? .null),
        ])
    }
}

/// What `loadAll` did, patch by patch in install order.
public struct LoadAllOutcome: Sendable {
    public var release: String
    /// The release's folder in the store.
    public var directory: String
    public var results: [LoadAllResult]

    public init(release: String, directory: String, results: [LoadAllResult]) {
        self.release = release
        self.directory = directory
        self.results = results
    }

    public var failed: [LoadAllResult] { results.filter { $0.status == .failed } }
}

extension LivepatchManager {
    // MARK: - load --all

    /// Loads every patch installed for the running kernel, in install
    /// order, and goes on past failures; damaged entries fail without being
    /// loaded. Patches that are loaded already are left as they are, and
    /// those that a later cumulative patch replaces are skipped. Throws only
    /// when nothing can be loaded at all (no live patching, not root, the
    /// lock); per-patch failures are in the outcome.
    public func loadAll(store: PatchStore, timeout: Double = 30) throws(LivepatchError) -> LoadAllOutcome {
        let release = runningRelease
        try PatchStore.requireValidRelease(release)
        var outcome = LoadAllOutcome(release: release, directory: store.directory(release), results: [])
        guard FileSystem.isDirectory(outcome.directory) else {
            progress("no live patches are installed for \(release) (no \(outcome.directory))")
            return outcome
        }
        let lock = try store.lock(system, action: "load --all", say: progress)
        defer { lock.release() }
        let entries = store.entries(release)
        if entries.isEmpty { progress("no live patches are installed for \(release)") }
        let cumulative = Self.lastCumulative(entries)
        if entries.contains(where: \.isIntact) {
            try requireSupport()
            try requireRoot("loading the installed live patches")
        }
        for (index, entry) in entries.enumerated() {
            let result = loadInstalled(
                entry, supersededBy: cumulative.flatMap { index < $0 ? entries[$0].name : nil },
                timeout: timeout)
            switch result.status {
            case .failed: progress("\(entry.name): failed: \(result.error?.description ?? "")")
            case .superseded:
                progress("\(entry.name): skipped; \(entries[cumulative ?? index].name), installed later, replaces it")
            case .alreadyLoaded: progress("\(entry.name): loaded already")
            case .loaded: break
            }
            outcome.results.append(result)
        }
        return outcome
    }

    /// The index of the last intact cumulative (`replace`) patch: loading
    /// it replaces every patch before it.
    static func lastCumulative(_ entries: [StoreEntry]) -> Int? {
        entries.lastIndex { $0.isIntact && $0.patch?.replace == true }
    }

    private func loadInstalled(_ entry: StoreEntry, supersededBy later: String?, timeout: Double) -> LoadAllResult {
        var result = LoadAllResult(name: entry.name, status: .failed)
        guard let module = entry.module, entry.isIntact else {
            let source = entry.patch.map { "`suture install \($0.source)` again or " } ?? ""
            result.error = LivepatchError(
                .corruptStore,
                "\(entry.name) is damaged in the store: \(entry.problem ?? "its record is missing"); \(source)`suture uninstall \(entry.name)`"
            )
            return result
        }
        if let loaded = sysfs.modules().first(where: { $0.name == entry.name }) {
            guard sysfs.patch(entry.name) != nil else {
                if later != nil {
                    result.status = .superseded
                } else {
                    result.error = LivepatchError(
                        .alreadyLoaded,
                        "\(entry.name) is loaded, but its patch is disabled or replaced; `suture unload \(entry.name)` first to load it again"
                    )
                }
                return result
            }
            if loadedBuild(loaded, of: entry) == false {
                let from = LoadRecord.read(tree, for: loaded)?.file
                result.error = LivepatchError(
                    .alreadyLoaded,
                    "another build of \(entry.name) is loaded\(from.map { " (from \($0))" } ?? ""); `suture unload \(entry.name)` first to load the installed one"
                )
                return result
            }
            result.status = .alreadyLoaded
            return result
        }
        if later != nil {
            result.status = .superseded
            return result
        }
        do {
            let loaded = try load(module, timeout: timeout)
            result.status = .loaded
            result.seconds = loaded.seconds
        } catch {
            result.error = error
        }
        return result
    }

    /// Whether the loaded module is the installed one: true or false when
    /// Suture loaded it and its file can tell, nil otherwise.
    func loadedBuild(_ loaded: LoadedModule, of entry: StoreEntry) -> Bool? {
        guard let record = LoadRecord.read(tree, for: loaded), let patch = entry.patch else { return nil }
        if record.file == entry.module, FileIdentity(path: record.file) == record.identity {
            // Loaded from the store file as it is now, whose digest the
            // entry's check compared with the record.
            return entry.problem == nil
        }
        return record.fileDigestIfUnchanged().map { $0 == patch.sha256 }
    }
}
