// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// A pristine, configured kernel tree in the cache, ready for one-object
/// builds: `TREES/<release>-<confighash>/`.
///
/// Layout: `source/` is the kernel source as unpacked, with `source/_build/`
/// holding kbuild's output of `olddefconfig` and `modules_prepare`;
/// `manifest` fingerprints every entry of `source/`; `tree.json` says where
/// it came from and how it was built. The whole `source/` is read-only and
/// is never written to: builds happen in a `Workspace`.
public struct PreparedTree: Sendable {
    /// `TREES/<key>`.
    public let path: String
    /// `<release>-<confighash>`, plus `-src-<hash>` for a `--source` tree.
    public let key: String
    /// The target kernel release.
    public let release: String
    /// The image package's Debian version, if known.
    public let packageVersion: String?
    /// The upstream version in the tree's Makefile, e.g. `6.1.192`.
    public let upstreamVersion: String
    /// Where the source came from.
    public let origin: SourceOrigin
    /// How to run kbuild on this tree (and its workspaces).
    public let kbuild: Kbuild
    /// The compiler comparison made at prepare time.
    public let compiler: CompilerCheck
    /// Symbols whose value after `olddefconfig` differs from the shipped config.
    public let configDrift: [String]
    /// Everything `tree.json` holds.
    public let metadata: JSON

    /// The kbuild source folder (`srctree`): `TREES/<key>/source`.
    public var sourceDirectory: String { Path.join(path, "source") }
    /// The kbuild object folder: `TREES/<key>/source/_build`.
    public var buildDirectory: String { Path.join(sourceDirectory, Kbuild.objectFolder) }
    /// `TREES/<key>/manifest`.
    public var manifestPath: String { Path.join(path, "manifest") }
    /// The lock file shared by the cache's writer and workspaces' readers.
    public var lockPath: String { PreparedTree.lockPath(treePath: path) }

    static func lockPath(treePath: String) -> String { treePath + ".lock" }

    /// Opens a ready tree; throws when it is missing or incomplete.
    public static func open(_ path: String) throws(KernelError) -> PreparedTree {
        let metadataPath = Path.join(path, "tree.json")
        guard let text = FileSystem.readTextIfPresent(metadataPath) else {
            throw KernelError(.notPristine, "no prepared tree at \(path) (missing \(metadataPath))")
        }
        let json: JSON
        do {
            json = try JSON.parse(text)
        } catch {
            throw KernelError(.notPristine, "\(metadataPath): \(error.description)", cause: error)
        }
        return try decode(json, path: path, file: metadataPath)
    }

    /// The tree at `path` described by `json` (the contents of `file`).
    static func decode(_ json: JSON, path: String, file metadataPath: String) throws(KernelError) -> PreparedTree {
        guard let release = json["release"]?.stringValue,
            let upstream = json["upstreamVersion"]?.stringValue,
            let origin = json["source"].flatMap(SourceOrigin.init(json:)),
            let make = json["make"], let cc = make["cc"]?.stringValue,
            let kernelRelease = make["kernelRelease"]?.stringValue,
            let compiler = json["compiler"]
        else {
            throw KernelError(.notPristine, "\(metadataPath): incomplete tree description")
        }
        let check = CompilerCheck(
            kernel: compiler["kernel"]?.stringValue,
            program: compiler["program"]?.stringValue ?? cc,
            host: compiler["host"]?.stringValue)
        return PreparedTree(
            path: path, key: Path.base(of: path), release: release,
            packageVersion: json["packageVersion"]?.stringValue, upstreamVersion: upstream, origin: origin,
            kbuild: Kbuild(
                sourceDirectory: Path.join(path, "source"), compiler: cc, kernelRelease: kernelRelease,
                buildUser: make["buildUser"]?.stringValue, buildHost: make["buildHost"]?.stringValue,
                root: make["root"]?.stringValue.map(BuildRoot.init(path:)), binds: [path]),
            compiler: check,
            configDrift: json["configDrift"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            metadata: json)
    }

    /// The build root its compiles run in, or nil for the host.
    public var buildRoot: BuildRoot? { kbuild.root }

    /// The tree's kernel config, after `olddefconfig`.
    public func config() throws(KernelError) -> KernelConfig {
        try KernelConfig(path: Path.join(buildDirectory, ".config"))
    }

    /// The recorded manifest.
    public func manifest() throws(KernelError) -> TreeManifest {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.read(manifestPath)
        } catch {
            throw KernelError(.notPristine, "cannot read the manifest of \(path): \(error.description)", cause: error)
        }
        return try TreeManifest.parse(bytes, path: manifestPath)
    }

    /// How `source/` differs from its manifest; empty when pristine.
    public func verify(limit: Int = 20) throws(KernelError) -> [TreeManifest.Difference] {
        try manifest().verify(sourceDirectory, limit: limit)
    }

    /// Throws `not-pristine`, naming what changed, unless the tree is pristine.
    public func requirePristine(after what: String? = nil) throws(KernelError) {
        let differences = try verify()
        guard differences.isEmpty else {
            let when = what.map { " after \($0)" } ?? ""
            throw KernelError(
                .notPristine,
                "the prepared tree \(path) was changed\(when): \(differences.prefix(5).map(\.description).joined(separator: ", "))\(differences.count > 5 ? ", …" : ""); run `suture kernel prepare` to restore it"
            )
        }
    }

    /// The JSON shape of `suture kernel prepare --json`.
    public var json: JSON {
        .object([
            ("release", .string(release)),
            ("packageVersion", .optional(packageVersion)),
            ("upstreamVersion", .string(upstreamVersion)),
            ("tree", .string(path)),
            ("sourceDirectory", .string(sourceDirectory)),
            ("buildDirectory", .string(buildDirectory)),
            ("source", origin.json),
            ("compiler", compiler.json),
            ("buildRoot", .optional(kbuild.root?.path)),
            ("configDrift", .strings(configDrift)),
        ])
    }
}
