// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel
import Testing

/// Which objects go into vmlinux, which into which module, and which are
/// not built, read from the real tree's Makefiles and config.
@Suite struct KbuildMembershipTests {
    @Test func realTree() throws {
        let kernel = try KernelResolver().defaultTarget()
        let tree = try TreeCache().prepare(kernel).tree
        let config = try tree.config()
        func of(_ object: String) -> KbuildMembership {
            KbuildMembership.of(object, tree: tree.sourceDirectory, config: config)
        }
        #expect(of("fs/proc/loadavg.o") == .builtIn)
        #expect(of("kernel/sched/build_utility.o") == .builtIn)
        #expect(of("fs/binfmt_misc.o") == .module("binfmt_misc"))
        #expect(of("fs/xfs/libxfs/xfs_ag.o") == .module("xfs"), "a composite module, listed through $(addprefix)")
        #expect(of("fs/xfs/xfs_super.o") == .module("xfs"))
        #expect(of("fs/cramfs/inode.o") == .notBuilt(option: "CONFIG_CRAMFS"))
        #expect(of("drivers/input/joydev.o") == .module("joydev"))
        #expect(
            of("fs/smb/server/mgmt/tree_connect.o") == .module("ksmbd"), "a composite module's object in a subfolder")
        func named(_ file: String) -> String? {
            KbuildObjectNames.object(compiling: file, root: tree.sourceDirectory) { text, word in
                String(decoding: text, as: UTF8.self).contains(String(decoding: word, as: UTF8.self))
            }
        }
        #expect(
            named("fs/smb/server/mgmt/tree_connect.c") == "fs/smb/server/mgmt/tree_connect.o",
            "ksmbd-y += mgmt/tree_connect.o")
        #expect(named("fs/xfs/libxfs/xfs_ag.c") == "fs/xfs/libxfs/xfs_ag.o", "$(addprefix libxfs/, xfs_ag.o …)")
        #expect(named("fs/proc/meminfo.c") == "fs/proc/meminfo.o")
    }

    @Test func objectsListedFromAParentFolder() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try FileSystem.makeDirectories(Path.join(dir.path, "fs/srv/mgmt"))
        try FileSystem.makeDirectories(Path.join(dir.path, "fs/srv/lib"))
        try FileSystem.makeDirectories(Path.join(dir.path, "fs/other"))
        try FileSystem.write(
            Path.join(dir.path, "fs/srv/Makefile"),
            "obj-m += srv.o\nsrv-y := main.o \\\n\tmgmt/tree.o\nsrv-y += $(addprefix lib/, \\\n\ta.o b.o)\n")
        func named(_ file: String) -> String? {
            KbuildObjectNames.object(compiling: file, root: dir.path) { text, word in
                String(decoding: text, as: UTF8.self).contains(String(decoding: word, as: UTF8.self))
            }
        }
        #expect(named("fs/srv/mgmt/tree.c") == "fs/srv/mgmt/tree.o")
        #expect(named("fs/srv/lib/b.c") == "fs/srv/lib/b.o")
        #expect(named("fs/srv/mgmt/other.c") == nil)
        #expect(named("fs/other/tree.c") == nil, "a parent's entry must carry the subfolder's path")
        let m = KernelConfig(text: "")
        #expect(KbuildMembership.of("fs/srv/mgmt/tree.o", tree: dir.path, config: m) == .module("srv"))
    }

    @Test func fakeMakefiles() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try FileSystem.makeDirectories(Path.join(dir.path, "fs/demo"))
        try FileSystem.write(Path.join(dir.path, "fs/Makefile"), "obj-y += core.o\nobj-$(CONFIG_DEMO) += demo/\n")
        try FileSystem.write(
            Path.join(dir.path, "fs/demo/Makefile"),
            "obj-$(CONFIG_DEMO) += demo-fs.o\ndemo-fs-y := super.o \\\n\tinode.o\ndemo-fs-$(CONFIG_DEMO_EXTRA) += extra.o\n"
        )
        let m = KernelConfig(text: "CONFIG_DEMO=m\n# CONFIG_DEMO_EXTRA is not set\n")
        #expect(KbuildMembership.of("fs/core.o", tree: dir.path, config: m) == .builtIn)
        #expect(KbuildMembership.of("fs/demo/inode.o", tree: dir.path, config: m) == .module("demo_fs"))
        #expect(
            KbuildMembership.of("fs/demo/extra.o", tree: dir.path, config: m) == .notBuilt(option: "CONFIG_DEMO_EXTRA"))
        let n = KernelConfig(text: "# CONFIG_DEMO is not set\n")
        #expect(KbuildMembership.of("fs/demo/super.o", tree: dir.path, config: n) == .notBuilt(option: "CONFIG_DEMO"))
        #expect(KbuildMembership.of("fs/unknown.o", tree: dir.path, config: n) == .unknown)
    }

    /// Objects inside `ifeq ($(CONFIG_X),y)` / `ifdef` blocks are built only
    /// when the option meets the condition (xfs's online repair objects in
    /// the corpus, whose pristine source does not even compile without it).
    @Test func conditionalBlocks() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try FileSystem.makeDirectories(Path.join(dir.path, "fs/demo"))
        try FileSystem.write(Path.join(dir.path, "fs/Makefile"), "obj-$(CONFIG_DEMO) += demo/\n")
        try FileSystem.write(
            Path.join(dir.path, "fs/demo/Makefile"),
            """
            obj-$(CONFIG_DEMO) += demo.o
            demo-y := super.o
            ifeq ($(CONFIG_DEMO_REPAIR),y)
            demo-y += repair.o
            ifdef CONFIG_DEMO_RT
            demo-y += rt_repair.o
            endif
            else
            demo-y += norepair.o
            endif
            ifneq ($(CONFIG_DEMO_STATS),)
            demo-y += stats.o
            endif

            """)
        let off = KernelConfig(text: "CONFIG_DEMO=m\nCONFIG_DEMO_RT=y\n")
        #expect(KbuildMembership.of("fs/demo/super.o", tree: dir.path, config: off) == .module("demo"))
        #expect(
            KbuildMembership.of("fs/demo/repair.o", tree: dir.path, config: off)
                == .notBuilt(option: "CONFIG_DEMO_REPAIR"))
        #expect(
            KbuildMembership.of("fs/demo/rt_repair.o", tree: dir.path, config: off)
                == .notBuilt(option: "CONFIG_DEMO_REPAIR"))
        #expect(KbuildMembership.of("fs/demo/norepair.o", tree: dir.path, config: off) == .module("demo"))
        #expect(
            KbuildMembership.of("fs/demo/stats.o", tree: dir.path, config: off)
                == .notBuilt(option: "CONFIG_DEMO_STATS"))
        let on = KernelConfig(text: "CONFIG_DEMO=m\nCONFIG_DEMO_REPAIR=y\nCONFIG_DEMO_STATS=y\n")
        #expect(KbuildMembership.of("fs/demo/repair.o", tree: dir.path, config: on) == .module("demo"))
        #expect(
            KbuildMembership.of("fs/demo/rt_repair.o", tree: dir.path, config: on)
                == .notBuilt(option: "CONFIG_DEMO_RT"))
        #expect(
            KbuildMembership.of("fs/demo/norepair.o", tree: dir.path, config: on)
                == .notBuilt(option: "CONFIG_DEMO_REPAIR"))
        #expect(KbuildMembership.of("fs/demo/stats.o", tree: dir.path, config: on) == .module("demo"))
    }
}
