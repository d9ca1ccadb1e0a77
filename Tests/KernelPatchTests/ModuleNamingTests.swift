// SPDX-License-Identifier: GPL-2.0-only
import KernelPatch
import TargetKernel
import Testing

/// Names of the module and of its klp objects, from what the user and
/// kbuild give.
@Suite struct ModuleNamingTests {
    @Test func moduleNamesAreReducedToKbuildCharacters() throws {
        #expect(try KernelBuild.moduleName("fix-CVE-2024.1234") == "fix_cve_2024_1234")
        #expect(try KernelBuild.moduleName("0001-proc: fix/meminfo") == "0001_proc__fix_meminfo")
        #expect(try KernelBuild.moduleName(String(repeating: "a", count: 60)) == String(repeating: "a", count: 40))
        #expect(try KernelBuild.moduleName("ünïcode") == "_n_code")
    }

    @Test func aNameWithoutLettersOrDigitsIsRefused() {
        for raw in ["", "---", "/.@"] {
            let error = #expect(throws: BuildError.self) { try KernelBuild.moduleName(raw) }
            #expect(error?.kind == .usage)
            #expect(error?.description.contains("--name") == true)
        }
    }

    @Test func klpObjectOfACompileCommand() throws {
        #expect(
            try KlpObject.of("fs/proc/meminfo.o", command: "gcc-12 -Wp,-MMD -O2 -c -o fs/proc/meminfo.o") == .vmlinux)
        let module = "gcc-12 -DMODULE -DKBUILD_BASENAME='\"binfmt_misc\"' -DKBUILD_MODNAME='\"binfmt-misc\"' -c"
        #expect(try KlpObject.of("fs/binfmt_misc.o", command: module) == .module("binfmt_misc"))
        let unquoted = "gcc -DMODULE -DKBUILD_MODNAME=xfs -c"
        #expect(try KlpObject.of("fs/xfs/xfs_super.o", command: unquoted) == .module("xfs"))
        #expect(throws: KernelError.self) { try KlpObject.of("drivers/x.o", command: "gcc -DMODULE -c") }
    }

    @Test func klpObjectNames() {
        #expect(KlpObject.vmlinux.name == "vmlinux")
        #expect(KlpObject(name: "vmlinux") == .vmlinux)
        #expect(KlpObject(name: "nfsd") == .module("nfsd"))
        #expect(KlpObject.module("nfsd").isModule)
        #expect(!KlpObject.vmlinux.isModule)
    }
}
