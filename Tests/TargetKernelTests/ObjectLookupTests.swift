// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel
import TestSupport
import Testing

/// The pure parts of "which object compiles this file": Makefile words,
/// `#include` lines and their resolution, without a kernel tree.
@Suite struct ObjectLookupTests {
    @Test func makefileWordsNameTheDirectObject() throws {
        let tree = try Scratch("suture-lookup")
        try tree.write("fs/proc/Makefile", "obj-y += meminfo.o cmdline.o\nproc-$(CONFIG_X) := task_mmu.o\n")
        try tree.write("kernel/sched/Makefile", "obj-y += build_policy.o build_utility.o\n")
        try tree.write("arch/x86/Kbuild", "obj-y += entry/\nobj-$(CONFIG_KVM) += kvm.o\n")
        try tree.write("Makefile", "init-y := init.o\n")
        #expect(Workspace.directObject("fs/proc/meminfo.c", sourceDirectory: tree.path) == "fs/proc/meminfo.o")
        #expect(Workspace.directObject("fs/proc/task_mmu.c", sourceDirectory: tree.path) == "fs/proc/task_mmu.o")
        #expect(Workspace.directObject("arch/x86/kvm.c", sourceDirectory: tree.path) == "arch/x86/kvm.o")
        #expect(Workspace.directObject("init.c", sourceDirectory: tree.path) == "init.o")
        // rt.c is #included by build_policy.c; no Makefile names it.
        #expect(Workspace.directObject("kernel/sched/rt.c", sourceDirectory: tree.path) == nil)
        #expect(Workspace.directObject("fs/nfs/inode.c", sourceDirectory: tree.path) == nil)
    }

    @Test func makeWordsMatchWhole() {
        func has(_ text: String, _ word: String) -> Bool { Workspace.containsWord(Array(text.utf8), Array(word.utf8)) }
        #expect(has("obj-y += rt.o", "rt.o"))
        #expect(has("rt.o", "rt.o"))
        #expect(!has("obj-y += sched_rt.o", "rt.o"))
        #expect(!has("obj-y += rt.ok", "rt.o"))
        #expect(!has("obj-y += my-rt.o", "rt.o"))
        #expect(has("x := a.o\\\n\trt.o b.o", "rt.o"))
        #expect(!has("r", "rt.o"))
    }

    @Test func includeLinesAreRead() {
        let text = """
            #include <linux/sched.h>
              #  include "sched.h"
            #include"tight.h"
            // #include "commented.h"
            #define include "not.h"
            #include MACRO_HEADER
            #include <asm/unterminated.h
            """
        #expect(Workspace.includedNames(text) == ["linux/sched.h", "sched.h", "tight.h"])
    }

    @Test func includesResolveNextToTheFileOrInTheIncludeFolders() {
        #expect(Workspace.include("rt.c", in: "kernel/sched/build_policy.c", resolvesTo: "kernel/sched/rt.c"))
        #expect(Workspace.include("../sched/rt.c", in: "kernel/time/x.c", resolvesTo: "kernel/sched/rt.c"))
        #expect(Workspace.include("linux/sched.h", in: "fs/proc/base.c", resolvesTo: "include/linux/sched.h"))
        #expect(Workspace.include("asm/page.h", in: "mm/x.c", resolvesTo: "arch/x86/include/asm/page.h"))
        #expect(Workspace.include("linux/types.h", in: "mm/x.c", resolvesTo: "include/uapi/linux/types.h"))
        // Same base name, other folder.
        #expect(!Workspace.include("rt.c", in: "kernel/time/x.c", resolvesTo: "kernel/sched/rt.c"))
        #expect(!Workspace.include("sched.h", in: "fs/proc/base.c", resolvesTo: "include/linux/sched.h"))
        #expect(!Workspace.include("linux/other.h", in: "fs/proc/base.c", resolvesTo: "include/linux/sched.h"))
    }

    @Test func pathsAreNormalized() {
        #expect(Workspace.normalize("kernel/time/../sched/./rt.c") == "kernel/sched/rt.c")
        #expect(Workspace.normalize("./a//b/") == "a/b")
        #expect(Workspace.normalize("../a") == "../a")
        #expect(Workspace.normalize("a/../../b") == "../b")
    }

    @Test func theIncludeIndexFindsIncluders() {
        let grep = """
            kernel/sched/build_policy.c:#include "rt.c"
            kernel/sched/build_policy.c:#include "deadline.c"
            kernel/sched/rt.c:#include "sched.h"
            kernel/time/other.c:#include "rt.c"
            kernel/sched/core.c:#include <linux/sched.h>
            fs/proc/base.c:#include <linux/sched.h>
            fs/proc/base.c: #  include <linux/sched.h>
            not a grep line
            """
        let index = Workspace.IncludeIndex(grepOutput: grep)
        #expect(index.includers(of: "kernel/sched/rt.c") == ["kernel/sched/build_policy.c"])
        #expect(index.includers(of: "kernel/sched/sched.h") == ["kernel/sched/rt.c"])
        #expect(index.includers(of: "include/linux/sched.h") == ["kernel/sched/core.c", "fs/proc/base.c"])
        #expect(index.includers(of: "kernel/sched/fair.c").isEmpty)
    }

    @Test func treePathsStayInsideTheTree() throws {
        #expect(try Workspace.treePath("./fs//proc/meminfo.c") == "fs/proc/meminfo.c")
        for bad in ["/etc/passwd", "../x.c", "fs/../../x.c", "_build/fs/proc/meminfo.o", ""] {
            #expect(throws: KernelError.self, "\(bad)") { try Workspace.treePath(bad) }
        }
    }
}
