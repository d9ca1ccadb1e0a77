// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// The cache of prepared kernel trees under `CacheLocation.trees(root)`.
///
/// `prepare` builds a tree once per release, config and source, under an
/// exclusive lock, in a hidden sibling folder that is renamed into place
/// only when complete: a folder named `<key>` is always a ready tree. An
/// interrupted prepare leaves at most a `.<key>.partial-PID` folder, which
/// the next prepare removes.
public struct TreeCache: Sendable {
    /// The cache root (`/var/cache/suture`, `SUTURE_CACHE` or `--cache`).
    public let root: String

    public init(root: String? = nil) {
        self.root = CacheLocation.root(root)
    }

    /// `ROOT/trees`.
    public var treesDirectory: String { CacheLocation.trees(root) }

    /// What `prepare` did.
    public struct Outcome: Sendable {
        public let tree: PreparedTree
        /// True when a ready, pristine tree was already there.
        public let reused: Bool
        /// Named phases and their seconds; empty when reused.
        public let phases: [(name: String, seconds: Double)]
        /// Warnings shown while preparing (compiler override, config drift…).
        public let warnings: [String]
        public let seconds: Double

        public var json: JSON {
            guard case .object(var pairs) = tree.json else { return tree.json }
            pairs.append(("reused", .bool(reused)))
            pairs.append(("seconds", .double((seconds * 100).rounded() / 100)))
            pairs.append(
                (
                    "phases",
                    .array(
                        phases.map {
                            .object([
                                ("name", .string($0.name)), ("seconds", .double(($0.seconds * 100).rounded() / 100)),
                            ])
                        })
                ))
            pairs.append(("warnings", .strings(warnings)))
            return .object(pairs)
        }
    }

    /// The cache key: `<release>-<first 12 hex of the config's SHA-256>`,
    /// plus `-src-<12 hex>` of the path, size and mtime of a `--source`.
    public func key(for kernel: KernelRelease, source: String? = nil) throws(KernelError) -> String {
        guard let config = kernel.config else {
            throw KernelError(
                .missingPiece,
                "kernel \(kernel.release) has no config (expected /boot/config-\(kernel.release)); install its linux-image package again"
            )
        }
        let hash: String
        do {
            hash = try SHA256.hex(file: config)
        } catch {
            throw KernelError(.missingPiece, "cannot read \(config): \(error.description)", cause: error)
        }
        var key = "\(kernel.release)-\(hash.prefix(12))"
        if let source {
            let absolute = Path.absolute(source)
            let probe = FileSystem.isDirectory(absolute) ? Path.join(absolute, "Makefile") : absolute
            guard let st = try? FileSystem.status(probe) else {
                throw KernelError(.missingPiece, "--source \(source): no such file or kernel folder (\(probe))")
            }
            let identity = "\(absolute)\n\(st.st_size)\n\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
            key += "-src-\(SHA256.hex(Array(identity.utf8)).prefix(12))"
        }
        return key
    }

    /// The ready tree for `kernel` if there is one, without checking it.
    public func existing(for kernel: KernelRelease, source: String? = nil) throws(KernelError) -> PreparedTree? {
        let path = Path.join(treesDirectory, try key(for: kernel, source: source))
        guard FileSystem.isDirectory(path) else { return nil }
        return try? PreparedTree.open(path)
    }

    /// Every ready tree in the cache.
    public func all() -> [PreparedTree] {
        let names = (try? FileSystem.list(treesDirectory)) ?? []
        return names.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".lock") }
            .compactMap { try? PreparedTree.open(Path.join(treesDirectory, $0)) }
    }

    /// Returns the pristine tree for `kernel`, preparing it when it is
    /// missing and preparing it again when it is no longer pristine.
    ///
    /// - Parameters:
    ///   - source: `--source TARBALL|DIR`; nil takes the distro source of
    ///     the image's package version (installed or downloaded).
    ///   - allowCompilerMismatch: build with a host compiler other than
    ///     the kernel's, with a loud warning, instead of refusing.
    public func prepare(
        _ kernel: KernelRelease, source: String? = nil, allowCompilerMismatch: Bool = false,
        jobs: Int = Kbuild.processors, lockTimeout: Double = 3600
    ) throws(KernelError) -> Outcome {
        let started = Clock.now()
        let key = try key(for: kernel, source: source)
        let final = Path.join(treesDirectory, key)

        var warnings: [String] = []
        func warn(_ message: String) {
            warnings.append(message)
            Progress.warn("suture: warning: \(message)")
        }
        // Checked on every use, not only when preparing: the host compiler
        // may have changed since, and every later compile uses it.
        var compiler = CompilerCheck.check(kernelCompiler: kernel.compiler)
        var buildRoot: BuildRoot?
        var rootPhase: (name: String, seconds: Double)?
        if !compiler.matches && !allowCompilerMismatch && BuildRoots.release(of: kernel) != nil {
            // Another Debian release's compiler: compile in a root of that release.
            let outcome = try BuildRoots(cache: root).ensure(for: kernel)
            buildRoot = outcome.root
            compiler = outcome.check
            if !outcome.reused { rootPhase = ("build root", outcome.seconds) }
        } else if !compiler.matches {
            guard allowCompilerMismatch else {
                throw KernelError(
                    .compilerMismatch,
                    "\(compiler.mismatchMessage). Install the kernel's compiler, or pass --allow-compiler-mismatch to build anyway"
                )
            }
            Progress.warn(
                """
                suture: WARNING: COMPILER MISMATCH, allowed by --allow-compiler-mismatch.
                suture: WARNING: \(compiler.mismatchMessage).
                suture: WARNING: patches built from this tree may not match the running kernel's code.
                """)
            warnings.append("compiler mismatch allowed: \(compiler.mismatchMessage)")
        }
        if let tree = try? PreparedTree.open(final), tree.buildRoot == buildRoot,
            (try? tree.verify(limit: 1))?.isEmpty == true
        {
            return Outcome(tree: tree, reused: true, phases: [], warnings: warnings, seconds: Clock.now() - started)
        }

        let lock: FileLock
        do {
            try FileSystem.makeDirectories(treesDirectory)
            lock = try FileLock(path: PreparedTree.lockPath(treePath: final), timeout: lockTimeout) {
                Progress.say("suture: another suture process is preparing or using \(final); waiting …")
            }
        } catch {
            throw KernelError(.prepareFailed, error.description, cause: error)
        }
        defer { lock.unlock() }

        // Someone else may have finished while we waited.
        if FileSystem.exists(final) {
            if let tree = try? PreparedTree.open(final), let differences = try? tree.verify() {
                if differences.isEmpty && tree.buildRoot == buildRoot {
                    return Outcome(
                        tree: tree, reused: true, phases: [], warnings: warnings, seconds: Clock.now() - started)
                }
                if tree.buildRoot != buildRoot {
                    warn(
                        "the prepared tree \(final) was built \(tree.buildRoot.map { "in \($0.path)" } ?? "on the host"); preparing it again \(buildRoot.map { "in \($0.path)" } ?? "on the host")"
                    )
                } else {
                    warn(
                        "the prepared tree \(final) is no longer pristine (\(differences.prefix(3).map(\.description).joined(separator: ", "))); preparing it again"
                    )
                }
            } else {
                warn("\(final) is not a complete prepared tree; preparing it again")
            }
            try discard(final)
        }
        try removeStalePartials(key: key)

        let partial = Path.join(treesDirectory, ".\(key).partial-\(getpid())")
        let token = Cleanup.register { TreeCache.removeEventually(partial) }
        defer { Cleanup.unregister(token) }
        do throws(KernelError) {
            var timer = PhaseTimer()
            let tree = try build(
                kernel, key: key, source: source, compiler: compiler, buildRoot: buildRoot, partial: partial,
                final: final, jobs: jobs, timer: &timer, warn: warn)
            do {
                try FileSystem.rename(partial, final)
            } catch {
                throw KernelError(.prepareFailed, error.description, cause: error)
            }
            let total = Clock.now() - started
            Progress.say("suture: prepared \(final) in \(Int(total.rounded())) s")
            return Outcome(
                tree: tree, reused: false, phases: (rootPhase.map { [$0] } ?? []) + timer.phases, warnings: warnings,
                seconds: total)
        } catch {
            // The cleanup action stays registered until this returns: a
            // signal arriving now must not end the process mid-removal.
            TreeCache.removeEventually(partial)
            throw error
        }
    }

    /// Removes a tree even while a signal handler's cleanup removes it too:
    /// either remover may stop at an entry the other took, so retry.
    public static func removeEventually(_ path: String) {
        for _ in 0..<10 where FileSystem.kind(path) != .missing {
            try? FileSystem.removeTree(path)
        }
    }

    // MARK: - Building a tree

    private func build(
        _ kernel: KernelRelease, key: String, source: String?, compiler: CompilerCheck, buildRoot: BuildRoot?,
        partial: String, final: String, jobs: Int, timer: inout PhaseTimer, warn: (String) -> Void
    ) throws(KernelError) -> PreparedTree {
        guard let configPath = kernel.config else {
            throw KernelError(.missingPiece, "kernel \(kernel.release) has no config")
        }
        let sourceDirectory = Path.join(partial, "source")
        do {
            try FileSystem.makeDirectories(partial)
        } catch {
            throw KernelError(.prepareFailed, error.description, cause: error)
        }

        // 1. The source, unpacked as `partial/source`.
        let origin: SourceOrigin
        if let source {
            let absolute = Path.absolute(source)
            origin = .user(path: absolute)
            if FileSystem.isDirectory(absolute) {
                try KernelSource.checkClean(directory: absolute)
                _ = try KernelSource.checkVersion(tree: absolute, kernel: kernel, origin: absolute)
                Progress.say("suture: copying \(absolute) …")
                try makeDirectory(sourceDirectory)
                try KernelSource.runTool(
                    ["cp", "-a", "--reflink=auto", absolute + "/.", sourceDirectory + "/"],
                    doing: "copy \(absolute)")
            } else {
                Progress.say("suture: unpacking \(absolute) …")
                let top = try KernelSource.extract(tarball: absolute, into: Path.join(partial, "unpack"))
                try moveSource(top, to: sourceDirectory)
            }
            warn(
                "--source \(absolute): its upstream version was checked, but the distro revision\(kernel.packageVersion.map { " (\($0))" } ?? "") cannot be checked from a bare tree"
            )
        } else {
            let tarball: String
            if let installed = KernelSource.installedTarball(for: kernel),
                case .installedPackage(_, _, let path) = installed
            {
                origin = installed
                tarball = path
            } else {
                tarball = try KernelSource.download(for: kernel, into: Path.join(partial, "download"))
                origin = .downloadedPackage(package: kernel.sourcePackage, version: kernel.packageVersion ?? "")
            }
            Progress.say("suture: unpacking \(origin.summary) …")
            let top = try KernelSource.extract(tarball: tarball, into: Path.join(partial, "unpack"))
            try moveSource(top, to: sourceDirectory)
            try? FileSystem.removeTree(Path.join(partial, "download"))
        }
        try? FileSystem.removeTree(Path.join(partial, "unpack"))
        let checkWarnings = try KernelSource.checkVersion(tree: sourceDirectory, kernel: kernel, origin: origin.summary)
        checkWarnings.forEach(warn)
        let upstream = try KernelSource.makefileVersion(tree: sourceDirectory)
        timer.lap("source")

        // 2. Configure and prepare, out of tree in `source/_build`.
        let identity = Kbuild.buildIdentity(headers: kernel.headers)
        let kbuild = Kbuild(
            sourceDirectory: sourceDirectory, compiler: compiler.program, kernelRelease: kernel.release,
            buildUser: identity.user, buildHost: identity.host, root: buildRoot, binds: [partial])
        try makeDirectory(kbuild.buildDirectory)
        do {
            try FileSystem.copyFile(configPath, Path.join(kbuild.buildDirectory, ".config"))
        } catch {
            throw KernelError(.prepareFailed, error.description, cause: error)
        }
        Progress.say("suture: make olddefconfig\(buildRoot.map { " in the build root \($0.path)" } ?? "") …")
        try kbuild.make(
            ["olddefconfig"], cflags: Kbuild.defaultCFlags, jobs: jobs, phase: "olddefconfig", failure: .prepareFailed)
        timer.lap("olddefconfig")
        Progress.say("suture: make modules_prepare (\(jobs) jobs) …")
        try kbuild.make(
            ["modules_prepare"], cflags: Kbuild.defaultCFlags, jobs: jobs, phase: "modules_prepare",
            failure: .prepareFailed)
        timer.lap("modules_prepare")

        // 3. Compare the resulting config with the shipped one.
        let shipped = try KernelConfig(path: configPath)
        let result = try KernelConfig(path: Path.join(kbuild.buildDirectory, ".config"))
        let drift = shipped.drift(to: result).map { "CONFIG_\($0.name): \($0.expected) → \($0.actual)" }
        if !drift.isEmpty {
            var hint = ""
            if drift.contains(where: { $0.hasPrefix("CONFIG_PAHOLE_VERSION") }) && Command.which("pahole") == nil {
                hint = " (install dwarves: pahole decides the BTF options)"
            }
            warn(
                "olddefconfig changed \(drift.count) symbol(s) of \(configPath)\(hint): \(drift.prefix(6).joined(separator: ", "))\(drift.count > 6 ? ", …" : "")"
            )
        }

        // 4. Absolute paths that kbuild's tools/ build recorded must name the final place.
        try ToolsPaths.rewrite(
            in: kbuild.buildDirectory, from: sourceDirectory + "/", to: Path.join(final, "source") + "/")

        // 5. Describe, make read-only, fingerprint.
        var make: [(String, JSON)] = [
            ("cc", .string(kbuild.compiler)), ("kernelRelease", .string(kbuild.kernelRelease)),
            ("cflags", .strings(Kbuild.defaultCFlags)),
        ]
        if let user = identity.user { make.append(("buildUser", .string(user))) }
        if let host = identity.host { make.append(("buildHost", .string(host))) }
        if let buildRoot { make.append(("root", .string(buildRoot.path))) }
        let metadata: JSON = .object([
            ("release", .string(kernel.release)),
            ("packageVersion", .optional(kernel.packageVersion)),
            ("upstreamVersion", .string(upstream)),
            ("config", .string(configPath)),
            ("source", origin.json),
            ("compiler", compiler.json),
            ("make", .object(make)),
            ("configDrift", .strings(drift)),
            ("preparedAt", .string(Clock.isoTimestamp())),
        ])
        do {
            try FileSystem.write(Path.join(partial, "tree.json"), metadata.serialized(pretty: true) + "\n")
        } catch {
            throw KernelError(.prepareFailed, error.description, cause: error)
        }
        let manifest = try TreeManifest.record(sourceDirectory, makeReadOnly: true)
        do {
            try FileSystem.write(Path.join(partial, "manifest"), manifest.serialized(), mode: 0o444)
        } catch {
            throw KernelError(.prepareFailed, error.description, cause: error)
        }
        timer.lap("manifest")
        Progress.say("suture: recorded \(manifest.entries.count) entries in the manifest")
        // Described as it will be once renamed into place.
        return try PreparedTree.decode(metadata, path: final, file: Path.join(partial, "tree.json"))
    }

    private func makeDirectory(_ path: String) throws(KernelError) {
        do {
            try FileSystem.makeDirectories(path)
        } catch {
            throw KernelError(.prepareFailed, error.description, cause: error)
        }
    }

    private func moveSource(_ top: String, to destination: String) throws(KernelError) {
        do {
            try FileSystem.rename(top, destination)
        } catch {
            throw KernelError(.prepareFailed, error.description, cause: error)
        }
    }

    // MARK: - Removing trees

    /// Renames a tree aside (so it never looks ready again), then removes it.
    private func discard(_ path: String) throws(KernelError) {
        let aside = Path.join(treesDirectory, ".\(Path.base(of: path)).discard-\(getpid())")
        do {
            try FileSystem.removeTree(aside)
            try FileSystem.rename(path, aside)
            try FileSystem.removeTree(aside)
        } catch {
            throw KernelError(
                .prepareFailed, "cannot remove the damaged tree \(path): \(error.description)", cause: error)
        }
    }

    /// Removes what interrupted prepares of `key` left; call with the lock held.
    private func removeStalePartials(key: String) throws(KernelError) {
        let names = (try? FileSystem.list(treesDirectory)) ?? []
        for name in names where name.hasPrefix(".\(key).partial-") || name.hasPrefix(".\(key).discard-") {
            Progress.say("suture: removing \(name), left by an interrupted prepare")
            do {
                try FileSystem.removeTree(Path.join(treesDirectory, name))
            } catch {
                throw KernelError(.prepareFailed, "cannot remove \(name): \(error.description)", cause: error)
            }
        }
    }
}
