// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import Synchronization
import TargetKernel
import TestSupport

/// Builds out-of-tree kernel modules against a kernel's headers with
/// kbuild (`make -C /lib/modules/RELEASE/build M=DIR`), one object per C
/// file, all in one make run.
enum KernelModuleBuild {
    /// C file name → source; returns module name → `.ko` bytes.
    static func build(_ sources: [String: [UInt8]], for release: KernelRelease) throws -> [String: [UInt8]] {
        guard let headers = release.headers else {
            throw TestError("no headers for \(release.release): install linux-headers-\(release.release)")
        }
        let directory = try TemporaryDirectory(prefix: "suture-test-modules")
        defer { directory.remove() }
        var objects: [String] = []
        for (name, text) in sources.sorted(by: { $0.key < $1.key }) where name.hasSuffix(".c") {
            try FileSystem.write(Path.join(directory.path, name), text)
            objects.append(String(name.dropLast(2)) + ".o")
        }
        try FileSystem.write(Path.join(directory.path, "Kbuild"), "obj-m := \(objects.joined(separator: " "))\n")
        let make = try Command.run(["make", "-C", headers, "M=\(directory.path)", "-j2", "modules"])
        guard make.termination.succeeded else {
            throw TestError("kbuild failed:\n\(Command.tail(make.stdoutText + make.stderrText, lines: 40))")
        }
        var modules: [String: [UInt8]] = [:]
        for object in objects {
            let name = String(object.dropLast(2))
            modules[name] = try FileSystem.read(Path.join(directory.path, name + ".ko"))
        }
        return modules
    }

    /// A file of the kernel's own source tree, from the target's source
    /// tarball (`linux-source-X.Y.tar.xz`, whose top folder is the package
    /// name), e.g. `lib/livepatch/test_klp_livepatch.c`.
    static func kernelSource(_ path: String, of release: KernelRelease) throws -> [UInt8] {
        guard let tarball = release.matchingSourceTarball ?? release.sourceTarball else {
            throw TestError("no \(release.sourcePackage) tarball: install \(release.sourcePackage)")
        }
        let member = "\(release.sourcePackage)/\(path)"
        let source = try Command.run(["tar", "-xJf", tarball, "--occurrence=1", "-O", member])
        guard source.termination.succeeded, !source.stdout.isEmpty else {
            throw TestError("extract \(member) from \(tarball): \(source.stderrText)")
        }
        return source.stdout
    }
}

/// The modules this issue's tests load, built once per test process for
/// the target kernel: `test_klp_livepatch` from the kernel's own
/// `lib/livepatch/`, and the C fixtures in `Fixtures/modules/`.
enum TestModules {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/modules").path

    private static let cache = Mutex<[String: [UInt8]]?>(nil)

    static func bytes(_ name: String) throws -> [UInt8] {
        let all = try cache.withLock { cached in
            if let cached { return cached }
            let release = try KernelResolver().resolve(nil)
            var sources = [
                "test_klp_livepatch.c": try KernelModuleBuild.kernelSource(
                    "lib/livepatch/test_klp_livepatch.c", of: release)
            ]
            for name in try FileSystem.list(fixtures) where name.hasSuffix(".c") {
                sources[name] = try FileSystem.read(Path.join(fixtures, name))
            }
            let built = try KernelModuleBuild.build(sources, for: release)
            cached = built
            return built
        }
        guard let bytes = all[name] else { throw TestError("module \(name) was not built") }
        return bytes
    }
}
