// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel

/// A fake file-system root with `/boot`, `/lib/modules`, `/usr/src` and a
/// dpkg status file, for resolver tests that must not depend on what this
/// machine has installed.
final class FakeRoot {
    let directory: TemporaryDirectory
    private var packages: [(name: String, version: String)] = []

    init() throws {
        directory = try TemporaryDirectory(prefix: "suture-fake-root")
        try FileSystem.makeDirectories(Path.join(directory.path, "boot"))
        try FileSystem.makeDirectories(Path.join(directory.path, "var/lib/dpkg"))
        try writeStatus()
    }

    var path: String { directory.path }

    /// Adds `/boot/vmlinuz-RELEASE` and, as asked, its config, modules
    /// folder, headers (through an absolute `build` symlink, as Debian
    /// ships it) and image package.
    func addKernel(
        _ release: String, packageVersion: String?, livepatch: Bool = true, config: Bool = true,
        headers: Bool = true, compiler: String = "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"
    ) throws {
        try FileSystem.write(Path.join(path, "boot/vmlinuz-\(release)"), "not really a kernel\n")
        if config {
            let text = """
                CONFIG_CC_VERSION_TEXT="\(compiler)"
                CONFIG_MODULES=y
                \(livepatch ? "CONFIG_LIVEPATCH=y" : "# CONFIG_LIVEPATCH is not set")
                CONFIG_XFS_FS=m

                """
            try FileSystem.write(Path.join(path, "boot/config-\(release)"), text)
        }
        let modules = Path.join(path, "lib/modules/\(release)")
        try FileSystem.makeDirectories(modules)
        if headers {
            // Path.join restarts at an absolute part: keep these relative.
            let headersDir = "usr/src/linux-headers-\(release)"
            try FileSystem.makeDirectories(Path.join(path, headersDir, "include/generated"))
            try FileSystem.write(
                Path.join(path, headersDir, "include/generated/compile.h"),
                """
                #define UTS_MACHINE "x86_64"
                #define LINUX_COMPILE_BY "debian-kernel"
                #define LINUX_COMPILE_HOST "lists.debian.org"
                #define LINUX_COMPILER "\(compiler), GNU ld (GNU Binutils for Debian) 2.40"

                """)
            // Absolute, as Debian ships it: the resolver reads it inside the root.
            try FileSystem.symlink(target: "/" + headersDir, at: Path.join(modules, "build"))
        }
        if let packageVersion { try addPackage("linux-image-\(release)", packageVersion) }
    }

    /// Installs a fake `linux-source-SERIES` of `version`, with its tarball.
    func addSource(series: String, version: String) throws {
        try FileSystem.makeDirectories(Path.join(path, "usr/src"))
        try FileSystem.write(Path.join(path, "usr/src/linux-source-\(series).tar.xz"), "fake\n")
        try addPackage("linux-source-\(series)", version)
    }

    func addPackage(_ name: String, _ version: String) throws {
        packages.append((name, version))
        try writeStatus()
    }

    private func writeStatus() throws {
        var text = "Package: base-files\nStatus: install ok installed\nVersion: 12.4\n\n"
        // A package that was removed but whose config files remain is not installed.
        text += "Package: linux-image-6.1.0-1-amd64\nStatus: deinstall ok config-files\nVersion: 6.1.4-1\n\n"
        for p in packages {
            text +=
                "Package: \(p.name)\nStatus: install ok installed\nPriority: optional\nVersion: \(p.version)\nDescription: fake\n\n"
        }
        try FileSystem.write(Path.join(path, "var/lib/dpkg/status"), text)
    }

    /// `ROOT/var/cache/suture/kernels`: where the fake root's resolver finds fetched kernels.
    var catalog: String { Path.join(path, "var/cache/suture/kernels") }

    /// A kernel as `suture kernel fetch` leaves it: unpacked under the
    /// catalog with its own boot/, lib/modules/, usr/src/ and package record.
    @discardableResult
    func addFetched(
        _ release: String, version: String, suite: String = "trixie", source: Bool = true,
        compiler: String = "x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0"
    ) throws -> String {
        let dir = Path.join(catalog, release)
        try FileSystem.makeDirectories(Path.join(dir, "boot"))
        try FileSystem.write(Path.join(dir, "boot/vmlinuz-\(release)"), "not really a kernel\n")
        try FileSystem.write(
            Path.join(dir, "boot/config-\(release)"), "CONFIG_CC_VERSION_TEXT=\"\(compiler)\"\nCONFIG_LIVEPATCH=y\n")
        let modules = Path.join(dir, "lib/modules/\(release)")
        try FileSystem.makeDirectories(modules)
        let headers = "usr/src/linux-headers-\(release)"
        try FileSystem.makeDirectories(Path.join(dir, headers, "include"))
        try FileSystem.symlink(target: "/" + headers, at: Path.join(modules, "build"))
        var packages = [("linux-image-\(release)", version), ("linux-headers-\(release)", version)]
        let series = release.split(separator: ".").prefix(2).joined(separator: ".")
        if source {
            try FileSystem.write(Path.join(dir, "usr/src/linux-source-\(series).tar.xz"), "fake\n")
            packages.append(("linux-source-\(series)", version))
        }
        let record = KernelCatalog.Record(release: release, suite: suite, version: version, packages: packages)
        try FileSystem.write(Path.join(dir, KernelCatalog.recordName), record.text)
        return dir
    }

    func resolver(running: String = "6.18.0-test") -> KernelResolver {
        KernelResolver(root: path, runningRelease: running)
    }
}
