// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Everything Suture knows about one installed kernel release: where its
/// image, config, headers and modules are, which Debian package and
/// compiler built it, and whether the matching source is installed.
public struct KernelRelease: Sendable, Equatable {
    /// The release string, as `uname -r` prints it: `6.1.0-57-amd64`.
    public let release: String
    /// `/boot/vmlinuz-RELEASE`.
    public let image: String
    /// `/boot/config-RELEASE`, if present.
    public let config: String?
    /// `/lib/modules/RELEASE`, if present.
    public let modulesDirectory: String?
    /// The headers tree (`/lib/modules/RELEASE/build`), if present.
    public let headers: String?
    /// The image's package, e.g. `linux-image-6.1.0-57-amd64`.
    public let imagePackage: String?
    /// The image package's Debian version, e.g. `6.1.192-3`.
    public let packageVersion: String?
    /// `CONFIG_LIVEPATCH=y` in the config.
    public let livepatch: Bool
    /// The compiler that built the kernel, from the headers' `compile.h`
    /// (or the config's `CONFIG_CC_VERSION_TEXT`).
    public let compiler: String?
    /// `linux-source-X.Y` for this release.
    public let sourcePackage: String
    /// The installed version of `sourcePackage`, if any.
    public let sourceVersion: String?
    /// `/usr/src/linux-source-X.Y.tar.xz`, if installed (any version).
    public let sourceTarball: String?
    /// Whether this is the kernel the machine is running.
    public let isRunning: Bool
    /// For a kernel fetched by `suture kernel fetch`: its folder in the
    /// cache (`CACHE/kernels/RELEASE`), a root holding `boot/`, the modules
    /// and `usr/src/`. Nil for a kernel installed on this machine.
    public let catalogDirectory: String?

    public init(
        release: String, image: String, config: String?, modulesDirectory: String?, headers: String?,
        imagePackage: String?, packageVersion: String?, livepatch: Bool, compiler: String?,
        sourcePackage: String, sourceVersion: String?, sourceTarball: String?, isRunning: Bool,
        catalogDirectory: String? = nil
    ) {
        self.release = release
        self.image = image
        self.config = config
        self.modulesDirectory = modulesDirectory
        self.headers = headers
        self.imagePackage = imagePackage
        self.packageVersion = packageVersion
        self.livepatch = livepatch
        self.compiler = compiler
        self.sourcePackage = sourcePackage
        self.sourceVersion = sourceVersion
        self.sourceTarball = sourceTarball
        self.isRunning = isRunning
        self.catalogDirectory = catalogDirectory
    }

    /// Whether the kernel was fetched into the cache rather than installed.
    public var isFetched: Bool { catalogDirectory != nil }

    /// The same kernel, marked as fetched into `directory`.
    public func fetched(into directory: String) -> KernelRelease {
        KernelRelease(
            release: release, image: image, config: config, modulesDirectory: modulesDirectory,
            headers: headers, imagePackage: imagePackage, packageVersion: packageVersion,
            livepatch: livepatch, compiler: compiler, sourcePackage: sourcePackage,
            sourceVersion: sourceVersion, sourceTarball: sourceTarball, isRunning: false,
            catalogDirectory: directory)
    }

    /// The upstream version from the release, e.g. `6.1` from `6.1.0-57-amd64`.
    public var series: String { KernelRelease.series(of: release) }

    /// The installed source tarball when its package version equals the
    /// image's, the only case in which it reproduces the shipped code.
    public var matchingSourceTarball: String? {
        guard let sourceTarball, let sourceVersion, let packageVersion,
            DebianVersion(sourceVersion) == DebianVersion(packageVersion)
        else { return nil }
        return sourceTarball
    }

    public var hasHeaders: Bool { headers != nil }

    /// The compiler's Debian program name, e.g. `gcc-14` for
    /// `x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0`.
    public var compilerName: String? {
        guard let first = compiler?.split(separator: " ").first else { return nil }
        var name = String(first)
        if let triplet = name.firstRange(of: "-linux-gnu-") { name = String(name[triplet.upperBound...]) }
        return name
    }

    /// The upstream kernel version the package was built from, e.g.
    /// `6.1.192` from package version `6.1.192-3`: epoch, Debian revision
    /// and suffixes such as `~bpo12+1` or `+deb12u1` removed.
    public var upstreamVersion: String? {
        guard let packageVersion else { return nil }
        return KernelRelease.upstream(of: packageVersion)
    }

    static func upstream(of packageVersion: String) -> String {
        let upstream = DebianVersion(packageVersion).upstream
        return String(upstream.prefix { $0.isNumber || $0 == "." })
    }

    /// What is missing for Suture to build patches for this kernel, in
    /// words: `config`, `headers`, `livepatch`, `source`.
    public var missingPieces: [String] {
        var missing: [String] = []
        if config == nil { missing.append("config") }
        if headers == nil { missing.append("headers") }
        if !livepatch { missing.append("livepatch") }
        if matchingSourceTarball == nil { missing.append("source") }
        return missing
    }

    /// The same release with its image at another path (`--kernel PATH`).
    public func withImage(_ path: String) -> KernelRelease {
        KernelRelease(
            release: release, image: path, config: config, modulesDirectory: modulesDirectory,
            headers: headers, imagePackage: imagePackage, packageVersion: packageVersion,
            livepatch: livepatch, compiler: compiler, sourcePackage: sourcePackage,
            sourceVersion: sourceVersion, sourceTarball: sourceTarball, isRunning: isRunning,
            catalogDirectory: catalogDirectory)
    }

    static func series(of release: String) -> String {
        let parts = release.split(separator: ".", maxSplits: 2)
        guard parts.count >= 2 else { return release }
        let minor = parts[1].prefix { $0.isNumber }
        return "\(parts[0]).\(minor)"
    }

    /// The JSON shape of `suture kernel list`.
    public func json(isDefault: Bool) -> JSON {
        .object([
            ("release", .string(release)),
            ("image", .string(image)),
            ("packageVersion", .optional(packageVersion)),
            ("livepatch", .bool(livepatch)),
            ("compiler", .optional(compiler)),
            ("config", .optional(config)),
            ("headers", .optional(headers)),
            ("modules", .optional(modulesDirectory)),
            ("sourcePackage", .string(sourcePackage)),
            ("sourceVersion", .optional(sourceVersion)),
            ("sourceTarball", .optional(sourceTarball)),
            ("sourceMatches", .bool(matchingSourceTarball != nil)),
            ("running", .bool(isRunning)),
            ("fetched", .optional(catalogDirectory)),
            ("default", .bool(isDefault)),
            ("missing", .strings(missingPieces)),
        ])
    }
}
