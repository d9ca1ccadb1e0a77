// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import Synchronization
import TargetKernel

/// Kernel modules the tests load in the guest, built once per test process
/// against the target kernel's headers with kbuild:
/// - `test_klp_livepatch`, from the kernel's own `lib/livepatch/`, taken
///   out of the target's source tarball (`KernelRelease.sourceTarball`);
/// - the C fixtures in `Fixtures/modules/`.
enum TestModules {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/modules").path

    private static let cache = Mutex<[String: [UInt8]]?>(nil)

    /// Module name → `.ko` bytes.
    static func built() throws -> [String: [UInt8]] {
        try cache.withLock { cached in
            if let cached { return cached }
            let modules = try build(try KernelResolver().resolve(nil))
            cached = modules
            return modules
        }
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        guard let bytes = try built()[name] else { throw IntegrationError("module \(name) was not built") }
        return bytes
    }

    private static func build(_ release: KernelRelease) throws -> [String: [UInt8]] {
        guard let headers = release.headers else {
            throw IntegrationError("no headers for \(release.release): install linux-headers-\(release.release)")
        }
        guard let tarball = release.matchingSourceTarball ?? release.sourceTarball else {
            throw IntegrationError("no \(release.sourcePackage) tarball: install \(release.sourcePackage)")
        }
        let directory = try TemporaryDirectory(prefix: "suture-test-modules")
        defer { directory.remove() }
        // The tarball's top directory is the source package's name.
        let member = "\(release.sourcePackage)/lib/livepatch/test_klp_livepatch.c"
        let source = try Command.run(["tar", "-xJf", tarball, "--occurrence=1", "-O", member])
        guard source.termination.succeeded, !source.stdout.isEmpty else {
            throw IntegrationError("extract \(member) from \(tarball): \(source.stderrText)")
        }
        try FileSystem.write(Path.join(directory.path, "test_klp_livepatch.c"), source.stdout)
        var objects = ["test_klp_livepatch.o"]
        for name in try FileSystem.list(fixtures) where name.hasSuffix(".c") {
            try FileSystem.copyFile(Path.join(fixtures, name), Path.join(directory.path, name))
            objects.append(String(name.dropLast(2)) + ".o")
        }
        try FileSystem.write(Path.join(directory.path, "Kbuild"), "obj-m := \(objects.joined(separator: " "))\n")
        let make = try Command.run(["make", "-C", headers, "M=\(directory.path)", "-j2", "modules"])
        guard make.termination.succeeded else {
            throw IntegrationError("kbuild failed:\n\(Command.tail(make.stdoutText + make.stderrText, lines: 40))")
        }
        var modules: [String: [UInt8]] = [:]
        for object in objects {
            let name = String(object.dropLast(2))
            modules[name] = try FileSystem.read(Path.join(directory.path, name + ".ko"))
        }
        return modules
    }
}
