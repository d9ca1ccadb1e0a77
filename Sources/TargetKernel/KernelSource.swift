// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Where a prepared tree's source came from.
public enum SourceOrigin: Sendable, Equatable {
    /// The installed `linux-source-X.Y` package's tarball, of the image's version.
    case installedPackage(package: String, version: String, tarball: String)
    /// `apt-get download PACKAGE=VERSION`, unpacked privately.
    case downloadedPackage(package: String, version: String)
    /// `--source TARBALL|DIR`: the user's choice.
    case user(path: String)

    public var json: JSON {
        switch self {
        case .installedPackage(let package, let version, let tarball):
            return .object([
                ("kind", .string("installed-package")), ("package", .string(package)),
                ("version", .string(version)), ("path", .string(tarball)),
            ])
        case .downloadedPackage(let package, let version):
            return .object([
                ("kind", .string("downloaded-package")), ("package", .string(package)),
                ("version", .string(version)),
            ])
        case .user(let path):
            return .object([("kind", .string("user")), ("path", .string(path))])
        }
    }

    init?(json: JSON) {
        switch json["kind"]?.stringValue {
        case "installed-package":
            guard let p = json["package"]?.stringValue, let v = json["version"]?.stringValue,
                let t = json["path"]?.stringValue
            else { return nil }
            self = .installedPackage(package: p, version: v, tarball: t)
        case "downloaded-package":
            guard let p = json["package"]?.stringValue, let v = json["version"]?.stringValue else { return nil }
            self = .downloadedPackage(package: p, version: v)
        case "user":
            guard let p = json["path"]?.stringValue else { return nil }
            self = .user(path: p)
        default:
            return nil
        }
    }

    public var summary: String {
        switch self {
        case .installedPackage(let package, let version, _): return "\(package) \(version) (installed)"
        case .downloadedPackage(let package, let version): return "\(package) \(version) (downloaded)"
        case .user(let path): return path
        }
    }
}

/// Finding, fetching and checking kernel source for a release.
enum KernelSource {
    /// The upstream version a tree's top Makefile declares, e.g. `6.1.192`.
    static func makefileVersion(tree: String) throws(KernelError) -> String {
        let makefile = Path.join(tree, "Makefile")
        guard let text = FileSystem.readTextIfPresent(makefile) else {
            throw KernelError(.sourceMismatch, "\(makefile): missing; not a kernel source tree")
        }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n").prefix(40) {
            let parts = line.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].trimmingCharacters(in: " ")
            if ["VERSION", "PATCHLEVEL", "SUBLEVEL"].contains(name) {
                fields[name] = parts[1].trimmingCharacters(in: " ")
            }
        }
        guard let v = fields["VERSION"], let p = fields["PATCHLEVEL"], let s = fields["SUBLEVEL"],
            Int(v) != nil, Int(p) != nil, Int(s) != nil
        else {
            throw KernelError(
                .sourceMismatch, "\(makefile): no numeric VERSION, PATCHLEVEL and SUBLEVEL; not a kernel source tree")
        }
        return "\(v).\(p).\(s)"
    }

    /// Checks a tree's Makefile version against the target kernel. Without
    /// a package version only `VERSION.PATCHLEVEL` can be compared with the
    /// release. Returns the warnings to show.
    static func checkVersion(tree: String, kernel: KernelRelease, origin: String) throws(KernelError) -> [String] {
        let found = try makefileVersion(tree: tree)
        if let expected = kernel.upstreamVersion, !expected.isEmpty {
            guard found == expected else {
                throw KernelError(
                    .sourceMismatch,
                    "\(origin) is Linux \(found) (VERSION/PATCHLEVEL/SUBLEVEL of its Makefile), but kernel \(kernel.release) is package version \(kernel.packageVersion ?? "?"), Linux \(expected)"
                )
            }
            return []
        }
        let series = kernel.series
        guard found.hasPrefix(series + ".") else {
            throw KernelError(
                .sourceMismatch, "\(origin) is Linux \(found), but kernel \(kernel.release) is Linux \(series)")
        }
        return [
            "kernel \(kernel.release) has no Debian package version; only its series \(series) was checked against \(origin) (Linux \(found))"
        ]
    }

    /// The distro source matching the image's package version: the
    /// installed tarball, or nil when it must be downloaded.
    static func installedTarball(for kernel: KernelRelease) -> SourceOrigin? {
        guard let tarball = kernel.matchingSourceTarball, let version = kernel.sourceVersion else { return nil }
        return .installedPackage(package: kernel.sourcePackage, version: version, tarball: tarball)
    }

    /// `apt-get download PACKAGE=VERSION` into `directory`, then
    /// `dpkg-deb -x` there; returns the tarball inside. Nothing is installed.
    static func download(for kernel: KernelRelease, into directory: String) throws(KernelError) -> String {
        if kernel.isFetched {
            // The host's apt knows nothing of other releases' kernels: the catalog fetches their source.
            throw KernelError(
                .missingPiece,
                "kernel \(kernel.release) was fetched without \(kernel.sourcePackage); run `suture kernel fetch \(kernel.release)` (without --no-source) to add it, or pass --source TARBALL|DIR"
            )
        }
        guard let version = kernel.packageVersion else {
            throw KernelError(
                .missingPiece,
                "kernel \(kernel.release) has no Debian package version, so no matching \(kernel.sourcePackage) can be chosen; pass --source TARBALL|DIR"
            )
        }
        let installedNote =
            kernel.sourceVersion.map { "installed \(kernel.sourcePackage) is \($0)" }
            ?? "\(kernel.sourcePackage) is not installed"
        let spec = "\(kernel.sourcePackage)=\(version)"
        do {
            try FileSystem.makeDirectories(directory)
        } catch {
            throw KernelError(.prepareFailed, error.description)
        }
        Progress.say("suture: \(installedNote), kernel \(kernel.release) needs \(version); apt-get download \(spec) …")
        let result: CommandResult
        do {
            result = try Command.run(
                ["apt-get", "download", spec], environment: Command.environment(["LC_ALL": "C"]),
                workingDirectory: directory)
        } catch {
            throw KernelError(.missingPiece, "cannot run apt-get to fetch \(spec): \(error.description)", cause: error)
        }
        guard result.termination.succeeded else {
            throw KernelError(
                .missingPiece,
                "kernel \(kernel.release) is package version \(version), but \(installedNote), and `apt-get download \(spec)` failed: \(Command.tail(result.stderrText, lines: 3)). Run `apt-get update`, or pass --source TARBALL|DIR"
            )
        }
        let debs = ((try? FileSystem.list(directory)) ?? []).filter { $0.hasSuffix(".deb") }
        guard let deb = debs.first else {
            throw KernelError(
                .missingPiece, "apt-get download \(spec) reported success but left no .deb in \(directory)")
        }
        let unpacked = Path.join(directory, "unpacked")
        do {
            _ = try Command.output(["dpkg-deb", "-x", Path.join(directory, deb), unpacked])
        } catch {
            throw KernelError(.prepareFailed, "cannot unpack \(deb): \(error.description)", cause: error)
        }
        try? FileSystem.removeFile(Path.join(directory, deb))
        let srcDir = Path.join(unpacked, "usr/src")
        let tarballs = ((try? FileSystem.list(srcDir)) ?? []).filter {
            $0.hasPrefix("linux-source") && $0.contains(".tar")
        }
        guard let tarball = tarballs.first else {
            throw KernelError(.prepareFailed, "\(deb) holds no linux-source tarball under /usr/src")
        }
        return Path.join(srcDir, tarball)
    }

    /// Unpacks a tarball into `directory` and returns the folder that holds
    /// its top Makefile.
    static func extract(tarball: String, into directory: String) throws(KernelError) -> String {
        do {
            try FileSystem.makeDirectories(directory)
        } catch {
            throw KernelError(.prepareFailed, error.description)
        }
        var arguments = ["tar", "-x", "--no-same-owner", "-f", tarball, "-C", directory]
        if tarball.hasSuffix(".xz") && Command.which("xz") != nil {
            // The distro tarball has many xz blocks: decompress them in parallel.
            arguments += ["-I", "xz -T0"]
        }
        try runTool(arguments, doing: "unpack \(tarball)")
        return try topFolder(of: directory, origin: tarball)
    }

    /// Runs a tool (tar, cp, chmod) to completion; throws `prepare-failed`
    /// naming what was being done, with the tail of its stderr.
    static func runTool(_ arguments: [String], doing what: String) throws(KernelError) {
        let result: CommandResult
        do {
            result = try Command.run(arguments)
        } catch {
            throw KernelError(.prepareFailed, "cannot \(what): \(error.description)", cause: error)
        }
        guard result.termination.succeeded else {
            throw KernelError(.prepareFailed, "cannot \(what): \(Command.tail(result.stderrText, lines: 5))")
        }
    }

    /// The folder with the top Makefile: `directory` itself, or its only subfolder.
    static func topFolder(of directory: String, origin: String) throws(KernelError) -> String {
        if FileSystem.exists(Path.join(directory, "Makefile")) { return directory }
        let names = (try? FileSystem.list(directory)) ?? []
        let folders = names.filter { FileSystem.isDirectory(Path.join(directory, $0)) }
        guard folders.count == 1, FileSystem.exists(Path.join(directory, folders[0], "Makefile")) else {
            throw KernelError(.sourceMismatch, "\(origin) holds no kernel tree (no top-level Makefile)")
        }
        return Path.join(directory, folders[0])
    }

    /// Refuses a user folder that was configured or built in place: kbuild
    /// needs a clean source tree for an out-of-tree build.
    static func checkClean(directory: String) throws(KernelError) {
        for piece in [".config", "include/config", "arch/x86/include/generated"]
        where FileSystem.exists(Path.join(directory, piece)) {
            throw KernelError(
                .sourceMismatch,
                "\(directory) is not a clean source tree (it has \(piece)); use a copy after `make mrproper`, or the tarball"
            )
        }
    }
}

extension Substring {
    func trimmingCharacters(in character: Character) -> String {
        var s = self
        while s.first == character || s.first == "\t" { s = s.dropFirst() }
        while s.last == character || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
