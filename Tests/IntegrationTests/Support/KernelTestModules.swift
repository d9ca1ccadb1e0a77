// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import Synchronization
import TargetKernel
import TestSupport

/// The kernel's own livepatch test modules, `lib/livepatch/test_klp_*.c`
/// of the target's Debian source tarball: `test_klp_livepatch`,
/// `test_klp_atomic_replace`, `test_klp_callbacks_{demo,demo2,mod,busy}`,
/// `test_klp_shadow_vars` and `test_klp_state{,2,3}`.
///
/// Built out of tree against the installed headers (the Debian kernel has
/// no CONFIG_TEST_LIVEPATCH), all in one kbuild run of about 14 s, once per
/// test process and release.
enum KernelTestModules {
    private static let cache = Mutex<[String: [String: [UInt8]]]>([:])

    /// Module name → `.ko` bytes, for `release` or the default target.
    static func all(for release: KernelRelease? = nil) throws -> [String: [UInt8]] {
        let release = try release ?? KernelResolver().defaultTarget()
        return try cache.withLock { cache in
            if let built = cache[release.release] { return built }
            let built = try KernelModuleBuild.build(try sources(of: release), for: release)
            cache[release.release] = built
            return built
        }
    }

    static func bytes(_ name: String, for release: KernelRelease? = nil) throws -> [UInt8] {
        guard let bytes = try all(for: release)[name] else {
            throw TestError("\(name) is not among the kernel's livepatch test modules")
        }
        return bytes
    }

    /// File name → source of every `lib/livepatch/test_klp_*.c` in the tarball.
    static func sources(of release: KernelRelease) throws -> [String: [UInt8]] {
        guard let tarball = release.matchingSourceTarball ?? release.sourceTarball else {
            throw TestError(
                "no \(release.sourcePackage) tarball for \(release.release): install \(release.sourcePackage)")
        }
        let directory = try TemporaryDirectory(prefix: "suture-klp-sources")
        defer { directory.remove() }
        let tar = try Command.run([
            "tar", "-xJf", tarball, "-C", directory.path, "--wildcards", "*/lib/livepatch/test_klp_*.c",
        ])
        guard tar.termination.succeeded else {
            throw TestError("extract lib/livepatch/test_klp_*.c from \(tarball): \(tar.stderrText)")
        }
        var sources: [String: [UInt8]] = [:]
        for top in try FileSystem.list(directory.path) {
            let folder = Path.join(directory.path, top, "lib/livepatch")
            for name in (try? FileSystem.list(folder)) ?? [] where name.hasPrefix("test_klp_") && name.hasSuffix(".c") {
                sources[name] = try FileSystem.read(Path.join(folder, name))
            }
        }
        guard sources["test_klp_livepatch.c"] != nil else {
            throw TestError("\(tarball) has no lib/livepatch/test_klp_livepatch.c")
        }
        return sources
    }
}
