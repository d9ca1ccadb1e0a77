// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import KernelPatch
import Platform
import Testing

/// Who clears a module object's klp relocation targets is read from the
/// target's own source, and only patches with module objects carry the
/// clearing callback.
@Suite struct RelocationClearingTests {
    func tree(core: String, alternative: String) throws -> String {
        let root = NSTemporaryDirectory() + "suture-clearing-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/kernel/livepatch", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/arch/x86/kernel", withIntermediateDirectories: true)
        try core.write(toFile: root + "/kernel/livepatch/core.c", atomically: true, encoding: .utf8)
        try alternative.write(toFile: root + "/arch/x86/kernel/alternative.c", atomically: true, encoding: .utf8)
        return root
    }

    @Test func decidedByTheSource() throws {
        let newer = try tree(
            core: "static void klp_clear_object_relocs(struct klp_patch *patch,",
            alternative: "void *text_poke_set(void *addr, int c, size_t len)")
        let debian12 = try tree(
            core: "static int klp_apply_object_relocs(",
            alternative: "void *text_poke_set(void *addr, int c, size_t len)\n{")
        let older = try tree(core: "static int klp_apply_object_relocs(", alternative: "void *text_poke(void *addr,")
        defer { for t in [newer, debian12, older] { try? FileManager.default.removeItem(atPath: t) } }
        #expect(LivepatchModule.RelocationClearing.of(source: newer) == .byKernel)
        #expect(LivepatchModule.RelocationClearing.of(source: debian12) == .byPatch)
        #expect(LivepatchModule.RelocationClearing.of(source: older) == .unavailable)
    }

    @Test func onlyModuleObjectsGetTheCallback() {
        var plan = LivepatchModule.Plan()
        plan.redirects = [
            FunctionRedirect(
                target: .vmlinux, oldName: "loadavg_proc_show", sympos: 0, newSymbol: "livepatch_a",
                object: "fs/proc/loadavg.o")
        ]
        let vmlinuxOnly = LivepatchModule.registrationSource(plan, replace: true, modinfo: [], clearing: .byPatch)
        #expect(!vmlinuxOnly.contains("suture_clear_relocations"))
        plan.redirects.append(
            FunctionRedirect(
                target: .module("binfmt_misc"), oldName: "bm_status_read", sympos: 0, newSymbol: "livepatch_b",
                object: "fs/binfmt_misc.o"))
        let mixed = LivepatchModule.registrationSource(plan, replace: true, modinfo: [], clearing: .byPatch)
        #expect(
            mixed.contains(
                #"{ .name = "binfmt_misc", .funcs = funcs_1, .callbacks = { .post_unpatch = suture_post_unpatch_object_1 } }"#
            ))
        #expect(
            mixed.contains(
                "static void suture_post_unpatch_object_1(struct klp_object *obj)\n{\n\tsuture_clear_relocations(obj);\n}"
            ))
        #expect(mixed.contains("{ .name = NULL, .funcs = funcs_0 },"))
        #expect(mixed.contains(#"__asm__("\".klp.sym.vmlinux.text_poke_set,0\"")"#))
        let byKernel = LivepatchModule.registrationSource(plan, replace: true, modinfo: [], clearing: .byKernel)
        #expect(!byKernel.contains("suture_clear_relocations"))
    }
}
