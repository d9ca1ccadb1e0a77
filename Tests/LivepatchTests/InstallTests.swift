// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Livepatch
import Platform
import Testing

/// install, uninstall, load --all and list --installed against the fake
/// kernel and a store in a temporary folder.
@Suite struct InstallTests {
    let kernel: FakeKernel
    let files: TemporaryDirectory
    let store: PatchStore
    let log = ProgressLog()
    let release = SyntheticModule.release

    init() throws {
        kernel = try FakeKernel()
        files = try TemporaryDirectory(prefix: "suture-install-test")
        store = PatchStore(root: Path.join(files.path, "store"))
        kernel.start()
    }

    func manager(uid: UInt32 = 0) -> LivepatchManager {
        LivepatchManager(kernel.system(uid: uid), progress: log.sink)
    }

    func module(
        _ name: String, release: String = SyntheticModule.release, replace: Bool? = false,
        extra: String? = nil, fileName: String? = nil
    ) throws -> String {
        var info = SyntheticModule.livepatch(name, release: release, replace: replace)
        if let extra { info.append(("description", extra)) }
        let path = Path.join(files.path, fileName ?? name.replacingOccurrences(of: "_", with: "-") + ".ko")
        try FileSystem.write(path, SyntheticModule.bytes(info))
        return path
    }

    var folder: String { store.directory(release) }

    func storeFiles() -> [String] { Files.list(folder) }

    // MARK: - install

    @Test func installLoadsAndKeepsTheModuleWithItsRecord() throws {
        let path = try module("livepatch_one")
        let outcome = try manager().install(path, store: store)
        #expect(outcome.load == .loaded)
        #expect(outcome.previous == nil)
        #expect(kernel.patchNames == ["livepatch_one"])
        #expect(storeFiles() == ["livepatch_one.json", "livepatch_one.ko"])

        let patch = try #require(outcome.entry.patch)
        #expect(outcome.entry.module == Path.join(folder, "livepatch_one.ko"))
        #expect(patch.sha256 == (try SHA256.hex(file: path)))
        #expect(patch.source == path)
        #expect(patch.sequence == 1)
        #expect(patch.release == release)
        #expect(patch.size == (try FileSystem.read(path)).count)
        #expect(patch.replace == false)
        #expect(try FileSystem.read(Path.join(folder, "livepatch_one.ko")) == FileSystem.read(path))
        // What the kernel loaded is the stored copy, and the load record says so.
        #expect(kernel.loads.map(\.image) == [try FileSystem.read(path)])
        let loaded = try #require(LivepatchSysfs(tree: kernel.tree).modules().first)
        #expect(LoadRecord.read(kernel.tree, for: loaded)?.file == outcome.entry.module)
        #expect(store.entries(release) == [outcome.entry])
    }

    @Test func aFailedLoadStoresNothing() throws {
        kernel.loadFailure = (.invalidArgument, ["livepatch: nope"])
        let error = #expect(throws: LivepatchError.self) {
            try manager().install(try module("livepatch_one"), store: store)
        }
        #expect(error?.kind == .loadFailed)
        #expect(!FileSystem.exists(folder), "left behind: \(storeFiles())")
    }

    @Test func aStoreThatCannotBeWrittenUndoesTheLoad() throws {
        // The record's place in the staging folder is taken by a folder.
        try FileSystem.makeDirectories(Path.join(folder, ".staging/livepatch_one.json"))
        let error = #expect(throws: LivepatchError.self) {
            try manager().install(try module("livepatch_one"), store: store)
        }
        #expect(error?.kind == .store)
        #expect(
            error?.description.hasSuffix("; livepatch_one was unloaded again") == true, "\(error?.description ?? "")")
        #expect(kernel.loads.count == 1)
        #expect(kernel.patchNames.isEmpty)
        #expect(store.entries(release).isEmpty)
        #expect(storeFiles() == [".staging"])
    }

    @Test func anotherReleaseIsCheckedButNotLoaded() throws {
        let path = try module("livepatch_next", release: "6.1.0-99-amd64")
        // Neither root nor live patching is needed to stage a patch for another kernel.
        try FileSystem.removeTree(kernel.tree.livepatch)
        let outcome = try manager(uid: 65534).install(path, release: "6.1.0-99-amd64", store: store)
        #expect(outcome.load == .notRunning)
        #expect(kernel.loads.isEmpty)
        #expect(Files.list(store.directory("6.1.0-99-amd64")) == ["livepatch_next.json", "livepatch_next.ko"])
        #expect(store.releases() == ["6.1.0-99-amd64"])

        let wrong = #expect(throws: LivepatchError.self) {
            try manager().install(path, release: "6.1.0-98-amd64", store: store)
        }
        #expect(wrong?.kind == .vermagic)
        #expect(wrong?.description.contains("but the target kernel is 6.1.0-98-amd64") == true)
    }

    @Test func refusalsLeaveTheStoreAlone() throws {
        let other = try module("livepatch_other", release: "6.1.0-99-amd64")
        let vermagic = #expect(throws: LivepatchError.self) { try manager().install(other, store: store) }
        #expect(vermagic?.kind == .vermagic)
        #expect(
            vermagic?.description.hasSuffix(
                "the running kernel is \(release); to install it for kernel 6.1.0-99-amd64, which loads it at its boot, add --kernel 6.1.0-99-amd64"
            ) == true)

        let ordinary = Path.join(files.path, "ordinary.ko")
        try FileSystem.write(ordinary, SyntheticModule.bytes([("name", "ordinary"), ("vermagic", "\(release) SMP ")]))
        #expect(refusal { try manager().install(ordinary, store: store) } == .notLivepatch)

        let evil = Path.join(files.path, "evil.ko")
        try FileSystem.write(evil, SyntheticModule.bytes(SyntheticModule.livepatch("../evil")))
        let name = #expect(throws: LivepatchError.self) { try manager().install(evil, store: store) }
        #expect(name?.kind == .notModule)
        #expect(name?.description.contains("\"../evil\" is not a kernel module name") == true)

        #expect(refusal { try manager(uid: 65534).install(try module("livepatch_one"), store: store) } == .notRoot)
        #expect(refusal { try manager().install(Path.join(files.path, "missing.ko"), store: store) } == .missingFile)
        #expect(refusal { try manager().install(try module("livepatch_one"), release: "../x", store: store) } == .store)
        #expect(kernel.loads.isEmpty)
        #expect(!FileSystem.exists(store.root), "the store was created")
    }

    @Test func installingWhatIsLoadedKeepsItLoaded() throws {
        let path = try module("livepatch_one")
        _ = try manager().load(path)
        let outcome = try manager().install(path, store: store)
        #expect(outcome.load == .alreadyLoaded)
        #expect(kernel.loads.count == 1)
        #expect(log.text.contains("livepatch_one is loaded already: the same module"))
        // The load record now names the stored copy.
        let loaded = try #require(LivepatchSysfs(tree: kernel.tree).modules().first)
        #expect(LoadRecord.read(kernel.tree, for: loaded)?.file == outcome.entry.module)
        #expect(try manager().installed(store: store).installed.map(\.state) == [.loaded])
    }

    @Test func anotherBuildUnderTheSameNameIsRefused() throws {
        _ = try manager().load(try module("livepatch_one"))
        let rebuilt = try module("livepatch_one", extra: "rebuilt", fileName: "rebuilt.ko")
        let error = #expect(throws: LivepatchError.self) { try manager().install(rebuilt, store: store) }
        #expect(error?.kind == .alreadyLoaded)
        #expect(error?.description.contains("another build of livepatch_one is loaded") == true)

        kernel.addModule("livepatch_insmod", livepatch: true)
        kernel.addPatch("livepatch_byhand")
        let unknown = #expect(throws: LivepatchError.self) {
            try manager().install(try module("livepatch_byhand"), store: store)
        }
        #expect(unknown?.description.contains("cannot be told (it was not loaded by suture") == true)
        let gone = #expect(throws: LivepatchError.self) {
            try manager().install(try module("livepatch_insmod"), store: store)
        }
        #expect(gone?.description.contains("whose patch is disabled or replaced") == true)
        #expect(!FileSystem.exists(folder))
    }

    @Test func reinstallingReplacesTheCopyAndMovesItLast() throws {
        _ = try manager().install(try module("livepatch_a"), store: store)
        _ = try manager().install(try module("livepatch_b"), store: store)
        _ = try manager().unloadAll()
        let again = try manager().install(try module("livepatch_a", extra: "v2"), store: store)
        #expect(again.previous?.sequence == 1)
        #expect(again.entry.patch?.sequence == 3)
        #expect(store.entries(release).map(\.name) == ["livepatch_b", "livepatch_a"])
        #expect(
            try FileSystem.read(try #require(again.entry.module))
                == FileSystem.read(Path.join(files.path, "livepatch-a.ko")))
        #expect(storeFiles() == ["livepatch_a.json", "livepatch_a.ko", "livepatch_b.json", "livepatch_b.ko"])
    }

    @Test func installHoldsTheStoreLock() throws {
        let holder = try FileLock(path: store.lockPath, timeout: 1)
        try FileSystem.write(store.lockPath + ".owner", "pid 1: install livepatch_x\n")
        let error = #expect(throws: LivepatchError.self) {
            try manager().install(try module("livepatch_one"), store: store)
        }
        #expect(error?.kind == .locked)
        #expect(error?.description.contains("(pid 1: install livepatch_x) held \(store.lockPath)") == true)
        #expect(log.text.contains("is changing the patch store; waiting"))
        holder.unlock()
        _ = try manager().install(try module("livepatch_one"), store: store)
    }

    // MARK: - uninstall

    @Test func uninstallLeavesTheKernelAlone() throws {
        _ = try manager().install(try module("livepatch_one"), store: store)
        let outcome = try manager().uninstall("livepatch-one.ko", store: store)
        #expect(outcome.entry.name == "livepatch_one")
        #expect(outcome.stillLoaded)
        #expect(kernel.patchNames == ["livepatch_one"])
        #expect(kernel.removals.isEmpty)
        #expect(!FileSystem.exists(folder), "the empty release folder stays: \(storeFiles())")

        let again = #expect(throws: LivepatchError.self) { try manager().uninstall("livepatch_one", store: store) }
        #expect(again?.kind == .notInstalled)
        #expect(
            again?.description
                == "livepatch_one is not installed for kernel \(release) (\(folder)); nothing is installed for it")
    }

    @Test func uninstallRemovesDamagedEntries() throws {
        _ = try manager().install(try module("livepatch_one"), store: store)
        _ = try manager().install(try module("livepatch_two"), store: store)
        try FileSystem.write(Path.join(folder, "livepatch_one.json"), "{ not json")
        try FileSystem.write(Path.join(folder, "livepatch_orphan.ko"), "x")
        _ = try manager().uninstall("livepatch_one", store: store)
        _ = try manager().uninstall("livepatch_orphan", store: store)
        #expect(storeFiles() == ["livepatch_two.json", "livepatch_two.ko"])
        let error = #expect(throws: LivepatchError.self) { try manager().uninstall("livepatch_three", store: store) }
        #expect(error?.description.hasSuffix("installed: livepatch_two") == true)
    }

    // MARK: - load --all

    @Test func loadAllLoadsInInstallOrderAndIsIdempotent() throws {
        for name in ["livepatch_c", "livepatch_a", "livepatch_b"] {
            _ = try manager().install(try module(name), store: store)
        }
        #expect(try manager().unloadAll().count == 3)
        let outcome = try manager().loadAll(store: store)
        #expect(outcome.results.map(\.name) == ["livepatch_c", "livepatch_a", "livepatch_b"])
        #expect(outcome.results.allSatisfy { $0.status == .loaded && $0.seconds != nil })
        #expect(outcome.failed.isEmpty)
        #expect(kernel.patchNames == ["livepatch_c", "livepatch_a", "livepatch_b"])
        #expect(try manager().list().map(\.name) == ["livepatch_c", "livepatch_a", "livepatch_b"])

        let again = try manager().loadAll(store: store)
        #expect(again.results.map(\.status) == [.alreadyLoaded, .alreadyLoaded, .alreadyLoaded])
        #expect(kernel.loads.count == 6)
    }

    @Test func damagedEntriesAreReportedAndTheOthersLoad() throws {
        for name in ["livepatch_a", "livepatch_b", "livepatch_c", "livepatch_d"] {
            _ = try manager().install(try module(name), store: store)
        }
        _ = try manager().unloadAll()
        let a = Path.join(folder, "livepatch_a.ko")
        try FileSystem.write(a, try FileSystem.read(a) + [0])  // altered module
        try FileSystem.write(Path.join(folder, "livepatch_b.json"), "{\"format\": 1")  // broken record
        try FileSystem.removeFile(Path.join(folder, "livepatch_c.ko"))  // missing module
        try FileSystem.write(Path.join(folder, "livepatch_e.ko"), "stray")  // module without record

        let outcome = try manager().loadAll(store: store)
        let byName = Dictionary(uniqueKeysWithValues: outcome.results.map { ($0.name, $0) })
        #expect(
            outcome.results.map(\.name) == ["livepatch_a", "livepatch_c", "livepatch_d", "livepatch_b", "livepatch_e"])
        #expect(byName["livepatch_d"]?.status == .loaded)
        #expect(outcome.failed.map(\.name).sorted() == ["livepatch_a", "livepatch_b", "livepatch_c", "livepatch_e"])
        #expect(outcome.failed.allSatisfy { $0.error?.kind == .corruptStore })
        #expect(byName["livepatch_a"]?.error?.description.contains("was altered: its SHA-256 is") == true)
        #expect(
            byName["livepatch_a"]?.error?.description.hasSuffix(
                "; `suture install \(Path.join(files.path, "livepatch-a.ko"))` again or `suture uninstall livepatch_a`")
                == true)
        #expect(
            byName["livepatch_b"]?.error?.description.hasSuffix(
                "livepatch_b.json is not valid JSON: invalid JSON at byte 12: unterminated object; `suture uninstall livepatch_b`"
            ) == true,
            "\(byName["livepatch_b"]?.error?.description ?? "")")
        #expect(byName["livepatch_b"]?.error?.description.contains("livepatch_b.json is not valid JSON") == true)
        #expect(byName["livepatch_c"]?.error?.description.contains("livepatch_c.ko is missing") == true)
        #expect(byName["livepatch_e"]?.error?.description.contains("has no record livepatch_e.json beside it") == true)
        #expect(kernel.patchNames == ["livepatch_d"])
        #expect(log.text.contains("livepatch_a: failed: livepatch_a is damaged in the store"))
    }

    @Test func aLaterCumulativePatchSupersedesTheEarlierOnes() throws {
        _ = try manager().install(try module("livepatch_one"), store: store)
        _ = try manager().install(try module("livepatch_all", replace: true), store: store)
        _ = try manager().install(try module("livepatch_extra"), store: store)
        #expect(kernel.patchNames == ["livepatch_all", "livepatch_extra"])
        _ = try manager().unloadAll()

        let outcome = try manager().loadAll(store: store)
        #expect(outcome.results.map(\.status) == [.superseded, .loaded, .loaded])
        #expect(kernel.patchNames == ["livepatch_all", "livepatch_extra"])
        #expect(log.text.contains("livepatch_one: skipped; livepatch_all, installed later, replaces it"))
        let report = try manager().installed(store: store)
        #expect(report.installed.map(\.state) == [.superseded, .loaded, .loaded])
        #expect(report.notLoaded.isEmpty)
    }

    @Test func loadAllWithNothingInstalledTouchesNothing() throws {
        let outcome = try manager(uid: 65534).loadAll(store: store)
        #expect(outcome.results.isEmpty)
        #expect(!FileSystem.exists(store.root))
        #expect(log.text.contains("no live patches are installed for \(release)"))
    }

    @Test func loadAllNeedsRootAndLivePatchingOnlyWithSomethingToLoad() throws {
        _ = try manager().install(try module("livepatch_one"), store: store)
        _ = try manager().unloadAll()
        #expect(refusal { try manager(uid: 65534).loadAll(store: store) } == .notRoot)
        try FileSystem.removeTree(kernel.tree.livepatch)
        #expect(refusal { try manager().loadAll(store: store) } == .unsupported)
    }

    // MARK: - list --installed

    @Test func installedSetsTheStoreNextToTheKernel() throws {
        _ = try manager().install(try module("livepatch_a"), store: store)
        _ = try manager().install(try module("livepatch_b"), store: store)
        _ = try manager().install(try module("livepatch_c"), store: store)
        _ = try manager().unload("livepatch_b")
        _ = try manager().load(try module("livepatch_extra"))
        _ = try manager().unload("livepatch_c")
        _ = try manager().load(try module("livepatch_c", extra: "rebuilt"))
        let a = Path.join(folder, "livepatch_a.ko")
        try FileSystem.write(a, try FileSystem.read(a) + [0])

        let report = try manager().installed(store: store)
        #expect(report.running)
        #expect(report.installed.map(\.entry.name) == ["livepatch_a", "livepatch_b", "livepatch_c"])
        #expect(report.installed.map(\.state) == [.corrupt, .notLoaded, .otherBuildLoaded])
        #expect(report.installed.map(\.isFlagged) == [true, true, true])
        #expect(report.installed[2].loadedFrom == Path.join(files.path, "livepatch-c.ko"))
        #expect(report.notLoaded == ["livepatch_b"])
        #expect(report.notInstalled == ["livepatch_extra"])
        #expect(
            report.json.objectValue?.map(\.0) == [
                "release", "running", "directory", "installed", "notLoaded", "notInstalled",
            ])

        let elsewhere = try manager().installed(store: store, release: "6.1.0-99-amd64")
        #expect(!elsewhere.running && elsewhere.installed.isEmpty && elsewhere.notInstalled.isEmpty)
    }

    @Test func anotherReleaseIsShownWithoutTheKernel() throws {
        _ = try manager().install(
            try module("livepatch_next", release: "6.1.0-99-amd64"), release: "6.1.0-99-amd64", store: store)
        _ = try manager().load(try module("livepatch_now"))
        let report = try manager().installed(store: store, release: "6.1.0-99-amd64")
        #expect(report.installed.map(\.state) == [.notRunning])
        #expect(report.notInstalled.isEmpty)
        #expect(!report.installed[0].isFlagged)
    }
}
