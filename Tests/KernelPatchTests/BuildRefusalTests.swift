// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel
import TestSupport
import Testing

/// `suture build` refuses what cannot be live-patched, with a reason, and
/// leaves no module behind and the cached tree pristine. These run on the
/// host: nothing is loaded.
@Suite(.serialized) struct BuildRefusalTests {
    static let fixtures = Path.join(Path.directory(of: #filePath), "../Fixtures/kernel")

    /// Runs `suture build` in an empty folder and checks the refusal.
    @discardableResult
    static func refuse(
        _ arguments: [String], code: String, mentions: [String],
        refusals: [(object: String, function: String, reason: String)]? = nil,
        environment: [String: String]? = nil
    ) throws -> String {
        let dir = try TemporaryDirectory(prefix: "suture-refusal")
        defer { dir.remove() }
        let run = try Command.run(
            [try SutureBinary.checked(), "build", "--json", "-o", dir.path] + arguments,
            environment: environment, timeout: 600)
        #expect(run.termination == .exited(1), "expected a refusal: \(run.stderrText)")
        let json = try JSON.parse(run.stdout)
        #expect(json["error"]?["code"]?.stringValue == code, "\(run.stdoutText)")
        let message = json["error"]?["message"]?.stringValue ?? ""
        for text in mentions { #expect(message.contains(text), "'\(text)' not in: \(message)") }
        // Refusals come as a list too: object, function, reason (a part of it).
        let listed = json["error"]?["refusals"]?.arrayValue ?? []
        if let refusals {
            #expect(listed.count == refusals.count, "\(run.stdoutText)")
            for (entry, expected) in zip(listed, refusals) {
                #expect(entry["object"]?.stringValue == expected.object, "\(entry)")
                #expect(entry["function"]?.stringValue == expected.function, "\(entry)")
                #expect(entry["reason"]?.stringValue?.contains(expected.reason) == true, "\(entry)")
            }
        }
        #expect(try FileSystem.list(dir.path).isEmpty, "a refused build left files behind")
        // The cached tree is still pristine.
        let kernel = try KernelResolver().defaultTarget()
        if let tree = try TreeCache().existing(for: kernel) {
            #expect(try tree.verify().isEmpty, "the cached tree changed")
        }
        return message
    }

    @Test func initCodeIsRefused() throws {
        try Self.refuse(
            [Path.join(Self.fixtures, "init/patch.diff")], code: "build-refused",
            mentions: ["proc_cmdline_init", "__init"])
    }

    @Test func changedDataInitializerIsRefused() throws {
        try Self.refuse(
            [Path.join(Self.fixtures, "data-initializer/patch.diff")], code: "build-refused",
            mentions: ["panic_timeout", "initializer changed"],
            refusals: [("kernel/panic.o", "panic_timeout", "initializer changed")])
    }

    @Test func noFunctionalChange() throws {
        try Self.refuse(
            [Path.join(Self.fixtures, "line-only/patch.diff")], code: "build-no-functional-change",
            mentions: ["no functional change", "fs/proc/proc_sysctl.o"])
    }

    @Test func diffThatDoesNotApplyNamesTheHunk() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let good = try FileSystem.readText(Path.join(Self.fixtures, "proc-string/patch.diff"))
        let bad = Path.join(dir.path, "stale.diff")
        // Context from another kernel version: the hunk no longer matches.
        try FileSystem.write(
            bad,
            good.replacingFirst("get_avenrun(avnrun, FIXED_1/200, 0);", with: "get_avenrun(avnrun, FIXED_1/100, 0);"))
        try Self.refuse([bad], code: "build-diff-does-not-apply", mentions: ["stale.diff", "Hunk #1 FAILED"])
    }

    @Test func widelyIncludedHeaderNeedsYes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let header = Path.join(dir.path, "header.diff")
        let source = try KernelResolver().defaultTarget()
        let tree = try TreeCache().prepare(source).tree
        let lines = try FileSystem.readText(Path.join(tree.sourceDirectory, "include/linux/seq_file.h")).split(
            separator: "\n", omittingEmptySubsequences: false)
        // A comment added after the first line: it applies, and hundreds of objects include the header.
        try FileSystem.write(
            header,
            "--- a/include/linux/seq_file.h\n+++ b/include/linux/seq_file.h\n@@ -1,3 +1,4 @@\n \(lines[0])\n+/* suture */\n \(lines[1])\n \(lines[2])\n"
        )
        try Self.refuse([header], code: "build-refused", mentions: ["include/linux/seq_file.h", "objects", "--yes"])
    }

    /// The kpatch-syscall fixture without its macros: __do_sys_newuname is
    /// `static inline` (notrace), so it is carried in the patch and the
    /// syscall wrappers that call it, which have __fentry__, are redirected.
    @Test func plainSyscallDefineIsCarriedThroughItsWrappers() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let kpatch = try FileSystem.readText(Path.join(Self.fixtures, "kpatch-syscall/patch.diff"))
        let start = try #require(kpatch.range(of: "\n \tdown_read(&uts_sem);"))
        let hunk = "--- a/kernel/sys.c\n+++ b/kernel/sys.c\n@@ -1303,6 +1303,7 @@" + String(kpatch[start.lowerBound...])
        let diff = Path.join(dir.path, "plain.diff")
        try FileSystem.write(diff, hunk)
        let run = try Command.run(
            [try SutureBinary.checked(), "build", "--json", "-o", dir.path, diff], timeout: 600)
        #expect(run.termination == .exited(0), "\(run.stdoutText)\(run.stderrText)")
        let json = try JSON.parse(run.stdout)
        #expect(json["objects"]?[0]?["changed"]?.arrayValue?.compactMap(\.stringValue) == ["__do_sys_newuname"])
        let redirected = Set(json["functions"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [])
        #expect(redirected == ["__x64_sys_newuname", "__ia32_sys_newuname"], "\(run.stdoutText)")
    }

    @Test func forceUnsafeIsRefused() throws {
        try Self.refuse(
            [Path.join(Self.fixtures, "kpatch-force/patch.diff")], code: "build-refused",
            mentions: ["loadavg_proc_show", "KPATCH_FORCE_UNSAFE", "consistency"],
            refusals: [("fs/proc/loadavg.o", "loadavg_proc_show", "KPATCH_FORCE_UNSAFE")])
    }

    @Test func newFilesAreRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let new = Path.join(dir.path, "new.diff")
        try FileSystem.write(new, "--- /dev/null\n+++ b/fs/proc/suture.c\n@@ -0,0 +1,1 @@\n+int x;\n")
        try Self.refuse([new], code: "build-unsupported-change", mentions: ["creates fs/proc/suture.c"])
    }

    @Test func mismatchingSourceIsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = Path.join(dir.path, "linux-5.10.0")
        try FileSystem.makeDirectories(tree)
        try FileSystem.write(
            Path.join(tree, "Makefile"), "VERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 0\nEXTRAVERSION =\n")
        let tarball = Path.join(dir.path, "linux-5.10.0.tar.xz")
        _ = try Command.output(["tar", "-cJf", tarball, "-C", dir.path, "linux-5.10.0"])
        try Self.refuse(
            ["--source", tarball, Path.join(Self.fixtures, "proc-string/patch.diff")],
            code: "build-unsupported-change", mentions: ["5.10.0"])
    }

    @Test func mismatchingCompilerIsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let kernel = try KernelResolver().defaultTarget()
        let program = String((kernel.compiler ?? "gcc").split(separator: " ")[0])
        let real = try #require(Command.which(program))
        let fake = Path.join(dir.path, program)
        try FileSystem.write(
            fake,
            "#!/bin/sh\n[ \"$1\" = --version ] && { echo '\(program) (Debian 99.1.0-1) 99.1.0'; exit 0; }\nexec \(real) \"$@\"\n",
            mode: 0o755)
        let path = dir.path + ":" + (FileSystem.environment("PATH") ?? "/usr/bin:/bin")
        try Self.refuse(
            [Path.join(Self.fixtures, "proc-string/patch.diff")], code: "build-unsupported-change",
            mentions: ["99.1.0", "--allow-compiler-mismatch"], environment: Command.environment(["PATH": path]))
    }

    @Test func failedPatchedCompileHintsAtTheHeaderChange() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // A fix that uses a field its header change would add.
        let diff = Path.join(dir.path, "needs-header.diff")
        try FileSystem.write(
            diff,
            "--- a/fs/proc/version.c\n+++ b/fs/proc/version.c\n@@ -12,7 +12,7 @@\n {\n \tseq_printf(m, linux_proc_banner,\n \t\tutsname()->sysname,\n-\t\tutsname()->release,\n+\t\tutsname()->suture_release,\n \t\tutsname()->version);\n \treturn 0;\n }\n"
        )
        try Self.refuse(
            [diff], code: "build-unsupported-change",
            mentions: ["version_proc_show", "suture_release", "Hint:", "header", "belongs in the diff"])
    }

    @Test func diffForANearbyKernelSuggestsFuzz() throws {
        try Self.refuse(
            [Path.join(Self.fixtures, "fuzz-context/patch.diff")], code: "build-diff-does-not-apply",
            mentions: ["fs/proc/version.c", "Hunk #1 FAILED", "--fuzz"])
    }

    @Test func missingDiffIsAnError() throws {
        try Self.refuse(["/nonexistent/fix.diff"], code: "build-io", mentions: ["/nonexistent/fix.diff"])
    }
}

extension String {
    func replacingFirst(_ old: String, with new: String) -> String {
        guard let range = firstRange(of: old) else { return self }
        var copy = self
        copy.replaceSubrange(range, with: new)
        return copy
    }
}

/// Refusals specific to module code.
@Suite(.serialized) struct ModuleRefusalTests {
    @Test func jumpLabelOnTheModulesOwnKeyIsRefused() throws {
        try BuildRefusalTests.refuse(
            [Path.join(BuildRefusalTests.fixtures, "module-static-key/patch.diff")],
            code: "build-refused",
            mentions: ["nft_do_chain: a jump label", "nft_trace_enabled", "nf_tables", "static_key_enabled"],
            refusals: [
                ("net/netfilter/nf_tables_core.o", "nft_do_chain", "nft_trace_enabled"),
                ("net/netfilter/nf_tables_core.o", "nft_do_chain", "nft_counters_enabled"),
            ])
    }

    /// sunrpc.ko has `__already_done.11` twice and no STT_FILE symbols. The
    /// shipped module's own relocation in svc_xprt_received (`.data.once+5`
    /// of a `cmpb $0`, so `.data.once+10`) names the second, which is at
    /// `.data.once+10` (checked with readelf -rs).
    @Test func existingOnceFlagThatItsModuleHasTwice() throws {
        let dir = try TemporaryDirectory(prefix: "suture-once")
        defer { dir.remove() }
        let run = try Command.run(
            [
                try SutureBinary.checked(), "build", "--json", "-o", dir.path,
                Path.join(BuildRefusalTests.fixtures, "module-duplicate-once/patch.diff"),
            ], timeout: 600)
        try #require(run.termination == .exited(0), "\(run.stdoutText)\(run.stderrText)")
        let klp = try JSON.parse(run.stdout)["objects"]?[0]?["klpSymbols"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(klp.contains(".klp.sym.sunrpc.__already_done.11,2"), "\(klp)")
    }

    @Test func moduleNotInTheConfigurationIsAnError() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let kernel = try KernelResolver().defaultTarget()
        let tree = try TreeCache().prepare(kernel).tree
        let original = try FileSystem.readText(Path.join(tree.sourceDirectory, "fs/cramfs/inode.c"))
        let patched = original.replacingFirst("static int cramfs_statfs(", with: "static noinline int cramfs_statfs(")
        try #require(patched != original)
        let a = Path.join(dir.path, "a")
        let b = Path.join(dir.path, "b")
        try FileSystem.write(a, original)
        try FileSystem.write(b, patched)
        let diff = try Command.run([
            "diff", "-u", "--label", "a/fs/cramfs/inode.c", "--label", "b/fs/cramfs/inode.c", a, b,
        ])
        let path = Path.join(dir.path, "cramfs.diff")
        try FileSystem.write(path, diff.stdout)
        try BuildRefusalTests.refuse(
            [path], code: "build-unsupported-change", mentions: ["fs/cramfs/inode.o", "CONFIG_CRAMFS"])
    }
}
