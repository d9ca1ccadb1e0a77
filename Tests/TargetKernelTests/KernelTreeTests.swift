// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel
import Testing

/// Real prepared trees and workspaces on them. Serialized: each test keeps
/// both cores busy, and they share the one prepared tree of the default
/// target (prepared once per cache, reused by later runs and issues).
@Suite(.serialized) struct KernelTreeTests {
    @Test func theInstalledDebianKernelIsPreparedFromItsOwnSource() throws {
        let kernel = try SharedTree.kernel()
        let tree = try SharedTree.tree()
        let version = try #require(kernel.packageVersion)
        #expect(
            tree.origin
                == .installedPackage(
                    package: kernel.sourcePackage, version: version,
                    tarball: try #require(kernel.matchingSourceTarball)))
        #expect(tree.upstreamVersion == kernel.upstreamVersion)
        #expect(tree.path == Path.join(SharedTree.cache.treesDirectory, try SharedTree.cache.key(for: kernel)))
        #expect(tree.compiler.matches)
        #expect(tree.kbuild.compiler == String(try #require(kernel.compiler?.split(separator: " ").first)))
        // Every symbol of the shipped config keeps its value (pahole decides
        // the BTF ones, so dwarves must be installed).
        #expect(tree.configDrift.isEmpty, "\(tree.configDrift)")
        let shipped = try KernelConfig(path: try #require(kernel.config))
        let config = try tree.config()
        for (name, value) in shipped.values { #expect(config[name] == value, "CONFIG_\(name)") }
        #expect(config["LIVEPATCH"] == .yes)
        // kbuild got the distro's release string and compiler.
        let uts = try FileSystem.readText(Path.join(tree.buildDirectory, "include/generated/utsrelease.h"))
        #expect(uts.contains("\"\(kernel.release)\""))
        let compileH = try FileSystem.readText(Path.join(tree.buildDirectory, "include/generated/compile.h"))
        #expect(compileH.contains(try #require(kernel.compiler)))
        // Read-only and pristine; a second prepare reuses it at once.
        #expect(try FileSystem.status(Path.join(tree.sourceDirectory, "Makefile")).st_mode & 0o222 == 0)
        #expect(try FileSystem.status(Path.join(tree.sourceDirectory, "kernel")).st_mode & 0o222 == 0)
        #expect(try tree.verify().isEmpty)
        let started = Clock.now()
        let again = try SharedTree.cache.prepare(kernel)
        #expect(again.reused)
        #expect(Clock.now() - started < 2)
    }

    @Test func anOlderKernelGetsTheSourceOfItsOwnVersionFromTheArchive() throws {
        let resolver = KernelResolver()
        let target = try SharedTree.kernel()
        let older = resolver.installed().filter {
            $0.livepatch && $0.release != target.release
                && DebianVersion($0.packageVersion ?? "0") < DebianVersion(target.packageVersion ?? "0")
        }
        let kernel = try #require(
            older.first, "no older kernel image is installed; run scripts/install-older-kernel.sh")
        let version = try #require(kernel.packageVersion)
        // The installed source is the current kernel's, so it must be fetched.
        #expect(kernel.matchingSourceTarball == nil)
        let outcome = try SharedTree.cache.prepare(kernel)
        let tree = outcome.tree
        #expect(tree.origin == .downloadedPackage(package: kernel.sourcePackage, version: version))
        #expect(tree.upstreamVersion == kernel.upstreamVersion)
        #expect(try tree.verify().isEmpty)
        #expect(entries(tree.path) == ["manifest", "source", "tree.json"])
        let uts = try FileSystem.readText(Path.join(tree.buildDirectory, "include/generated/utsrelease.h"))
        #expect(uts.contains("\"\(kernel.release)\""))
        // Nothing was installed: the source package is still the current one's.
        #expect(KernelResolver().describe(kernel.release).sourceVersion == kernel.sourceVersion)
        // Only this kernel's: other suites may be preparing other kernels in the shared cache meanwhile.
        let key = try SharedTree.cache.key(for: kernel)
        #expect(!entries(SharedTree.cache.treesDirectory).contains { $0.hasPrefix(".\(key).partial-") })
    }

    @Test func meminfoBuildsByteIdenticalToTheShippedKernel() throws {
        let kernel = try SharedTree.kernel()
        let tree = try SharedTree.tree()
        let object = "fs/proc/meminfo.o"
        let section = ".text.meminfo_proc_show"
        let scratch = try TemporaryDirectory(prefix: "suture-meminfo")

        let workspace = try Workspace(tree: tree)
        let pristinePath = try #require(try workspace.compile([object])[object])
        let pristineCopy = Path.join(scratch.path, "pristine.o")
        try FileSystem.copyFile(pristinePath, pristineCopy)
        // kbuild's own record: the command line and the compiler's dependencies.
        let record = try workspace.commandFile(for: object)
        #expect(record.source == "fs/proc/meminfo.c")
        #expect(record.command.hasPrefix("\(tree.kbuild.compiler) "))
        #expect(record.command.contains("-ffunction-sections -fdata-sections"))
        #expect(record.command.contains("-DKBUILD_MODNAME='\"proc\"'"))
        #expect(record.dependencies.contains("include/linux/seq_file.h"))
        #expect(try workspace.compileCommand(for: object) == record.command)

        // A small change to the function's code.
        let source = String(decoding: try workspace.read("fs/proc/meminfo.c"), as: UTF8.self)
        let opening = "static int meminfo_proc_show(struct seq_file *m, void *v)\n{\n"
        try #require(source.contains(opening))
        let changedSource = source.replacingFirst(opening, with: opening + "\tseq_puts(m, \"Suture: 1\\n\");\n")
        try workspace.write("fs/proc/meminfo.c", Array(changedSource.utf8))
        let changedPath = try #require(try workspace.compile([object])[object])
        let changedCopy = Path.join(scratch.path, "changed.o")
        try FileSystem.copyFile(changedPath, changedCopy)
        try workspace.remove()
        #expect(!FileSystem.exists(workspace.path))

        // The shipped image's code, uncompressed with the tree's own script.
        let vmlinux = Path.join(scratch.path, "vmlinux")
        let extract = try Command.run([
            "sh", "-c", "\"$0\" \"$1\" > \"$2\"",
            Path.join(tree.sourceDirectory, "scripts/extract-vmlinux"), kernel.image, vmlinux,
        ])
        try #require(extract.termination.succeeded, "extract-vmlinux: \(extract.stderrText)")
        let image = try FileSystem.read(vmlinux)

        let pristine = try MaskedCode(object: pristineCopy, section: section)
        #expect(pristine.bytes.count > 1000)
        #expect(pristine.known.contains(false), "expected relocation fields in \(section)")
        #expect(pristine.matches(in: image).count == 1, "the unchanged function must occur exactly once in vmlinux")
        let changed = try MaskedCode(object: changedCopy, section: section)
        #expect(changed.bytes != pristine.bytes)
        #expect(changed.matches(in: image).isEmpty)
        #expect(try tree.verify().isEmpty)
    }

    @Test func includedFilesMapToTheObjectsThatCompileThem() throws {
        let tree = try SharedTree.tree()
        let workspace = try Workspace(tree: tree)
        #expect(try workspace.objects(compiling: "kernel/sched/rt.c") == ["kernel/sched/build_policy.o"])
        #expect(try workspace.objects(compiling: "kernel/sched/loadavg.c") == ["kernel/sched/build_utility.o"])
        #expect(try workspace.objects(compiling: "fs/proc/meminfo.c") == ["fs/proc/meminfo.o"])
        let missing = #expect(throws: KernelError.self) {
            try workspace.objects(compiling: "kernel/sched/nonexistent.c")
        }
        #expect(missing?.message.contains("kernel/sched/nonexistent.c") == true)
        let outside = #expect(throws: KernelError.self) { try workspace.objects(compiling: "../etc/passwd.c") }
        #expect(outside?.kind == .usage)
        try workspace.remove()
        #expect(try tree.verify().isEmpty)
    }

    /// A file of another architecture (the corpus's ARM-only `pata_icside`,
    /// whose `<asm/ecard.h>` x86 lacks) is named as its own unbuilt object,
    /// not preprocessed: the build can then say it is not built, instead
    /// of failing in the compiler. A built file's own object is not
    /// preprocessed either.
    @Test func aFileThisConfigurationDoesNotBuildIsNamedNotPreprocessed() throws {
        let tree = try SharedTree.tree()
        let config = try tree.config()
        let workspace = try Workspace(tree: tree)
        defer { try? workspace.remove() }
        let built: (String) -> Bool = { object in
            if case .notBuilt = KbuildMembership.of(object, tree: tree.sourceDirectory, config: config) { return false }
            return true
        }
        #expect(
            KbuildMembership.of("drivers/ata/pata_icside.o", tree: tree.sourceDirectory, config: config)
                == .notBuilt(option: "CONFIG_PATA_ICSIDE"))
        let found = try workspace.objects(compiling: ["drivers/ata/pata_icside.c"], keep: built)
        #expect(found["drivers/ata/pata_icside.c"] == ["drivers/ata/pata_icside.o"])
        // A file's own object needs no preprocessing, which fails where
        // the .o target has prerequisites the .i target lacks (aic7xxx's
        // generated aic7xxx_reg.h).
        #expect(
            try workspace.objects(compiling: ["drivers/scsi/aic7xxx/aic7xxx_pci.c"], keep: built)[
                "drivers/scsi/aic7xxx/aic7xxx_pci.c"] == ["drivers/scsi/aic7xxx/aic7xxx_pci.o"])
        #expect(
            try workspace.objects(compiling: ["fs/proc/meminfo.c"], keep: built)["fs/proc/meminfo.c"] == [
                "fs/proc/meminfo.o"
            ])
        // An included file is still confirmed by the compiler.
        #expect(
            try workspace.objects(compiling: ["kernel/sched/rt.c"], keep: built)["kernel/sched/rt.c"] == [
                "kernel/sched/build_policy.o"
            ])
    }

    @Test func aReplacedIncludedFileIsWhatTheUnitCompilesAndFailuresLeaveTheTreePristine() throws {
        let tree = try SharedTree.tree()
        let workspace = try Workspace(tree: tree)
        let rt = try workspace.read("kernel/sched/rt.c")
        try workspace.write("kernel/sched/rt.c", Array("#error suture-overlay-marker\n".utf8) + rt)
        #expect(workspace.replacedFiles == ["kernel/sched/rt.c"])
        // Only the path to the replaced file became real folders.
        #expect(FileSystem.kind(Path.join(workspace.sourceDirectory, "kernel")) == .directory)
        #expect(FileSystem.kind(Path.join(workspace.sourceDirectory, "kernel/sched/core.c")) == .symlink)
        #expect(FileSystem.kind(Path.join(workspace.sourceDirectory, "fs")) == .symlink)
        let failure = #expect(throws: KernelError.self) { try workspace.compile(["kernel/sched/build_policy.i"]) }
        #expect(failure?.kind == .compileFailed)
        #expect(failure?.message.contains("suture-overlay-marker") == true, "\(failure?.message ?? "")")
        #expect(try tree.verify().isEmpty)
        // The pristine file is untouched.
        #expect(try FileSystem.read(Path.join(tree.sourceDirectory, "kernel/sched/rt.c")) == rt)
        try workspace.remove()
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        return String(self[..<range.lowerBound]) + replacement + String(self[range.upperBound...])
    }
}
