// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// Where installed live patches wait for the next boot: one folder per
/// kernel release, with each patch's module and a record beside it.
///
///     /var/lib/suture/6.1.0-57-amd64/livepatch_fix.ko
///     /var/lib/suture/6.1.0-57-amd64/livepatch_fix.json
///
/// Every patch has files of its own, so a damaged one never hides the
/// others. Writers hold the store's lock (`.lock` in the root), taken before
/// the kernel lock when both are needed. Readers need no lock: each file
/// is written under a hidden name, flushed with `fsync` and renamed into
/// place, so a reader or a power cut sees the old file or the new one.
public struct PatchStore: Sendable, Equatable {
    /// `/var/lib/suture`.
    public static let defaultRoot = "/var/lib/suture"
    /// The environment variable that moves the store, for tests and
    /// staging trees.
    public static let rootVariable = "SUTURE_STORE"

    public let root: String

    public init(root: String = PatchStore.defaultRoot) {
        self.root = root
    }

    /// `$SUTURE_STORE` when set, else `/var/lib/suture`.
    public static func configured() -> PatchStore {
        if let given = FileSystem.environment(rootVariable), !given.isEmpty {
            return PatchStore(root: Path.absolute(given))
        }
        return PatchStore()
    }

    /// The folder of one kernel release.
    public func directory(_ release: String) -> String { Path.join(root, release) }

    /// The lock file of writers.
    public var lockPath: String { Path.join(root, ".lock") }

    /// Releases with a folder in the store, sorted.
    public func releases() -> [String] {
        KernelFiles.list(root).filter { !$0.hasPrefix(".") && FileSystem.isDirectory(directory($0)) }
    }

    /// The file names of a patch's record and module.
    static func recordName(_ name: String) -> String { name + ".json" }

    /// `NAME.ko`, keeping the compression suffix of the installed file.
    static func moduleName(_ name: String, from source: String) -> String {
        let base = Path.base(of: source)
        for suffix in [".ko.xz", ".ko.zst", ".ko.gz"] where base.hasSuffix(suffix) { return name + suffix }
        return name + ".ko"
    }

    // MARK: - Checks

    /// A release string usable as a folder name: what `uname -r` prints.
    static func requireValidRelease(_ release: String) throws(LivepatchError) {
        guard !release.isEmpty, !release.hasPrefix("."), !release.contains("/"),
            release.allSatisfy({ $0.isASCII && !$0.isWhitespace })
        else {
            throw LivepatchError(.store, "\"\(release)\" is not a kernel release (expected what `uname -r` prints)")
        }
    }

    /// A module name usable as a file name. The kernel's own names are
    /// letters, digits and `_`; a file whose modinfo says otherwise was
    /// not made by kbuild.
    static func requireValidName(_ name: String, in file: String) throws(LivepatchError) {
        guard !name.isEmpty, name.count <= 55,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
        else {
            throw LivepatchError(
                .notModule,
                "\(file): the module name \"\(name)\" is not a kernel module name (letters, digits and _, at most 55 characters)"
            )
        }
    }

    // MARK: - Reading

    /// The patches installed for `release`, in install order; damaged
    /// entries (unreadable record, missing or altered module, module without
    /// record) come with their problem, those without a known place last.
    ///
    /// `verify` compares each module's SHA-256 with its record.
    public func entries(_ release: String, verify: Bool = true) -> [StoreEntry] {
        let folder = directory(release)
        let names = KernelFiles.list(folder).filter { !$0.hasPrefix(".") }
        var entries: [StoreEntry] = []
        var referenced: Set<String> = []
        for file in names where file.hasSuffix(".json") {
            let name = String(file.dropLast(5))
            var entry = StoreEntry(name: name, module: nil, patch: nil, problem: nil)
            let recordPath = Path.join(folder, file)
            switch Self.readRecord(recordPath) {
            case .failure(let problem):
                entry.problem = problem.message
                // Its module, if any, belongs to this broken entry.
                for candidate in names where candidate != file && ModuleName.normalized(candidate) == name {
                    referenced.insert(candidate)
                    entry.module = Path.join(folder, candidate)
                }
            case .success(let patch):
                entry.patch = patch
                entry.module = Path.join(folder, patch.moduleFile)
                referenced.insert(patch.moduleFile)
                entry.problem = Self.check(
                    patch, named: name, release: release, module: Path.join(folder, patch.moduleFile),
                    verify: verify)
            }
            entries.append(entry)
        }
        for file in names where !file.hasSuffix(".json") && !referenced.contains(file) {
            let path = Path.join(folder, file)
            guard FileSystem.kind(path) == .file else { continue }
            let name = ModuleName.normalized(file)
            entries.append(
                StoreEntry(
                    name: name, module: path, patch: nil,
                    problem:
                        "\(path) has no record \(Self.recordName(name)) beside it (an interrupted install?); `suture uninstall \(name)` removes it"
                ))
        }
        return entries.sorted { a, b in
            switch (a.patch?.sequence, b.patch?.sequence) {
            case (let x?, let y?): return (x, a.name) < (y, b.name)
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a.name < b.name
            }
        }
    }

    /// One entry by module name, without checking its digest.
    public func entry(_ name: String, release: String) -> StoreEntry? {
        entries(release, verify: false).first { $0.name == name }
    }

    static func readRecord(_ path: String) -> Result<InstalledPatch, StoreProblem> {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.read(path)
        } catch {
            return .failure(StoreProblem("cannot read the record \(path): \(error.description)"))
        }
        let json: JSON
        do {
            json = try JSON.parse(bytes)
        } catch {
            return .failure(StoreProblem("the record \(path) is not valid JSON: \(error.description)"))
        }
        do {
            return .success(try InstalledPatch(json: json))
        } catch {
            return .failure(StoreProblem("the record \(path) \(error.message)"))
        }
    }

    /// What is wrong with an entry whose record could be read, if anything.
    static func check(
        _ patch: InstalledPatch, named name: String, release: String, module: String,
        verify: Bool
    ) -> String? {
        guard patch.name == name else {
            return "the record \(recordName(name)) is for \(patch.name), not \(name)"
        }
        guard patch.release == release else {
            return "the record of \(name) is for kernel \(patch.release), but it sits in the folder of \(release)"
        }
        guard FileSystem.kind(module) == .file else {
            return "its module \(module) is missing"
        }
        guard verify else { return nil }
        let digest: String
        do {
            digest = try SHA256.hex(file: module)
        } catch {
            return "its module \(module) cannot be read: \(error.description)"
        }
        guard digest == patch.sha256 else {
            return "its module \(module) was altered: its SHA-256 is \(digest), but \(patch.sha256) was installed"
        }
        return nil
    }

    /// The next place in install order.
    func nextSequence(_ release: String) -> Int {
        (entries(release, verify: false).compactMap(\.patch?.sequence).max() ?? 0) + 1
    }

    // MARK: - Writing (under the lock)

    /// Takes the store's lock; see `KernelLock`.
    func lock(_ system: LivepatchSystem, action: String, say: @escaping (String) -> Void) throws(LivepatchError)
        -> KernelLock
    {
        do {
            try FileSystem.makeDirectories(root)
        } catch {
            throw LivepatchError(.store, errno: error.errno, "cannot create the patch store \(root)")
        }
        return try KernelLock(
            path: lockPath, activity: "changing the patch store", system: system, action: action, say: say)
    }

    /// Writes a module into the hidden `.staging` folder of the release,
    /// under its own file name, where it is loaded from before `commit`
    /// puts it in place.
    func stage(_ bytes: [UInt8], moduleFile: String, release: String) throws(LivepatchError) -> String {
        let folder = Path.join(directory(release), ".staging")
        let path = Path.join(folder, moduleFile)
        do {
            try FileSystem.makeDirectories(folder)
            try StoreFiles.writeDurably(path, bytes)
        } catch {
            throw LivepatchError(.store, errno: error.errno, "cannot write \(path): \(error.context)")
        }
        return path
    }

    /// Removes a staged module after a failed install.
    func discard(_ staged: String, release: String) {
        try? FileSystem.removeFile(staged)
        rmdir(Path.directory(of: staged))
        removeIfEmpty(release)
    }

    /// Moves a staged module to its name and its record beside it. The
    /// record is written (and flushed) in the staging folder first, so a
    /// failure to write it changes nothing. The two renames come after;
    /// should the second fail, both files go, as neither the earlier entry
    /// nor the new one would be whole. A crash between them leaves a module
    /// without record (or with the old one), which `entries` reports.
    func commit(staged: String, _ patch: InstalledPatch) throws(LivepatchError) -> StoreEntry {
        let folder = directory(patch.release)
        let module = Path.join(folder, patch.moduleFile)
        let record = Path.join(folder, Self.recordName(patch.name))
        let pending = Path.join(Path.directory(of: staged), Self.recordName(patch.name))
        do {
            try StoreFiles.writeDurably(pending, Array((patch.json.serialized(pretty: true) + "\n").utf8))
        } catch {
            throw LivepatchError(
                .store, errno: error.errno, "cannot write the record of \(patch.name) in \(folder): \(error.context)")
        }
        do {
            try FileSystem.rename(staged, module)
            try FileSystem.rename(pending, record)
            rmdir(Path.directory(of: staged))
            try StoreFiles.syncDirectory(folder)
        } catch {
            for path in [module, record, pending] { try? FileSystem.removeFile(path) }
            throw LivepatchError(
                .store, errno: error.errno, "cannot store \(patch.name) in \(folder): \(error.context)")
        }
        // A module file of an earlier install under another suffix.
        for file in KernelFiles.list(folder)
        where file != patch.moduleFile && !file.hasPrefix(".")
            && !file.hasSuffix(".json") && ModuleName.normalized(file) == patch.name
        {
            try? FileSystem.removeFile(Path.join(folder, file))
        }
        return StoreEntry(name: patch.name, module: module, patch: patch, problem: nil)
    }

    /// Deletes an entry's files, the record first, and the release's folder
    /// once it is empty.
    func remove(_ entry: StoreEntry, release: String) throws(LivepatchError) {
        let folder = directory(release)
        var files = [Path.join(folder, Self.recordName(entry.name))]
        if let module = entry.module { files.append(module) }
        for path in files where FileSystem.kind(path) != .missing {
            do {
                try FileSystem.removeFile(path)
            } catch {
                throw LivepatchError(.store, errno: error.errno, "cannot remove \(path)")
            }
        }
        try? StoreFiles.syncDirectory(folder)
        removeIfEmpty(release)
    }

    private func removeIfEmpty(_ release: String) {
        let folder = directory(release)
        if KernelFiles.list(folder).isEmpty { rmdir(folder) }
    }
}
