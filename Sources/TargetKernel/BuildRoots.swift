// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// The build roots in the cache: `CACHE/roots/SUITE-COMPILER` (for example
/// `trixie-gcc-14`), one per Debian release and compiler package, each
/// made once by `mmdebstrap --variant=minbase` with exactly the compiler
/// and the kernel's build dependencies, and reused after.
///
/// A root is staged under a hidden name and renamed into place with its
/// record (`ROOT/.suture-root`) only when its compiler was checked, so a
/// folder with a record is always a complete root. Its compiler is checked
/// again on every use: its `--version` line must be exactly the kernel's
/// `CONFIG_CC_VERSION_TEXT`, or code would not match the shipped kernel's.
public struct BuildRoots: Sendable {
    public static let recordName = ".suture-root"

    /// The cache root (`CACHE`).
    public let cache: String
    /// The archive's base URL; nil takes `SUTURE_DEBIAN_MIRROR` or deb.debian.org.
    public let mirror: String?

    public init(cache: String? = nil, mirror: String? = nil) {
        self.cache = CacheLocation.root(cache)
        self.mirror = mirror
    }

    /// `CACHE/roots`.
    public var directory: String { CacheLocation.roots(cache) }

    /// What a root holds besides the base system: the compiler and what
    /// `modules_prepare` and module builds run (objtool needs libelf,
    /// pahole decides the BTF options, certificates need libssl).
    public static func packages(compiler: String) -> [String] {
        [
            compiler, "make", "bison", "flex", "bc", "libelf-dev", "libssl-dev", "dwarves", "kmod", "cpio", "xz-utils",
            "python3",
        ]
    }

    /// Whether `folder` is a complete root made with today's package list
    /// (a root made with an older list is made again).
    static func isReady(_ folder: String, package: String) -> Bool {
        guard let text = FileSystem.readTextIfPresent(Path.join(folder, recordName)) else { return false }
        return text.contains("\nPackages: \(packages(compiler: package).joined(separator: ","))\n")
    }

    /// The release a suite belongs to: `bookworm-security` → `bookworm`.
    public static func release(ofSuite suite: String) -> String {
        String(suite.prefix { $0 != "-" })
    }

    /// The Debian release of a kernel: the suite it was fetched from, else
    /// its release's `+debNN` suffix, else nil.
    public static func release(of kernel: KernelRelease) -> String? {
        if let directory = kernel.catalogDirectory, let suite = KernelCatalog.Record.suite(in: directory) {
            return release(ofSuite: suite)
        }
        let names = ["deb12": "bookworm", "deb13": "trixie", "deb14": "sid"]
        for (suffix, name) in names where kernel.release.contains("+\(suffix)") { return name }
        return nil
    }

    /// The text a root's compiler must print: the config's
    /// `CONFIG_CC_VERSION_TEXT`, else the headers' compiler line.
    public static func compilerText(of kernel: KernelRelease) -> String? {
        if let path = kernel.config, let config = try? KernelConfig(path: path),
            case .value(let text) = config["CC_VERSION_TEXT"], !text.isEmpty
        {
            return text
        }
        return kernel.compiler
    }

    /// A ready (or just made) root and its compiler.
    public struct Outcome: Sendable {
        public var root: BuildRoot
        public var suite: String
        /// The compiler package, e.g. `gcc-14`.
        public var package: String
        /// The program kbuild runs as `CC`, e.g. `x86_64-linux-gnu-gcc-14`.
        public var program: String
        /// Its `--version` line, equal to the kernel's.
        public var version: String
        public var reused: Bool
        public var seconds: Double

        /// The comparison `PreparedTree` records: the root's compiler in place of the host's.
        public var check: CompilerCheck { CompilerCheck(kernel: version, program: program, host: version) }

        public var json: JSON {
            .object([
                ("root", .string(root.path)), ("suite", .string(suite)), ("package", .string(package)),
                ("program", .string(program)), ("compiler", .string(version)), ("reused", .bool(reused)),
                ("seconds", .double((seconds * 100).rounded() / 100)),
            ])
        }
    }

    /// The root for `kernel`, made when missing.
    public func ensure(for kernel: KernelRelease) throws(KernelError) -> Outcome {
        guard let suite = BuildRoots.release(of: kernel) else {
            throw KernelError(
                .compilerMismatch,
                "cannot tell which Debian release built kernel \(kernel.release), so no build root can be made for it; fetch it with `suture kernel fetch` or pass --allow-compiler-mismatch"
            )
        }
        guard let text = BuildRoots.compilerText(of: kernel) else {
            throw KernelError(
                .missingPiece, "kernel \(kernel.release) records no compiler (no CONFIG_CC_VERSION_TEXT in its config)")
        }
        return try ensure(suite: suite, compilerText: text)
    }

    /// The `SUITE` root with the compiler that prints `compilerText`.
    public func ensure(suite: String, compilerText text: String) throws(KernelError) -> Outcome {
        let started = Clock.now()
        let program = String(text.prefix { $0 != " " })
        var package = program
        if let triplet = package.firstRange(of: "-linux-gnu-") { package = String(package[triplet.upperBound...]) }
        guard package.hasPrefix("gcc-"), package.dropFirst(4).allSatisfy(\.isNumber), package.count > 4 else {
            throw KernelError(
                .compilerMismatch, "build roots hold Debian's gcc-N packages; the kernel's compiler is \"\(text)\"")
        }
        guard !suite.isEmpty, suite.allSatisfy({ $0.isLetter || $0.isNumber }) else {
            throw KernelError(.usage, "\(suite): not a Debian release name")
        }
        let final = Path.join(directory, "\(suite)-\(package)")
        let root = BuildRoot(path: final)
        func ready(reused: Bool) throws(KernelError) -> Outcome {
            let found = root.compilerVersion(program)
            guard found == text else {
                throw KernelError(
                    .compilerMismatch,
                    "the build root \(final) has \(found.map { "\"\($0)\"" } ?? "no \(program)") but the kernel was built with \"\(text)\" (CONFIG_CC_VERSION_TEXT); objects would not match the shipped code. Remove \(final) to make it again"
                )
            }
            return Outcome(
                root: root, suite: suite, package: package, program: program, version: text, reused: reused,
                seconds: Clock.now() - started)
        }
        if BuildRoots.isReady(final, package: package) { return try ready(reused: true) }

        let lock: FileLock
        do {
            try FileSystem.makeDirectories(directory)
            lock = try FileLock(path: Path.join(directory, ".\(suite)-\(package).lock"), timeout: 3600) {
                Progress.say("suture: another suture process is making the build root \(final); waiting …")
            }
        } catch {
            throw KernelError(.prepareFailed, error.description, cause: error)
        }
        defer { lock.unlock() }
        if BuildRoots.isReady(final, package: package) { return try ready(reused: true) }
        // Left by a killed run: nobody else holds the lock.
        for name in (try? FileSystem.list(directory)) ?? []
        where name.hasPrefix(".\(suite)-\(package).partial-") || name == "\(suite)-\(package)" {
            TreeCache.removeEventually(Path.join(directory, name))
        }
        let stage = Path.join(directory, ".\(suite)-\(package).partial-\(getpid())")
        let token = Cleanup.register { TreeCache.removeEventually(stage) }
        defer {
            Cleanup.unregister(token)
            TreeCache.removeEventually(stage)
        }
        try create(suite: suite, package: package, at: stage)
        let found = BuildRoot(path: stage).compilerVersion(program)
        guard found == text else {
            throw KernelError(
                .compilerMismatch,
                "\(suite)'s \(package) is \(found.map { "\"\($0)\"" } ?? "missing its \(program)"), but the kernel was built with \"\(text)\" (CONFIG_CC_VERSION_TEXT); a root with it would not reproduce the shipped code, so none was kept"
            )
        }
        let record =
            "Suite: \(suite)\nPackage: \(package)\nProgram: \(program)\nCompiler: \(text)\nPackages: \(BuildRoots.packages(compiler: package).joined(separator: ","))\nCreated: \(Clock.isoTimestamp())\n"
        do {
            try FileSystem.write(Path.join(stage, BuildRoots.recordName), record)
            try FileSystem.rename(stage, final)
        } catch {
            throw KernelError(
                .prepareFailed, "cannot move the build root into \(final): \(error.description)", cause: error)
        }
        let outcome = try ready(reused: false)
        Progress.say("suture: build root \(final) ready in \(Int(outcome.seconds.rounded())) s")
        return outcome
    }

    /// Runs mmdebstrap into `stage`.
    private func create(suite: String, package: String, at stage: String) throws(KernelError) {
        guard Command.which("mmdebstrap") != nil else {
            throw KernelError(
                .missingPiece, "mmdebstrap is not installed; it makes build roots (apt-get install mmdebstrap)")
        }
        let base = mirror ?? KernelCatalog.mirror(suite)
        let arguments = KernelCatalog.mmdebstrapArguments(
            suite: suite, packages: BuildRoots.packages(compiler: package), into: stage, mirror: base)
        Progress.say("suture: making the build root \(suite)-\(package) with mmdebstrap (once; about 30 s) …")
        var pending: [UInt8] = []
        let result: CommandResult
        do {
            result = try Command.run(arguments, environment: Command.environment(["LC_ALL": "C"]), timeout: 3600) {
                stream, chunk in
                guard stream == .stderr else { return }
                for byte in chunk {
                    guard byte == 10 else {
                        pending.append(byte)
                        continue
                    }
                    let line = String(decoding: pending, as: UTF8.self)
                    pending.removeAll()
                    if line.hasPrefix("I: ") { Progress.say("suture: mmdebstrap: \(line.dropFirst(3))") }
                }
            }
        } catch {
            throw KernelError(.missingPiece, "cannot run mmdebstrap: \(error.description)", cause: error)
        }
        guard result.termination.succeeded else {
            let text = result.stderrText + result.stdoutText
            let lines = text.split(separator: "\n").map(String.init)
            let network = [
                "Connection refused", "Could not connect", "Temporary failure resolving", "Failed to fetch",
                "Unable to connect", "No route to host", "Could not resolve",
            ]
            if let line = lines.first(where: { l in network.contains { l.contains($0) } }) {
                throw KernelError(
                    .suiteUnreachable,
                    "cannot reach suite \(suite) at \(base) to make a build root: \(line.trimmingWhitespace())")
            }
            throw KernelError(
                .prepareFailed,
                "mmdebstrap \(suite) with \(package) failed (\(result.termination)):\n\(Command.tail(text, lines: 8))")
        }
    }

    /// The ready roots, by folder name, with their compiler lines.
    public func all() -> [(name: String, compiler: String)] {
        ((try? FileSystem.list(directory)) ?? []).filter { !$0.hasPrefix(".") }.compactMap { name in
            guard let text = FileSystem.readTextIfPresent(Path.join(directory, name, BuildRoots.recordName)) else {
                return nil
            }
            let line = text.split(separator: "\n").first { $0.hasPrefix("Compiler: ") }
            return (name, line.map { String($0.dropFirst(10)) } ?? "")
        }.sorted { $0.name < $1.name }
    }
}
