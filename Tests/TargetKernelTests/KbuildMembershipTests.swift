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
}
