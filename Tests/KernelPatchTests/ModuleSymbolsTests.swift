// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import KernelPatch
import Platform
import TargetKernel
import Testing

/// A module's kallsyms order read from its file, whatever the compression.
@Suite struct ModuleSymbolsTests {
    @Test func compressedModulesGiveTheSameOrder() throws {
        let kernel = try KernelResolver().defaultTarget()
        let modules = try InstalledModules(kernel)
        let path = try #require(modules.path(of: "binfmt_misc"))
        let dir = NSTemporaryDirectory() + "suture-modsym-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plain = Path.join(dir, "binfmt_misc.ko")
        if path.hasSuffix(".ko") {
            try FileSystem.copyFile(path, plain)
        } else {
            let tool = path.hasSuffix(".xz") ? "xz" : "zstd"
            _ = try Command.output(["sh", "-c", "\(tool) -dc \"$0\" > \"$1\"", path, plain])
        }
        _ = try Command.output(["xz", "-k", plain])
        _ = try Command.output(["zstd", "-q", "-k", plain])
        let reference = try ModuleSymbols(module: "binfmt_misc", path: plain)
        #expect(reference.defines("bm_status_read") && reference.defines("enabled"))
        #expect(
            try reference.position(of: "bm_status_read", local: true, sourceFile: "fs/binfmt_misc.c", user: "test") == 0
        )
        for compressed in [plain + ".xz", plain + ".zst"] {
            let table = try ModuleSymbols(module: "binfmt_misc", path: compressed)
            #expect(table.entries.map(\.name) == reference.entries.map(\.name), "\(compressed)")
        }
        // Init code is not in kallsyms once the module runs.
        #expect(!reference.defines("init_misc_binfmt"))
    }

    @Test func unknownSymbolNamesTheModule() throws {
        let kernel = try KernelResolver().defaultTarget()
        let path = try #require(try InstalledModules(kernel).path(of: "binfmt_misc"))
        let table = try ModuleSymbols(module: "binfmt_misc", path: path)
        #expect(throws: BuildError.self) {
            try table.position(of: "no_such_symbol", local: true, sourceFile: nil, user: "test")
        }
        do {
            _ = try table.position(of: "no_such_symbol", local: true, sourceFile: nil, user: "the patch")
        } catch {
            #expect(error.description.contains("binfmt_misc") && error.description.contains("no_such_symbol"))
        }
    }
}
