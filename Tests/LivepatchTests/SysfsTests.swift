// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Livepatch
import Platform
import Testing

/// Reading patches and tasks from a fake tree: stack order, gone patches,
/// waiting objects, pending tasks with stacks, and files that vanish.
@Suite struct SysfsTests {
    static let busyStack = [
        "msleep+0x2d/0x40",
        "busymod_work_func+0x1d/0x40 [test_klp_callbacks_busy]",
        "process_one_work+0x1c7/0x380",
        "worker_thread+0x4d/0x380",
        "kthread+0xd7/0x100",
        "ret_from_fork+0x1f/0x30",
    ]

    static let demoObjects = [
        PatchObject(name: "vmlinux", patched: true, functions: []),
        PatchObject(
            name: "test_klp_callbacks_busy", patched: true,
            functions: [PatchFunction(name: "busymod_work_func", sympos: 1)]),
        PatchObject(name: "test_klp_callbacks_mod", patched: false, functions: []),
    ]

    /// Two patches, one gone module and a blocked transition, never moving.
    static func scene() throws -> FakeKernel {
        let kernel = try FakeKernel()
        kernel.addModule("test_klp_callbacks_busy", livepatch: false, references: 0)
        kernel.addPatch("test_klp_livepatch")
        kernel.addModule("replaced_earlier", livepatch: true)
        kernel.addPatch("test_klp_callbacks_demo", objects: demoObjects, transition: true)
        kernel.addTask(pid: 1, comm: "init", stack: ["do_wait+0x1/0x2"])
        kernel.addTask(pid: 34, comm: "kworker/0:2+events", stack: busyStack, blocks: [.patching])
        kernel.addTask(pid: 200, tid: 201, comm: "worker", stack: ["futex_wait+0x1/0x2"], blocks: [.patching])
        try LoadRecord(
            name: "test_klp_livepatch", file: "/root/test_klp_livepatch.ko",
            identity: FileIdentity(size: 1, modified: 2, device: 3, inode: 4), replace: false,
            loadedAt: "2026-01-01T00:00:00Z", moduleSize: 16384
        ).write(kernel.tree)
        return kernel
    }

    @Test func listInStackOrderWithGonePatchesAndPendingTasks() throws {
        let kernel = try Self.scene()
        let manager = LivepatchManager(kernel.system(), progress: { _ in })
        let patches = try manager.list()
        #expect(patches.map(\.name) == ["test_klp_livepatch", "replaced_earlier", "test_klp_callbacks_demo"])
        #expect(patches.map(\.state) == ["enabled", "gone", "patching"])
        #expect(patches[0].replace == false)
        #expect(patches[0].file == "/root/test_klp_livepatch.ko")
        #expect(patches[1].replace == nil)
        let demo = patches[2]
        #expect(demo.direction == .patching)
        #expect(demo.objects.map(\.name) == ["vmlinux", "test_klp_callbacks_busy", "test_klp_callbacks_mod"])
        #expect(demo.objects.last?.patched == false)
        #expect(demo.pendingTasks.map(\.comm) == ["kworker/0:2+events", "worker"])
        #expect(demo.pendingTasks.map(\.tid) == [34, 201])
        #expect(demo.pendingTasks[0].patchFunctions == ["busymod_work_func"])
        #expect(demo.pendingTasks[0].stack.count == 6)
        #expect(!demo.hiddenTasksPending)
        #expect(patches[0].pendingTasks.isEmpty)

        try Golden.check(LivepatchJSON.patches(patches).serialized(pretty: true) + "\n", "list.json")
        try Golden.check(LivepatchText.list(patches), "list.txt")
        try Golden.check(LivepatchText.status(patches), "status.txt")
    }

    @Test func aRecordOfAnEarlierLoadIsIgnored() throws {
        let kernel = try Self.scene()
        try LoadRecord(
            name: "test_klp_livepatch", file: "/root/old.ko",
            identity: FileIdentity(size: 1, modified: 2, device: 3, inode: 4), replace: true,
            loadedAt: "2025-01-01T00:00:00Z", moduleSize: 999
        ).write(kernel.tree)
        let patch = try LivepatchManager(kernel.system(), progress: { _ in }).status("test-klp-livepatch")
        #expect(patch.file == nil)
        #expect(patch.replace == nil)
    }

    @Test func statusOfOneAndOfUnknownNames() throws {
        let kernel = try Self.scene()
        let manager = LivepatchManager(kernel.system(), progress: { _ in })
        #expect(try manager.status("test-klp-callbacks-demo.ko").pendingTasks.count == 2)
        let missing = #expect(throws: LivepatchError.self) { try manager.status("nothing") }
        #expect(missing?.kind == .notLoaded)
        #expect(missing?.description == "no livepatch module nothing is loaded")
        let ordinary = #expect(throws: LivepatchError.self) { try manager.status("test_klp_callbacks_busy") }
        #expect(ordinary?.description == "test_klp_callbacks_busy is loaded but is not a livepatch module")
    }

    @Test func idleTasksAreNamedWhenNothingVisibleBlocks() throws {
        let kernel = try FakeKernel()
        kernel.addPatch("p", transition: true)
        kernel.addTask(pid: 1, comm: "init", stack: [])
        let patch = try LivepatchManager(kernel.system(), progress: { _ in }).status("p")
        #expect(patch.pendingTasks.isEmpty)
        #expect(patch.hiddenTasksPending)
        #expect(LivepatchText.status([patch]).contains("idle tasks (swapper/N)"))
    }

    @Test func pendingTasksAreForRootOnly() throws {
        let kernel = try Self.scene()
        let patch = try LivepatchManager(kernel.system(uid: 1000), progress: { _ in }).status("test_klp_callbacks_demo")
        #expect(patch.pendingTasks.isEmpty)
        #expect(!patch.hiddenTasksPending)
        #expect(LivepatchText.status([patch]).contains("pending tasks are shown to root only"))
    }

    @Test func noLivepatchSupport() throws {
        let kernel = try FakeKernel()
        try FileSystem.removeTree(kernel.tree.livepatch)
        let error = #expect(throws: LivepatchError.self) {
            try LivepatchManager(kernel.system(), progress: { _ in }).list()
        }
        #expect(error?.kind == .unsupported)
        #expect(error?.description.contains("6.1.0-57-amd64 has no live patching support") == true)
    }

    @Test func emptyList() throws {
        let kernel = try FakeKernel()
        let patches = try LivepatchManager(kernel.system(), progress: { _ in }).list()
        #expect(patches.isEmpty)
        #expect(LivepatchJSON.patches(patches).serialized() == #"{"patches":[]}"#)
        #expect(LivepatchText.list(patches) == "no live patches loaded\n")
    }

    // MARK: - Races

    /// Files that vanished between listing a folder and reading them: a
    /// task without `patch_state`, one without `comm`, a patch folder
    /// without `enabled`, an object without functions.
    @Test func vanishedFilesAreSkipped() throws {
        let kernel = try Self.scene()
        let tree = kernel.tree
        kernel.stop()
        try FileSystem.makeDirectories(Path.join(tree.proc, "77/task/77"))  // exited: nothing left
        try FileSystem.makeDirectories(Path.join(tree.proc, "78/task/78"))
        try FileSystem.write(Path.join(tree.proc, "78/task/78/patch_state"), "0\n")  // exited before comm
        try FileSystem.makeDirectories(Path.join(tree.livepatch, "half_freed/vmlinux"))  // no enabled
        try FileSystem.makeDirectories(Path.join(tree.proc, "self"))  // not a pid
        let manager = LivepatchManager(kernel.system(), progress: { _ in })
        let patches = try manager.list()
        #expect(!patches.contains { $0.name == "half_freed" })
        let demo = try #require(patches.first { $0.name == "test_klp_callbacks_demo" })
        #expect(demo.pendingTasks.map(\.pid) == [34, 200])
        // The scanner saw thread 78 pending, but it has no name any more.
        #expect(TaskScanner(tree: tree).pending(.patching).contains(TaskScanner.Thread(pid: 78, tid: 78)))
    }

    /// Tasks exit and a patch folder comes and goes while the tree is read
    /// many times over: reads never fail and never report half a patch.
    @Test func concurrentChurnNeverBreaksReading() async throws {
        let kernel = try Self.scene()
        let tree = kernel.tree
        let manager = LivepatchManager(kernel.system(), progress: { _ in })
        let stop = ProgressLog()
        let churn = Thread {
            var round = 0
            while stop.lines.isEmpty {
                round += 1
                let task = Path.join(tree.proc, "\(1000 + round % 7)")
                try? FileSystem.makeDirectories(Path.join(task, "task/\(1000 + round % 7)"))
                // procfs never shows a half-written file; a rename does the same.
                try? FileSystem.writeAtomically(
                    Path.join(task, "task/\(1000 + round % 7)/patch_state"), Array("0\n".utf8))
                try? FileSystem.writeAtomically(Path.join(task, "task/\(1000 + round % 7)/comm"), Array("churn\n".utf8))
                try? FileSystem.removeTree(Path.join(tree.proc, "\(1000 + (round + 3) % 7)"))
                let patch = tree.patch("flicker")
                if round % 2 == 0 {
                    try? FileSystem.makeDirectories(Path.join(patch, "vmlinux/meminfo_proc_show,1"))
                    try? FileSystem.writeAtomically(Path.join(patch, "vmlinux/patched"), Array("1\n".utf8))
                    try? FileSystem.writeAtomically(Path.join(patch, "transition"), Array("0\n".utf8))
                    try? FileSystem.writeAtomically(Path.join(patch, "enabled"), Array("1\n".utf8))
                } else {
                    try? FileSystem.removeTree(patch)
                }
            }
        }
        churn.start()
        defer { stop.sink("stop") }
        for _ in 0..<300 {
            let patches = try manager.list()
            let demo = try #require(patches.first { $0.name == "test_klp_callbacks_demo" })
            #expect(demo.pendingTasks.allSatisfy { !$0.comm.isEmpty })
            if let flicker = patches.first(where: { $0.name == "flicker" }) {
                #expect(flicker.enabled && !flicker.transition)
            }
        }
    }
}
