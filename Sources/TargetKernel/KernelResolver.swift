// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The one place that decides which kernel a command targets.
///
/// The default is the running kernel when it has livepatch support and its
/// source and headers are installed; otherwise the newest installed kernel
/// with `CONFIG_LIVEPATCH=y`, newest by Debian version order. Every command
/// that takes `--kernel` goes through `resolve(_:)`. Kernels fetched into
/// the cache (`suture kernel fetch`, `KernelCatalog`) are accepted by name
/// or path, but never chosen as the default.
public struct KernelResolver: Sendable {
    /// The file-system root, `/` except in tests with fake `/boot` trees.
    public let root: String
    public let runningRelease: String
    public let dpkg: DpkgStatus
    /// Where fetched kernels live: `CACHE/kernels` (for a fake root,
    /// `ROOT/var/cache/suture/kernels`).
    public let catalog: String

    public init(root: String = "/", runningRelease: String? = nil, dpkg: DpkgStatus? = nil, catalog: String? = nil) {
        self.root = root
        self.runningRelease = runningRelease ?? Kernel.release()
        self.dpkg = dpkg ?? DpkgStatus(path: Path.join(root, "var/lib/dpkg/status"))
        self.catalog =
            catalog
            ?? (root == "/"
                ? CacheLocation.kernels(CacheLocation.root())
                : Path.join(root, "var/cache/suture/kernels"))
    }

    /// Every kernel fetched into the catalog, newest first.
    public func fetched() -> [KernelRelease] {
        let names = (try? FileSystem.list(catalog)) ?? []
        return names.filter { !$0.hasPrefix(".") }.compactMap { describeFetched($0) }.sorted(
            by: KernelResolver.newerFirst)
    }

    /// A fetched kernel, described from its folder: a root of its own with
    /// its package record as the dpkg status. Nil unless complete.
    public func describeFetched(_ release: String) -> KernelRelease? {
        guard !release.isEmpty, !release.contains("/"), !release.hasPrefix(".") else { return nil }
        let directory = Path.join(catalog, release)
        let record = Path.join(directory, KernelCatalog.recordName)
        guard FileSystem.exists(record) else { return nil }
        let inner = KernelResolver(
            root: directory, runningRelease: "", dpkg: DpkgStatus(path: record),
            catalog: Path.join(directory, ".none"))
        let kernel = inner.describe(release)
        guard FileSystem.exists(kernel.image) else { return nil }
        return kernel.fetched(into: directory)
    }

    private func path(_ p: String) -> String { Path.join(root, p) }

    /// Every kernel with an image in `/boot`, newest first.
    public func installed() -> [KernelRelease] {
        let names = (try? FileSystem.list(path("boot"))) ?? []
        let releases = names.compactMap { name -> String? in
            guard name.hasPrefix("vmlinuz-") else { return nil }
            return String(name.dropFirst("vmlinuz-".count))
        }
        return releases.map { describe($0) }.sorted(by: KernelResolver.newerFirst)
    }

    /// Newest first: package version in dpkg order, then release in dpkg order.
    static func newerFirst(_ a: KernelRelease, _ b: KernelRelease) -> Bool {
        let av = DebianVersion(a.packageVersion ?? "0")
        let bv = DebianVersion(b.packageVersion ?? "0")
        if av != bv { return av > bv }
        return DebianVersion(a.release) > DebianVersion(b.release)
    }

    /// Gathers what is installed for one release.
    public func describe(_ release: String) -> KernelRelease {
        let image = path("boot/vmlinuz-\(release)")
        let configPath = path("boot/config-\(release)")
        let config = FileSystem.exists(configPath) ? configPath : nil
        var modules = path("lib/modules/\(release)")
        if !FileSystem.isDirectory(modules), FileSystem.isDirectory(path("usr/lib/modules/\(release)")) {
            modules = path("usr/lib/modules/\(release)")
        }
        let headers = resolveInRoot(Path.join(modules, "build"))
        let configText = config.flatMap { FileSystem.readTextIfPresent($0) } ?? ""
        let parsed = KernelConfig(text: configText)
        var imagePackage: String?
        var packageVersion: String?
        for candidate in ["linux-image-\(release)", "linux-image-\(release)-unsigned"] {
            if let v = dpkg.version(of: candidate) {
                imagePackage = candidate
                packageVersion = v
                break
            }
        }
        let series = KernelRelease.series(of: release)
        let sourcePackage = "linux-source-\(series)"
        let tarballPath = path("usr/src/\(sourcePackage).tar.xz")
        return KernelRelease(
            release: release, image: image, config: config,
            modulesDirectory: FileSystem.isDirectory(modules) ? modules : nil,
            headers: headers, imagePackage: imagePackage, packageVersion: packageVersion,
            livepatch: parsed["LIVEPATCH"] == .yes,
            compiler: KernelResolver.compiler(headers: headers, config: parsed),
            sourcePackage: sourcePackage, sourceVersion: dpkg.version(of: sourcePackage),
            sourceTarball: FileSystem.exists(tarballPath) && !FileSystem.isDirectory(tarballPath) ? tarballPath : nil,
            isRunning: release == runningRelease)
    }

    /// Follows symlinks inside `root`: an absolute link target such as
    /// `/usr/src/linux-headers-…` means `ROOT/usr/src/…` in a fake tree.
    /// Returns nil when the path does not lead to a directory.
    func resolveInRoot(_ start: String) -> String? {
        var current = start
        for _ in 0..<16 {
            switch FileSystem.kind(current) {
            case .directory: return root == "/" ? ((try? FileSystem.realPath(current)) ?? current) : current
            case .symlink:
                guard let target = try? FileSystem.readLink(current) else { return nil }
                current =
                    target.hasPrefix("/")
                    ? path(String(target.drop { $0 == "/" }))
                    : Path.join(Path.directory(of: current), target)
            default: return nil
            }
        }
        return nil
    }

    /// The compiler that built the kernel: `LINUX_COMPILER` of the headers'
    /// `include/generated/compile.h` without its linker part, else the
    /// config's `CONFIG_CC_VERSION_TEXT`. For Debian 12 both say
    /// `gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0`.
    static func compiler(headers: String?, config: KernelConfig) -> String? {
        if let headers, let text = FileSystem.readTextIfPresent(Path.join(headers, "include/generated/compile.h")) {
            for line in text.split(separator: "\n") where line.hasPrefix("#define LINUX_COMPILER") {
                if let open = line.firstIndex(of: "\""), let close = line.lastIndex(of: "\""), open < close {
                    var value = String(line[line.index(after: open)..<close])
                    // "gcc-12 (…) 12.2.0, GNU ld (…) 2.40": keep the compiler part.
                    if let comma = value.firstRange(of: ", GNU ld") { value = String(value[..<comma.lowerBound]) }
                    return value
                }
            }
        }
        if case .value(let text) = config["CC_VERSION_TEXT"], !text.isEmpty { return text }
        return nil
    }

    /// The default target, as described on the type.
    public func defaultTarget() throws(KernelError) -> KernelRelease {
        let all = installed()
        if let running = all.first(where: { $0.isRunning }),
            running.livepatch, running.hasHeaders, running.matchingSourceTarball != nil
        {
            return running
        }
        guard let newest = all.first(where: { $0.livepatch }) else {
            if all.isEmpty {
                throw KernelError(
                    .noKernel,
                    "no kernel image in \(path("boot")); install linux-image-amd64 (the README's set-up does)")
            }
            throw KernelError(
                .noLivepatch,
                "none of the installed kernels (\(all.map(\.release).joined(separator: ", "))) has CONFIG_LIVEPATCH=y")
        }
        return newest
    }

    /// Resolves `--kernel RELEASE|PATH`; nil means the default target.
    ///
    /// A path names a kernel image such as `/boot/vmlinuz-6.1.0-57-amd64`
    /// (the release comes from its name, and the image may live anywhere),
    /// or a modules folder such as `/lib/modules/6.1.0-57-amd64`.
    public func resolve(_ spec: String?) throws(KernelError) -> KernelRelease {
        guard let spec, !spec.isEmpty else { return try defaultTarget() }
        guard spec.contains("/") else {
            let candidate = describe(spec)
            guard FileSystem.exists(candidate.image) else {
                if let fetched = describeFetched(spec) { return fetched }
                let known = installed().map(\.release)
                let fetchedNames = fetched().map(\.release)
                throw KernelError(
                    .unknownKernel,
                    "kernel \(spec) is not installed (no \(candidate.image)) nor fetched (no \(Path.join(catalog, spec))); installed: \(known.isEmpty ? "none" : known.joined(separator: ", ")); fetched: \(fetchedNames.isEmpty ? "none" : fetchedNames.joined(separator: ", ")). `suture kernel fetch \(spec)` downloads a Debian kernel into the cache"
                )
            }
            return candidate
        }
        let absolute = Path.absolute(spec)
        let base = Path.base(of: absolute)
        // A path inside the catalog: CATALOG/RELEASE or anything under it.
        if absolute.hasPrefix(catalog + "/") {
            let release = String(absolute.dropFirst(catalog.count + 1).prefix { $0 != "/" })
            guard let fetched = describeFetched(release) else {
                throw KernelError(.unknownKernel, "\(spec): no complete fetched kernel \(release) in \(catalog)")
            }
            return fetched
        }
        if FileSystem.isDirectory(absolute) {
            let candidate = describe(base)
            guard FileSystem.exists(candidate.image) else {
                throw KernelError(
                    .unknownKernel, "\(spec): a folder, but no kernel image \(candidate.image) for release \(base)")
            }
            return candidate
        }
        guard base.hasPrefix("vmlinuz-"), base.count > 8 else {
            throw KernelError(.unknownKernel, "\(spec): not a kernel image (expected a path ending in vmlinuz-RELEASE)")
        }
        guard FileSystem.exists(absolute) else {
            throw KernelError(.unknownKernel, "\(spec): no such kernel image")
        }
        return describe(String(base.dropFirst(8))).withImage(absolute)
    }
}
