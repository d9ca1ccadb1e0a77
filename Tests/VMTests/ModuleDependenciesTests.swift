// SPDX-License-Identifier: GPL-2.0-only
import Testing
import VM

@Suite struct ModuleDependenciesTests {
    static let dep = """
        kernel/fs/xfs/xfs.ko.zst: kernel/lib/libcrc32c.ko.zst
        kernel/lib/libcrc32c.ko.zst:
        kernel/crypto/crc32c_generic.ko.zst:
        kernel/arch/x86/crypto/crc32c-intel.ko.zst:
        kernel/fs/binfmt_misc.ko.zst:
        kernel/a.ko: kernel/b.ko kernel/c.ko
        kernel/b.ko: kernel/c.ko
        kernel/c.ko:
        kernel/snd-hda-intel.ko:
        not a module line
        """
    static let softdep = """
        # Soft dependencies extracted from modules themselves.
        softdep libcrc32c pre: crc32c
        softdep c post: missing-thing
        """
    static let alias = """
        alias crc32c crc32c_intel
        alias crc32c crc32c_generic
        alias pci:v*d* b
        """

    let graph = ModuleDependencies(modulesDep: dep, softdep: softdep, alias: alias)

    @Test func namesComeFromPaths() {
        #expect(ModuleDependencies.moduleName(ofPath: "kernel/fs/xfs/xfs.ko.zst") == "xfs")
        #expect(ModuleDependencies.moduleName(ofPath: "kernel/snd-hda-intel.ko") == "snd_hda_intel")
        #expect(ModuleDependencies.moduleName(ofPath: "x.ko.xz") == "x")
        #expect(ModuleDependencies.uncompressedPath("kernel/a/b.ko.zst") == "kernel/a/b.ko")
        #expect(ModuleDependencies.uncompressedPath("kernel/a/b.ko.gz") == "kernel/a/b.ko")
        #expect(ModuleDependencies.uncompressedPath("kernel/a/b.ko") == "kernel/a/b.ko")
        #expect(ModuleDependencies.Compression(path: "a.ko.zst") == .zstd)
        #expect(ModuleDependencies.Compression(path: "a.ko.xz") == .xz)
        #expect(ModuleDependencies.Compression(path: "a.ko") == .none)
    }

    @Test func dashAndUnderscoreAreTheSame() {
        #expect(graph.module(named: "snd_hda_intel")?.path == "kernel/snd-hda-intel.ko")
        #expect(graph.module(named: "snd-hda-intel")?.path == "kernel/snd-hda-intel.ko")
        #expect(graph.count == 9)
    }

    @Test func closureListsDependenciesFirstAndOnce() throws {
        let closure = try graph.closure(of: ["a", "b"]).map(\.name)
        #expect(closure == ["c", "b", "a"])
    }

    @Test func softDependenciesAreFollowedThroughAliases() throws {
        let closure = try graph.closure(of: ["xfs", "binfmt_misc"]).map(\.name)
        #expect(Set(closure) == ["xfs", "libcrc32c", "crc32c_intel", "crc32c_generic", "binfmt_misc"])
        let position = Dictionary(uniqueKeysWithValues: closure.enumerated().map { ($1, $0) })
        #expect(position["libcrc32c"]! < position["xfs"]!)
        #expect(position["crc32c_generic"]! < position["libcrc32c"]!)
    }

    @Test func unknownModuleIsAnError() {
        #expect(throws: VMError.self) { try graph.closure(of: ["nonexistent"]) }
    }

    @Test func danglingDependencyIsAnError() {
        let broken = ModuleDependencies(modulesDep: "kernel/a.ko: kernel/gone.ko\n")
        #expect(throws: VMError.self) { try broken.closure(of: ["a"]) }
    }

    @Test func cycleIsAnError() {
        let cyclic = ModuleDependencies(modulesDep: "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\n")
        #expect(throws: VMError.self) { try cyclic.closure(of: ["a"]) }
    }
}
