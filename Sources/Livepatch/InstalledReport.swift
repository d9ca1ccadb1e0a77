// SPDX-License-Identifier: GPL-2.0-only
import Platform

// `suture list --installed`: the store of one release next to the kernel.

/// How an installed patch stands against the running kernel.
public enum InstalledState: String, Sendable {
    /// Loaded, and its patch applied.
    case loaded
    /// A module of that name is loaded, but it is another build.
    case otherBuildLoaded
    /// Installed for the running kernel but not loaded.
    case notLoaded
    /// Not loaded, because a cumulative patch installed later replaces it.
    case superseded
    /// The store entry is damaged; see its problem.
    case corrupt
    /// Installed for a kernel release that is not running.
    case notRunning
}

/// One installed patch next to what is loaded.
public struct InstalledStatus: Sendable {
    public var entry: StoreEntry
    public var state: InstalledState
    /// The file the loaded module came from, when Suture loaded it.
    public var loadedFrom: String?

    public init(entry: StoreEntry, state: InstalledState, loadedFrom: String?) {
        self.entry = entry
        self.state = state
        self.loadedFrom = loadedFrom
    }

    /// Whether this state needs attention: not loaded, another build, damaged.
    public var isFlagged: Bool { [.notLoaded, .otherBuildLoaded, .corrupt].contains(state) }

    public var json: JSON {
        var fields = entry.json.objectValue ?? []
        fields.append(("state", .string(state.rawValue)))
        fields.append(("loadedFrom", .optional(loadedFrom)))
        return .object(fields)
    }
}

/// The store of one release next to the running kernel's livepatch modules.
public struct InstalledReport: Sendable {
    public var release: String
    public var running: Bool
    public var directory: String
    /// Installed patches in install order.
    public var installed: [InstalledStatus]
    /// Livepatch modules loaded in the running kernel that are not installed
    /// for it, in stack order; empty for another release.
    public var notInstalled: [String]

    public init(release: String, running: Bool, directory: String, installed: [InstalledStatus], notInstalled: [String])
    {
        self.release = release
        self.running = running
        self.directory = directory
        self.installed = installed
        self.notInstalled = notInstalled
    }

    /// Installed for the running kernel but not loaded.
    public var notLoaded: [String] { installed.filter { $0.state == .notLoaded }.map(\.entry.name) }

    public var json: JSON {
        .object([
            ("release", .string(release)),
            ("running", .bool(running)),
            ("directory", .string(directory)),
            ("installed", .array(installed.map(\.json))),
            ("notLoaded", .strings(notLoaded)),
            ("notInstalled", .strings(notInstalled)),
        ])
    }
}

extension LivepatchManager {
    /// The patches installed for `release` (default: the running kernel)
    /// next to the livepatch modules loaded now.
    public func installed(store: PatchStore, release: String? = nil) throws(LivepatchError) -> InstalledReport {
        let running = runningRelease
        let target = release ?? running
        try PatchStore.requireValidRelease(target)
        let isRunning = target == running
        let entries = store.entries(target)
        // Without live patching no livepatch module can be loaded.
        let patches = isRunning && sysfs.isSupported ? sysfs.patches() : []
        let modules = isRunning ? sysfs.modules() : []
        let cumulative = Self.lastCumulative(entries)
        let installed = entries.enumerated().map { index, entry -> InstalledStatus in
            var status = InstalledStatus(entry: entry, state: .notRunning, loadedFrom: nil)
            guard entry.problem == nil else {
                status.state = .corrupt
                return status
            }
            guard isRunning else { return status }
            guard let loaded = modules.first(where: { $0.name == entry.name }),
                patches.contains(where: { $0.name == entry.name && $0.present })
            else {
                status.state = (cumulative.map { index < $0 } ?? false) ? .superseded : .notLoaded
                return status
            }
            status.loadedFrom = LoadRecord.read(tree, for: loaded)?.file
            status.state = loadedBuild(loaded, of: entry) == false ? .otherBuildLoaded : .loaded
            return status
        }
        let names = Set(entries.map(\.name))
        return InstalledReport(
            release: target, running: isRunning, directory: store.directory(target),
            installed: installed,
            notInstalled: patches.map(\.name).filter { !names.contains($0) })
    }
}
