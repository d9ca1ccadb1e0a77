// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import Synchronization
import Testing
import VM

/// Patches written for kpatch, built unchanged by `suture build` with its own
/// `kpatch-macros.h` and `kpatch-syscall.h`, and proven in one shared guest:
/// callbacks, shadow variables, a system call, an ignored function and a
/// header change.
@Suite(.serialized, .guest(modules: ["binfmt_misc", "loop", "vfat", "nls_cp437", "nls_ascii"]))
struct KpatchBuildTests {
    typealias Scenarios = BuildScenarioTests

    /// The `suture-callback:` lines logged since `mark` (a marker line
    /// written to the kernel log, so a full log buffer cannot shift it).
    static func callbackLines(_ guest: TestGuest, after mark: Int) throws -> [String] {
        let log = try guest.check("dmesg | sed -n '/suture-test-mark-\(mark)$/,$p' | sed -n 's/.*suture-callback: //p'")
        return log.split(separator: "\n").map(String.init)
    }

    static let marks = Mutex(0)

    static func mark(_ guest: TestGuest) throws -> Int {
        let n = marks.withLock { value in
            value += 1
            return value
        }
        try guest.check("echo suture-test-mark-\(n) > /dev/kmsg")
        return n
    }

    @Test func callbacksRunInOrderForVmlinuxAndALateModule() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Scenarios.build(["kpatch-callbacks"], as: "callbacks")
        let objects = report["objects"]?.arrayValue ?? []
        for object in objects {
            let callbacks = object["callbacks"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(
                callbacks == [
                    "pre_patch=suture_test_pre_patch", "post_patch=suture_test_post_patch",
                    "pre_unpatch=suture_test_pre_unpatch", "post_unpatch=suture_test_post_unpatch",
                ],
                "\(object["object"]?.stringValue ?? "?"): \(callbacks)")
        }
        #expect(try guest.check("grep -c '^binfmt_misc ' /proc/modules || true") == "0\n")

        var mark = try Self.mark(guest)
        try Scenarios.load(guest, path, "callbacks")
        #expect(try Self.callbackLines(guest, after: mark) == ["vmlinux pre_patch", "vmlinux post_patch"])
        #expect(try guest.check("cat /proc/loadavg").hasSuffix(" patched\n"))

        // The module comes after the patch: its callbacks run then.
        mark = try Self.mark(guest)
        try ModuleBuildTests.mountBinfmt(guest)
        #expect(try Self.callbackLines(guest, after: mark) == ["binfmt_misc pre_patch", "binfmt_misc post_patch"])
        #expect(try guest.check(ModuleBuildTests.binfmtStatus) == "enabled (patched)\n")
        mark = try Self.mark(guest)
        try ModuleBuildTests.removeBinfmt(guest)
        #expect(try Self.callbackLines(guest, after: mark) == ["binfmt_misc pre_unpatch", "binfmt_misc post_unpatch"])

        // And again, then the whole patch goes while the module is loaded.
        try ModuleBuildTests.mountBinfmt(guest)
        mark = try Self.mark(guest)
        try Scenarios.unload(guest, "callbacks")
        let unloadLines = try Self.callbackLines(guest, after: mark)
        #expect(
            unloadLines == [
                "binfmt_misc pre_unpatch", "vmlinux pre_unpatch", "binfmt_misc post_unpatch", "vmlinux post_unpatch",
            ],
            "\(unloadLines)")
        #expect(try guest.check(ModuleBuildTests.binfmtStatus) == "enabled\n")
        try ModuleBuildTests.removeBinfmt(guest)
    }

    @Test func shadowVariableOnNewTasksFreedOnUnload() throws {
        let guest = try TestGuest.current()
        let (path, _) = try Scenarios.build(["kpatch-shadow"], as: "shadow")
        try guest.check("sleep 1000 >/dev/null 2>&1 & echo $! > /tmp/old.pid")
        try Scenarios.load(guest, path, "shadow")
        try guest.check("sleep 1000 >/dev/null 2>&1 & echo $! > /tmp/new.pid")
        // A task created before the patch has no shadow variable; one after has.
        #expect(try guest.check("grep -c Suture_serial /proc/$(cat /tmp/old.pid)/status || true") == "0\n")
        let line = try guest.check("grep Suture_serial /proc/$(cat /tmp/new.pid)/status")
        #expect(line.hasPrefix("Suture_serial:\t"), "\(line)")
        #expect((Int(String(line.dropFirst("Suture_serial:\t".count)).trimmingWhitespace()) ?? 0) >= 1, "\(line)")
        let mark = try Self.mark(guest)
        try Scenarios.unload(guest, "shadow")
        #expect(try guest.check("grep -c Suture_serial /proc/$(cat /tmp/new.pid)/status || true") == "0\n")
        let freed = try guest.check(
            "dmesg | sed -n '/suture-test-mark-\(mark)$/,$p' | sed -n 's/.*suture-shadow: freed \\([0-9]*\\).*/\\1/p'")
        #expect(
            (Int(freed.trimmingWhitespace()) ?? 0) >= 1, "the unpatch callback freed no shadow variable: '\(freed)'")
        try guest.check("kill $(cat /tmp/old.pid) $(cat /tmp/new.pid)")
    }

    @Test func patchedSystemCall() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Scenarios.build(["kpatch-syscall"], as: "syscall")
        let changed = report["objects"]?[0]?["changed"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(changed.contains("__x64_sys_newuname"), "\(changed)")
        #expect(try guest.check("uname -s") == "Linux\n")
        try Scenarios.load(guest, path, "syscall")
        #expect(try guest.check("uname -s") == "Sutured\n")
        // The build's metadata shows in `suture list`.
        let list = try JSON.parse(try guest.check("suture list --json"))
        let patch = list["patches"]?.arrayValue?.first { $0["name"]?.stringValue == "livepatch_syscall" }
        #expect(patch?["builtFor"]?.stringValue == report["release"]?.stringValue)
        let digest = report["diffs"]?[0]?["sha256"]?.stringValue ?? "?"
        #expect(patch?["diffs"]?.arrayValue?.compactMap(\.stringValue) == ["patch.diff:sha256:\(digest)"], "\(list)")
        #expect(try guest.check("suture list").contains("diff: patch.diff:sha256:\(digest)"))
        try Scenarios.unload(guest, "syscall")
        #expect(try guest.check("uname -s") == "Linux\n")
    }

    @Test func ignoredFunctionStaysOutOfThePatch() throws {
        let guest = try TestGuest.current()
        let diff = "\(Scenarios.fixtures)/kpatch-ignore/patch.diff"
        let (path, report) = try Scenarios.build(diffs: [diff], as: "ignore")
        let object = try #require(report["objects"]?[0])
        #expect(object["changed"]?.arrayValue?.compactMap(\.stringValue) == ["proc_pid_status"])
        #expect(object["ignored"]?.arrayValue?.compactMap(\.stringValue) == ["do_task_stat"])

        // Without the macro, do_task_stat would be patched too.
        let text = try FileSystem.readText(diff)
        let hunk = try #require(text.range(of: "\n@@ -659"), "the fixture's last hunk moved")
        let dir = try TemporaryDirectory(prefix: "suture-ignore")
        defer { dir.remove() }
        let without = Path.join(dir.path, "without-ignore.diff")
        try FileSystem.write(without, String(text[..<hunk.lowerBound]) + "\n")
        let (_, plain) = try Scenarios.build(diffs: [without], as: "noignore")
        #expect(
            plain["objects"]?[0]?["changed"]?.arrayValue?.compactMap(\.stringValue) == [
                "do_task_stat", "proc_pid_status",
            ])

        try Scenarios.load(guest, path, "ignore")
        let functions = try guest.check("ls /sys/kernel/livepatch/livepatch_ignore/vmlinux")
        #expect(functions.contains("proc_pid_status,"), "\(functions)")
        #expect(!functions.contains("do_task_stat"), "\(functions)")
        #expect(try guest.check("grep State: /proc/self/status") == "State:\tR (running, patched)\n")
        #expect(try guest.check("cut -d' ' -f3 /proc/self/stat") == "R\n")
        try Scenarios.unload(guest, "ignore")
        #expect(try guest.check("grep State: /proc/self/status") == "State:\tR (running)\n")
    }

    @Test func headerChangeRebuildsItsIncluders() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Scenarios.build(["header-inline"], as: "header")
        let objects = report["objects"]?.arrayValue ?? []
        let changed = Dictionary(
            uniqueKeysWithValues: objects.compactMap { o -> (String, [String])? in
                guard let name = o["object"]?.stringValue else { return nil }
                return (name, o["changed"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            })
        // Only the objects whose code really uses the helper are in the patch.
        #expect(changed.keys.sorted() == ["fs/fat/file.o", "fs/fat/inode.o"], "\(changed)")
        #expect(changed["fs/fat/inode.o"]?.contains("fat_fill_inode") == true)
        #expect(objects.allSatisfy { $0["target"]?.stringValue == "fat" })

        let mount = "mount -t vfat -o loop /tmp/hdr.img /mnt/hdr"
        try guest.check(
            "dd if=/dev/zero of=/tmp/hdr.img bs=1024 count=4096 2>/dev/null && mkdosfs /tmp/hdr.img >/dev/null")
        try guest.check("mkdir -p /mnt/hdr && \(mount) && echo x > /mnt/hdr/file && umount /mnt/hdr")
        #expect(try guest.check("\(mount) && stat -c %a /mnt/hdr/file; umount /mnt/hdr") == "755\n")
        try Scenarios.load(guest, path, "header")
        #expect(try guest.check("\(mount) && stat -c %a /mnt/hdr/file; umount /mnt/hdr") == "644\n")
        try Scenarios.unload(guest, "header")
        #expect(try guest.check("\(mount) && stat -c %a /mnt/hdr/file; umount /mnt/hdr") == "755\n")
    }
}
