// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The one place that decides which kernel a command targets.
///
/// The default is the running kernel when it has livepatch support and its
/// source and headers are installed; otherwise the newest installed kernel
/// with `CONFIG_LIVEPATCH=y`, newest by Debian version order. Every command
/// that takes `--kernel` goes through `resolve(_:)`.
public struct KernelResolver: Sendable {
    /// The file-system root, `/` except in tests with fake `/boot` trees.
    public let root: String
    public let runningRelease: String
    public let dpkg: DpkgStatus

    public init(root: String = "/", runningRelease: String? = nil, dpkg: DpkgStatus? = nil) {
        self.root = root
        self.runningRelease = runningRelease ?? Kernel.release()
        self.dpkg = dpkg ?? DpkgStatus(path: Path.join(root, "var/lib/dpkg/status"))
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
        let modules = path("lib/modules/\(release)")
        let headersLink = Path.join(modules, "build")
        let headers: String? = FileSystem.isDirectory(headersLink)
            ? ((try? FileSystem.realPath(headersLink)).map { root == "/" ? $0 : $0 } ?? headersLink) : nil
        let configText = config.flatMap { FileSystem.readTextIfPresent($0) } ?? ""
        let livepatch = configText.contains("\nCONFIG_LIVEPATCH=y\n") || configText.hasPrefix("CONFIG_LIVEPATCH=y\n")
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
            livepatch: livepatch,
            compiler: KernelResolver.compiler(headers: headers, configText: configText),
            sourcePackage: sourcePackage, sourceVersion: dpkg.version(of: sourcePackage),
            sourceTarball: FileSystem.exists(tarballPath) ? tarballPath : nil,
            isRunning: release == runningRelease)
    }

    /// The compiler string the kernel was built with.
    static func compiler(headers: String?, configText: String) -> String? {
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
        for line in configText.split(separator: "\n") where line.hasPrefix("CONFIG_CC_VERSION_TEXT=") {
            return String(line.dropFirst("CONFIG_CC_VERSION_TEXT=".count)).trimmingCharacters(in: "\"")
        }
        return nil
    }

    /// The default target, as described on the type.
    public func defaultTarget() throws(KernelError) -> KernelRelease {
        let all = installed()
        if let running = all.first(where: { $0.isRunning }),
           running.livepatch, running.hasHeaders, running.matchingSourceTarball != nil {
            return running
        }
        guard let newest = all.first(where: { $0.livepatch }) else {
            if all.isEmpty {
                throw KernelError(.noKernel, "no kernel image in \(path("boot")); install linux-image-amd64 (the README's set-up does)")
            }
            throw KernelError(.noLivepatch, "none of the installed kernels (\(all.map(\.release).joined(separator: ", "))) has CONFIG_LIVEPATCH=y")
        }
        return newest
    }

    /// Resolves `--kernel RELEASE|PATH`; nil means the default target.
    ///
    /// A path names a kernel image such as `/boot/vmlinuz-6.1.0-57-amd64`.
    public func resolve(_ spec: String?) throws(KernelError) -> KernelRelease {
        guard let spec, !spec.isEmpty else { return try defaultTarget() }
        var release = spec
        if spec.contains("/") {
            let base = Path.base(of: spec)
            guard base.hasPrefix("vmlinuz-") else {
                throw KernelError(.unknownKernel, "\(spec): not a kernel image (expected a path ending in vmlinuz-RELEASE)")
            }
            release = String(base.dropFirst("vmlinuz-".count))
        }
        let candidate = describe(release)
        guard FileSystem.exists(candidate.image) else {
            let known = installed().map(\.release)
            throw KernelError(.unknownKernel, "kernel \(release) is not installed (no \(candidate.image)); installed: \(known.isEmpty ? "none" : known.joined(separator: ", "))")
        }
        return candidate
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}
