// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Livepatch
import Platform
import Testing

/// Module files and store files are hostile input to `load`, `install` and
/// `list --installed`, which run as root.
@Suite(.timeLimit(.minutes(1))) struct HostileInputTests {
    let kernel: FakeKernel
    let files: TemporaryDirectory
    let store: PatchStore
    let log = ProgressLog()
    let release = SyntheticModule.release

    init() throws {
        kernel = try FakeKernel()
        files = try TemporaryDirectory(prefix: "suture-hostile-test")
        store = PatchStore(root: Path.join(files.path, "store"))
        kernel.start()
    }

    func manager() -> LivepatchManager {
        LivepatchManager(kernel.system(uid: 0), progress: log.sink)
    }

    /// The module is checked and then loaded: a file rewritten in between
    /// (here at the last moment, inside `finit_module`) must not be what the
    /// kernel gets. The bytes checked are the bytes loaded.
    @Test(arguments: ["load", "install"]) func swappedModuleIsNotLoaded(_ command: String) throws {
        let path = try SyntheticModule.write("livepatch_good", in: files.path)
        let checked = try FileSystem.read(path)
        let evil = try SyntheticModule.bytes([
            ("name", "livepatch_evil"), ("livepatch", "Y"),
            ("vermagic", "\(release) SMP preempt mod_unload modversions "),
        ])
        kernel.beforeLoad = {
            // In place, same inode, as an attacker who owns the file would.
            try? FileSystem.write(path, evil)
        }
        if command == "load" {
            _ = try manager().load(path)
        } else {
            _ = try manager().install(path, store: store)
            // The store keeps the checked bytes too.
            #expect(try FileSystem.read(Path.join(store.directory(release), "livepatch_good.ko")) == checked)
        }
        #expect(kernel.loads.map(\.name) == ["livepatch_good"])
        #expect(kernel.loads.first?.image == checked, "the kernel got other bytes than were checked")
    }

    /// A FIFO used to hang `install` (and `load`) forever.
    @Test func fifoIsRefusedAtOnce() throws {
        let fifo = Path.join(files.path, "livepatch-fifo.ko")
        try #require(mkfifo(fifo, 0o600) == 0)
        #expect(refusal { _ = try manager().install(fifo, store: store) } == .notModule)
        #expect(refusal { _ = try manager().load(fifo) } == .notModule)
        #expect(kernel.loads.isEmpty)
    }

    /// A store record that is a symbolic link to /dev/zero used to abort
    /// `list --installed` (and the boot unit's `load --all`) on allocation.
    @Test func recordLinkedToADeviceIsADamagedEntry() throws {
        try FileSystem.makeDirectories(store.directory(release))
        try FileSystem.symlink(target: "/dev/zero", at: Path.join(store.directory(release), "livepatch_zero.json"))
        let fifo = Path.join(store.directory(release), "livepatch_fifo.json")
        try #require(mkfifo(fifo, 0o600) == 0)
        let entries = store.entries(release)
        #expect(entries.map(\.name).sorted() == ["livepatch_fifo", "livepatch_zero"])
        #expect(
            entries.allSatisfy { $0.patch == nil && $0.problem?.contains("cannot read the record") == true },
            "\(entries.map(\.problem))")
    }

    /// A record with `sequence` at its maximum used to crash `install` with
    /// an overflow and leave the staged module behind.
    @Test func sequenceAtItsMaximumIsRefused() throws {
        let first = try SyntheticModule.write("livepatch_one", in: files.path)
        _ = try manager().install(first, store: store)
        let record = Path.join(store.directory(release), "livepatch_one.json")
        let text = try FileSystem.readText(record)
        let maxed = text.replacingOccurrences(of: "\"sequence\": 1,", with: "\"sequence\": \(Int.max),")
            .replacingOccurrences(of: "\"sequence\":1,", with: "\"sequence\":\(Int.max),")
        try #require(maxed != text, "no sequence in \(text)")
        try FileSystem.write(record, maxed)
        #expect(store.entries(release).first?.patch?.sequence == Int.max)

        let second = try SyntheticModule.write("livepatch_two", in: files.path)
        let error = #expect(throws: LivepatchError.self) { _ = try manager().install(second, store: store) }
        #expect(error?.kind == .store)
        #expect(error?.description.contains("sequence") == true)
        #expect(!FileSystem.exists(Path.join(store.directory(release), ".staging")), "a staged file was left behind")
        #expect(!kernel.moduleNames.contains("livepatch_two"))
    }
}
