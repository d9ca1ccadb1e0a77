// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import Testing
import VM

/// `suture build` for code in loadable modules, proven in one shared guest:
/// a module loaded before the patch, the same module loaded after it (and
/// again, and again), module-internal symbols, and vmlinux plus a module in
/// one patch.
@Suite(.serialized, .guest(modules: ["binfmt_misc", "loop", "vfat", "nls_cp437", "nls_ascii"]))
struct ModuleBuildTests {
    typealias Scenarios = BuildScenarioTests

    static let binfmtStatus = "cat /proc/sys/fs/binfmt_misc/status"

    static func mountBinfmt(_ guest: TestGuest) throws {
        let r = try guest.run("modprobe binfmt_misc && mount -t binfmt_misc none /proc/sys/fs/binfmt_misc")
        if r.commandStatus != 0 {
            let log = try guest.run("dmesg | tail -25").stdoutText
            Issue.record("loading binfmt_misc failed: \(r.stderrText)\n\(log)")
        }
    }

    static func removeBinfmt(_ guest: TestGuest) throws {
        try guest.check("umount /proc/sys/fs/binfmt_misc && rmmod binfmt_misc")
    }

    /// The klp object of `module` in `suture list --json`: (present, patched).
    static func object(_ guest: TestGuest, _ module: String) throws -> (Bool, Bool)? {
        let json = try JSON.parse(try guest.check("suture list --json"))
        for patch in json["patches"]?.arrayValue ?? [] {
            for object in patch["objects"]?.arrayValue ?? [] where object["name"]?.stringValue == module {
                return (true, object["patched"]?.boolValue ?? false)
            }
        }
        return nil
    }

    @Test func moduleLoadedBeforeThePatch() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Scenarios.build(["module-binfmt"], as: "binfmt_before")
        #expect(report["objects"]?[0]?["target"]?.stringValue == "binfmt_misc")
        try Self.mountBinfmt(guest)
        #expect(try guest.check(Self.binfmtStatus) == "enabled\n")
        try Scenarios.load(guest, path, "binfmt_before")
        #expect(try Self.object(guest, "binfmt_misc")?.1 == true)
        #expect(try guest.check(Self.binfmtStatus) == "enabled (patched)\n")
        try Scenarios.unload(guest, "binfmt_before")
        #expect(try guest.check(Self.binfmtStatus) == "enabled\n")
        try Self.removeBinfmt(guest)
    }

    @Test func moduleLoadedAfterThePatchAndAgain() throws {
        let guest = try TestGuest.current()
        let (path, _) = try Scenarios.build(["module-binfmt"], as: "binfmt_after")
        #expect(try guest.check("grep -c '^binfmt_misc ' /proc/modules || true") == "0\n")
        try Scenarios.load(guest, path, "binfmt_after")
        let waiting = try #require(try Self.object(guest, "binfmt_misc"), "the binfmt_misc object is not listed")
        #expect(waiting.1 == false, "the object must wait for its module")
        #expect(try guest.check("suture status livepatch_binfmt_after").contains("waiting"))
        for round in 1...2 {
            try Self.mountBinfmt(guest)
            #expect(
                try Self.object(guest, "binfmt_misc")?.1 == true, "round \(round): not patched when the module came")
            #expect(try guest.check(Self.binfmtStatus) == "enabled (patched)\n", "round \(round)")
            try Self.removeBinfmt(guest)
            #expect(
                try Self.object(guest, "binfmt_misc")?.1 == false, "round \(round): still marked patched after rmmod")
        }
        try Scenarios.unload(guest, "binfmt_after")
        try Self.mountBinfmt(guest)
        #expect(try guest.check(Self.binfmtStatus) == "enabled\n")
        try Self.removeBinfmt(guest)
    }

    @Test func moduleInternalStaticAndExportedSymbols() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Scenarios.build(["module-internal"], as: "fat_internal")
        let klp = report["objects"]?[0]?["klpSymbols"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(klp.contains(".klp.sym.fat.fat_statfs,0"), "\(klp)")
        #expect(
            klp.contains(".klp.sym.fat.fat_time_fat2unix,0"),
            "an export of the patched module must be a klp symbol: \(klp)")
        let depends = try Command.output(["modinfo", "-F", "depends", path]).trimmingWhitespace()
        #expect(!depends.split(separator: ",").contains("fat"), "the patch must not depend on fat: \(depends)")
        try guest.check(
            "dd if=/dev/zero of=/tmp/fat.img bs=1024 count=4096 2>/dev/null && mkdosfs /tmp/fat.img >/dev/null")
        try guest.check("mkdir -p /mnt/fat && mount -t vfat -o loop /tmp/fat.img /mnt/fat")
        let command = "grep ' /mnt/fat ' /proc/mounts"
        #expect(!(try guest.check(command)).contains("suture="))
        try Scenarios.load(guest, path, "fat_internal")
        let patched = try guest.check(command)
        #expect(patched.contains(",suture=315532800:"), "\(patched)")
        try Scenarios.unload(guest, "fat_internal")
        #expect(!(try guest.check(command)).contains("suture="))
        try guest.check("umount /mnt/fat")
    }

    @Test func vmlinuxAndAModuleInOnePatch() throws {
        let guest = try TestGuest.current()
        let (path, report) = try Scenarios.build(["proc-string", "module-binfmt"], as: "mixed")
        let targets = Set(report["objects"]?.arrayValue?.compactMap { $0["target"]?.stringValue } ?? [])
        #expect(targets == ["vmlinux", "binfmt_misc"])
        let sections = report["klpSections"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(
            sections.contains { $0.hasPrefix(".klp.rela.vmlinux.") }
                && sections.contains { $0.hasPrefix(".klp.rela.binfmt_misc.") })
        try Self.mountBinfmt(guest)
        try Scenarios.load(guest, path, "mixed")
        #expect(try guest.check("cat /proc/loadavg").hasSuffix(" patched\n"))
        #expect(try guest.check(Self.binfmtStatus) == "enabled (patched)\n")
        try Scenarios.unload(guest, "mixed")
        #expect(!(try guest.check("cat /proc/loadavg")).contains("patched"))
        #expect(try guest.check(Self.binfmtStatus) == "enabled\n")
        try Self.removeBinfmt(guest)
    }
}
