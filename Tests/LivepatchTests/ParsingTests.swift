// SPDX-License-Identifier: GPL-2.0-only
import Livepatch
import Platform
import Testing

/// The kernel's text formats: stacks, /proc/modules, the taint mask.
@Suite struct ParsingTests {
    @Test func stackFramesAsTheKernelPrintsThem() throws {
        let frame = try #require(StackFrame(line: "[<0>] busymod_work_func+0x1d/0x40 [test_klp_callbacks_busy]"))
        #expect(
            frame
                == StackFrame(
                    function: "busymod_work_func", offset: 0x1d, size: 0x40, module: "test_klp_callbacks_busy"))
        #expect(frame.text == "busymod_work_func+0x1d/0x40 [test_klp_callbacks_busy]")

        let vmlinux = try #require(StackFrame(line: "[<ffffffff8d0c4e32>] msleep+0x2d/0x40\n"))
        #expect(vmlinux == StackFrame(function: "msleep", offset: 0x2d, size: 0x40, module: nil))
        #expect(vmlinux.text == "msleep+0x2d/0x40")

        // Without symbol information the kernel prints a bare address.
        #expect(StackFrame(line: "[<0>] 0xffffffffc0a01234")?.function == "0xffffffffc0a01234")
        // A function name that contains a dot or a plus sign of its own.
        #expect(StackFrame(line: "[<0>] foo.cold+0x5/0x10")?.function == "foo.cold")
        #expect(StackFrame(line: "   ") == nil)
    }

    @Test func procModules() {
        let text = """
            test_klp_livepatch 16384 1 - Live 0xffffffffc0a0d000 (OEK)
            test_klp_callbacks_busy 16384 0 - Live 0xffffffffc0a05000 (OE)
            xfs 1994752 0 - Live 0x0000000000000000
            loading 4096 0 - Loading 0xffffffffc0a00000 (OEK+)
            garbage line
            """
        let modules = LoadedModule.parse(text)
        #expect(modules.map(\.name) == ["test_klp_livepatch", "test_klp_callbacks_busy", "xfs", "loading"])
        #expect(modules.map(\.isLivepatch) == [true, false, false, true])
        #expect(modules[0].referenceCount == 1)
        #expect(modules[2].flags == "")
        #expect(modules[3].state == "Loading")
    }

    @Test func taintLetters() {
        let taint = KernelTaint(mask: (1 << 12) | (1 << 13) | (1 << 15))
        #expect(taint.letters == "OEK")
        #expect(taint.summary == "O (out-of-tree module), E (unsigned module), K (live patched)")
        let before = KernelTaint(mask: 1 << 12)
        #expect(taint.added(since: before).letters == "EK")
        #expect(KernelTaint(mask: 0).summary == "none")
        #expect(KernelTaint(mask: 1 << 40).letters == "?")
        // Every letter the kernel defines, once.
        #expect(Set(KernelTaint.flags.map(\.letter)).count == KernelTaint.flags.count)
    }

    @Test func loadRecordsRoundTrip() throws {
        for replace in [true, false, nil] as [Bool?] {
            let record = LoadRecord(
                name: "livepatch_x", file: "/var/lib/suture/x.ko",
                identity: FileIdentity(size: 260_616, modified: 1_795_955_059_123_456_789, device: 2049, inode: 77),
                replace: replace, loadedAt: "2026-11-29T12:00:00Z", moduleSize: 16384)
            let text = record.json.serialized(pretty: true)
            #expect(LoadRecord(json: try JSON.parse(text)) == record)
        }
        #expect(LoadRecord(json: try JSON.parse(#"{"name":"x","file":"/x"}"#)) == nil)
    }

    @Test func framesOfThePatch() {
        let demo = PatchStatus(
            name: "demo", module: "demo", present: true, enabled: true, transition: true, replace: nil,
            objects: [
                PatchObject(
                    name: "vmlinux", patched: true, functions: [PatchFunction(name: "cmdline_proc_show", sympos: 1)]),
                PatchObject(
                    name: "busy", patched: true, functions: [PatchFunction(name: "busymod_work_func", sympos: 1)]),
            ])
        let lower = PatchStatus(
            name: "lower", module: "lower", present: true, enabled: true, transition: false, replace: nil,
            objects: [
                PatchObject(
                    name: "vmlinux", patched: true, functions: [PatchFunction(name: "cmdline_proc_show", sympos: 1)])
            ])
        let unrelated = PatchStatus(
            name: "other", module: "other", present: true, enabled: true, transition: false, replace: nil,
            objects: [
                PatchObject(
                    name: "vmlinux", patched: true, functions: [PatchFunction(name: "meminfo_proc_show", sympos: 1)])
            ])
        let matcher = PatchFrameMatcher(patch: demo, others: [lower, unrelated])
        #expect(matcher.matches(StackFrame(function: "busymod_work_func", module: "busy")))
        #expect(!matcher.matches(StackFrame(function: "busymod_work_func", module: nil)))
        #expect(matcher.matches(StackFrame(function: "cmdline_proc_show")))
        #expect(!matcher.matches(StackFrame(function: "cmdline_proc_show", module: "busy")))
        #expect(matcher.matches(StackFrame(function: "livepatch_cmdline_proc_show", module: "demo")))
        #expect(matcher.matches(StackFrame(function: "livepatch_cmdline_proc_show", module: "lower")))
        #expect(!matcher.matches(StackFrame(function: "livepatch_meminfo_proc_show", module: "other")))
        #expect(!matcher.matches(StackFrame(function: "msleep")))
    }
}
