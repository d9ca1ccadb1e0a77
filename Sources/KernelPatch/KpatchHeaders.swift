// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Suture's own implementation of kpatch's patch-author interface: the
/// headers `kpatch-macros.h` and `kpatch-syscall.h` that kpatch-style
/// patches include. Every macro keeps kpatch's name and meaning; each one
/// leaves a pointer in a `.kpatch.*` section that the object diff reads
/// (see `PatchDirectives`). `suture build` puts them on the include path of
/// the patched compile only.
public enum KpatchHeaders {
    public static let files: [(name: String, text: String)] = [
        ("kpatch-macros.h", macros), ("kpatch-syscall.h", syscall),
    ]

    /// Writes the headers into `directory` and returns the compiler flag
    /// that finds them.
    public static func install(in directory: String) throws(BuildError) -> String {
        do {
            try FileSystem.makeDirectories(directory)
            for (name, text) in files { try FileSystem.write(Path.join(directory, name), text) }
        } catch {
            throw BuildError(.io, "writing the kpatch headers in \(directory): \(error.description)", cause: error)
        }
        return "-I\(directory)"
    }

    static let macros = """
        /* SPDX-License-Identifier: GPL-2.0-only */
        /*
         * kpatch's patch-author macros, as implemented by suture build.
         * Each directive leaves a pointer in a .kpatch.* section; suture reads
         * those sections from the patched object and does not copy them.
         */
        #ifndef __KPATCH_MACROS_H_
        #define __KPATCH_MACROS_H_

        #include <linux/compiler.h>
        #include <linux/kernel.h>
        #include <linux/printk.h>
        #include <linux/livepatch.h>

        /* What a callback receives: the klp object being patched. */
        typedef struct klp_object patch_object;

        typedef int (*kpatch_pre_patch_call_t)(patch_object *obj);
        typedef void (*kpatch_post_patch_call_t)(patch_object *obj);
        typedef void (*kpatch_pre_unpatch_call_t)(patch_object *obj);
        typedef void (*kpatch_post_unpatch_call_t)(patch_object *obj);

        /* Leave a function out of the patch even though it changed. */
        #define KPATCH_IGNORE_FUNCTION(_fn) \\
        \tstatic void *__kpatch_ignore_func_##_fn __used \\
        \t__section(".kpatch.ignore.functions") = (void *)(_fn)

        /* Leave everything in a section out of the patch. */
        #define KPATCH_IGNORE_SECTION(_sec) \\
        \tstatic const char *__UNIQUE_ID(kpatch_ignore_section_) __used \\
        \t__section(".kpatch.ignore.sections") = (_sec)

        /*
         * kpatch's core module could switch a function without its consistency
         * check. The kernel's livepatch core cannot; suture build refuses it.
         */
        #define KPATCH_FORCE_UNSAFE(_fn) \\
        \tstatic void *__kpatch_force_func_##_fn __used \\
        \t__section(".kpatch.force") = (void *)(_fn)

        /*
         * Callbacks of the klp object (vmlinux or module) whose code declares
         * them: at most one of each kind per source file.
         */
        #define KPATCH_PRE_PATCH_CALLBACK(_fn) \\
        \tstatic kpatch_pre_patch_call_t __kpatch_pre_patch_callback __used \\
        \t__section(".kpatch.callbacks.pre_patch") = (_fn)
        #define KPATCH_POST_PATCH_CALLBACK(_fn) \\
        \tstatic kpatch_post_patch_call_t __kpatch_post_patch_callback __used \\
        \t__section(".kpatch.callbacks.post_patch") = (_fn)
        #define KPATCH_PRE_UNPATCH_CALLBACK(_fn) \\
        \tstatic kpatch_pre_unpatch_call_t __kpatch_pre_unpatch_callback __used \\
        \t__section(".kpatch.callbacks.pre_unpatch") = (_fn)
        #define KPATCH_POST_UNPATCH_CALLBACK(_fn) \\
        \tstatic kpatch_post_unpatch_call_t __kpatch_post_unpatch_callback __used \\
        \t__section(".kpatch.callbacks.post_unpatch") = (_fn)

        /*
         * printk from its own function: printk is __cold, and calling it
         * directly can make gcc treat the surrounding path as cold and move or
         * split unrelated code, which then shows up as changed.
         */
        static __printf(1, 2) __maybe_unused noinline int __kpatch_printk(const char *fmt, ...)
        {
        \tva_list args;
        \tint written;

        \tva_start(args, fmt);
        \twritten = vprintk(fmt, args);
        \tva_end(args);
        \treturn written;
        }

        #define KPATCH_PRINTK(_fmt, ...) __kpatch_printk(_fmt, ##__VA_ARGS__)

        #endif /* __KPATCH_MACROS_H_ */

        """

    static let syscall = """
        /* SPDX-License-Identifier: GPL-2.0-only */
        /*
         * kpatch's system-call definition macros, as implemented by suture
         * build: KPATCH_SYSCALL_DEFINEn(name, ...) replaces SYSCALL_DEFINEn in a
         * patch. The kernel's version puts the body in a static inline
         * __do_sys_NAME, and inline functions are notrace, so a copy that gcc
         * keeps out of line cannot be redirected. Here the body gets a new,
         * traceable name and no tracing metadata, so the patch replaces the
         * system call's entry stubs, which call it.
         */
        #ifndef __KPATCH_SYSCALL_H_
        #define __KPATCH_SYSCALL_H_

        #include "kpatch-macros.h"
        #include <linux/syscalls.h>

        #ifndef CONFIG_X86_64
        #error "kpatch-syscall.h: suture build supports x86-64 kernels only"
        #endif

        #define __KPATCH_SYSCALL_DEFINEx(x, name, ...)\\
        \tstatic long __se_sys##name(__MAP(x, __SC_LONG, __VA_ARGS__));\\
        \tstatic long __kpatch_do_sys##name(__MAP(x, __SC_DECL, __VA_ARGS__));\\
        \t__X64_SYS_STUBx(x, name, __VA_ARGS__)\\
        \t__IA32_SYS_STUBx(x, name, __VA_ARGS__)\\
        \tstatic long __se_sys##name(__MAP(x, __SC_LONG, __VA_ARGS__))\\
        \t{\\
        \t\tlong ret = __kpatch_do_sys##name(__MAP(x, __SC_CAST, __VA_ARGS__));\\
        \t\t__MAP(x, __SC_TEST, __VA_ARGS__);\\
        \t\t__PROTECT(x, ret, __MAP(x, __SC_ARGS, __VA_ARGS__));\\
        \t\treturn ret;\\
        \t}\\
        \tstatic long __kpatch_do_sys##name(__MAP(x, __SC_DECL, __VA_ARGS__))

        /* Without arguments the kernel's body is already an ordinary function. */
        #define KPATCH_SYSCALL_DEFINE0(name) SYSCALL_DEFINE0(name)
        #define KPATCH_SYSCALL_DEFINE1(name, ...) __KPATCH_SYSCALL_DEFINEx(1, _##name, __VA_ARGS__)
        #define KPATCH_SYSCALL_DEFINE2(name, ...) __KPATCH_SYSCALL_DEFINEx(2, _##name, __VA_ARGS__)
        #define KPATCH_SYSCALL_DEFINE3(name, ...) __KPATCH_SYSCALL_DEFINEx(3, _##name, __VA_ARGS__)
        #define KPATCH_SYSCALL_DEFINE4(name, ...) __KPATCH_SYSCALL_DEFINEx(4, _##name, __VA_ARGS__)
        #define KPATCH_SYSCALL_DEFINE5(name, ...) __KPATCH_SYSCALL_DEFINEx(5, _##name, __VA_ARGS__)
        #define KPATCH_SYSCALL_DEFINE6(name, ...) __KPATCH_SYSCALL_DEFINEx(6, _##name, __VA_ARGS__)

        #endif /* __KPATCH_SYSCALL_H_ */

        """
}
