// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel
import Testing

/// A build that finds the pristine tree changed says "run `suture kernel
/// prepare` to restore it"; `prepare` must then verify the tree and prepare
/// it again, not answer "already prepared". The damage here is the one a
/// hostile diff name once caused: a file rewritten with the same bytes,
/// which only its times betray.
@Suite struct TreeRepairTests {
    @Test func aFileRewrittenWithTheSameBytesIsRepairedByPrepare() throws {
        let kernel = try SharedTree.kernel()
        let dir = try TemporaryDirectory(prefix: "suture-repair")
        defer { dir.remove() }
        let tarball = try StandIn.tarball(version: try #require(kernel.upstreamVersion), in: dir.path)
        let cache = TreeCache(root: Path.join(dir.path, "cache"))
        let tree = try cache.prepare(kernel, source: tarball).tree

        let readme = Path.join(tree.sourceDirectory, "README")
        let bytes = try FileSystem.read(readme)
        try FileSystem.setMode(readme, 0o644)
        Clock.sleep(seconds: 0.01)
        try FileSystem.write(readme, bytes)
        try FileSystem.setMode(readme, 0o444)
        let error = #expect(throws: KernelError.self) { try tree.requirePristine(after: "suture build") }
        #expect(error?.message.contains("suture kernel prepare") == true)
        #expect(error?.message.contains("README") == true)

        let repaired = try cache.prepare(kernel, source: tarball)
        #expect(!repaired.reused, "prepare answered 'already prepared' for a damaged tree")
        #expect(try repaired.tree.verify().isEmpty)
        try repaired.tree.requirePristine()
        #expect(try FileSystem.read(Path.join(repaired.tree.sourceDirectory, "README")) == bytes)
    }
}
