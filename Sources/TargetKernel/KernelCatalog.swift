// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// Kernels fetched from Debian's archive into Suture's cache, never into
/// `/boot` or dpkg's database.
///
/// Each suite has its own apt state under `CACHE/apt/SUITE` (sources list,
/// lists, an empty dpkg status, no host configuration read); apt checks
/// the archive's signature and every package's SHA256. A fetched kernel is
/// unpacked with `dpkg-deb -x` into `CACHE/kernels/RELEASE`, a small file
/// system root with `boot/`, `lib/modules/` and `usr/src/`, and recorded in
/// `CACHE/kernels/RELEASE/.suture-kernel` (deb822: one stanza per package,
/// with its version and suite). It is staged under a hidden name and
/// renamed into place, so a failure leaves no half-fetched kernel.
public struct KernelCatalog: Sendable {
    /// The suites searched, in this order.
    public static let suites = [
        "bookworm", "bookworm-security", "bookworm-backports", "trixie", "trixie-security", "sid",
    ]
    public static let recordName = ".suture-kernel"
    public static let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

    /// The cache root (`CACHE`).
    public let root: String

    public init(root: String? = nil) {
        self.root = CacheLocation.root(root)
    }

    /// `CACHE/kernels`.
    public var kernelsDirectory: String { CacheLocation.kernels(root) }

    public func directory(of release: String) -> String { Path.join(kernelsDirectory, release) }

    // MARK: The fetched kernels

    /// A fetched kernel's record: its packages and the suite they came from.
    public struct Record: Sendable, Equatable {
        public var release: String
        public var suite: String
        public var version: String
        public var packages: [(name: String, version: String)]

        public static func == (a: Record, b: Record) -> Bool {
            a.release == b.release && a.suite == b.suite && a.version == b.version
                && a.packages.map(\.name) == b.packages.map(\.name)
                && a.packages.map(\.version) == b.packages.map(\.version)
        }

        /// deb822 text that `DpkgStatus` reads as installed packages.
        public var text: String {
            packages.map {
                "Package: \($0.name)\nStatus: install ok installed\nVersion: \($0.version)\nSuite: \(suite)\nRelease: \(release)\n"
            }.joined(separator: "\n")
        }

        public init(release: String, suite: String, version: String, packages: [(name: String, version: String)]) {
            self.release = release
            self.suite = suite
            self.version = version
            self.packages = packages
        }

        public init?(text: String) {
            var packages: [(name: String, version: String)] = []
            var suite: String?
            var release: String?
            var name: String?
            var version: String?
            func flush() {
                if let n = name, let v = version { packages.append((n, v)) }
                name = nil
                version = nil
            }
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.isEmpty {
                    flush()
                    continue
                }
                if line.hasPrefix("Package: ") { name = String(line.dropFirst(9)) }
                if line.hasPrefix("Version: ") { version = String(line.dropFirst(9)) }
                if line.hasPrefix("Suite: ") { suite = String(line.dropFirst(7)) }
                if line.hasPrefix("Release: ") { release = String(line.dropFirst(9)) }
            }
            flush()
            guard let suite, let release,
                let image = packages.first(where: { $0.name.hasPrefix("linux-image-") })
            else { return nil }
            self.init(release: release, suite: suite, version: image.version, packages: packages)
        }

        /// The suite recorded in a fetched kernel's folder.
        public static func suite(in directory: String) -> String? {
            FileSystem.readTextIfPresent(Path.join(directory, KernelCatalog.recordName)).flatMap(Record.init(text:))?
                .suite
        }

        public var hasSource: Bool { packages.contains { $0.name.hasPrefix("linux-source-") } }
    }

    public func record(of release: String) -> Record? {
        FileSystem.readTextIfPresent(Path.join(directory(of: release), KernelCatalog.recordName)).flatMap(
            Record.init(text:))
    }

    /// Every complete fetched kernel.
    public func records() -> [Record] {
        let names = (try? FileSystem.list(kernelsDirectory)) ?? []
        return names.filter { !$0.hasPrefix(".") }.compactMap { record(of: $0) }
            .sorted { DebianVersion($0.version) > DebianVersion($1.version) }
    }

    // MARK: Fetching

    public struct Outcome: Sendable {
        public var record: Record
        public var directory: String
        public var reused: Bool
        public var downloadedBytes: Int
        public var seconds: Double

        public var json: JSON {
            .object([
                ("release", .string(record.release)),
                ("version", .string(record.version)),
                ("suite", .string(record.suite)),
                ("directory", .string(directory)),
                (
                    "packages",
                    .array(
                        record.packages.map { .object([("name", .string($0.name)), ("version", .string($0.version))]) })
                ),
                ("source", .bool(record.hasSource)),
                ("reused", .bool(reused)),
                ("downloadedBytes", .int(Int64(downloadedBytes))),
                ("seconds", .double((seconds * 10).rounded() / 10)),
            ])
        }
    }

    /// A fetched kernel already matching `spec` (release or package version).
    func existing(_ spec: String) -> Record? {
        if KernelSelector.looksLikeRelease(spec) { return record(of: spec) }
        let wanted = DebianVersion(spec)
        return records().filter { DebianVersion($0.version) == wanted }
            .min { $0.release.count < $1.release.count }
    }

    /// Fetches `spec` (a release such as `6.12.118+deb12-amd64` or a package
    /// version such as `6.12.118-1~deb12u1`) from `suites`, or does nothing
    /// when it is already there with what was asked.
    public func fetch(
        _ spec: String, suites: [String] = KernelCatalog.suites, withSource: Bool = true, refresh: Bool = false
    ) throws(KernelError) -> Outcome {
        let started = Clock.now()
        guard !spec.isEmpty, !spec.contains("/"), !spec.hasPrefix(".") else {
            throw KernelError(
                .usage, "\(spec.isEmpty ? "an empty name" : spec): not a kernel release or package version")
        }
        for suite in suites where !KernelCatalog.suites.contains(suite) {
            throw KernelError(.usage, "unknown suite \(suite); known: \(KernelCatalog.suites.joined(separator: ", "))")
        }
        if let record = existing(spec), record.hasSource || !withSource {
            return Outcome(
                record: record, directory: directory(of: record.release), reused: true, downloadedBytes: 0,
                seconds: Clock.now() - started)
        }
        var indexes: [(suite: String, index: PackageIndex)] = []
        var selection: KernelSelection?
        var unreachable: [String] = []
        for suite in suites {
            do throws(KernelError) {
                indexes = [(suite, try index(suite, refresh: refresh))]
            } catch {
                // Another suite may still carry the kernel; say which could not be asked.
                if suites.count == 1 { throw error }
                Progress.warn("suture: warning: \(error.description)")
                unreachable.append(suite)
                continue
            }
            if let found = try? KernelSelector.select(spec, suites: indexes, withSource: withSource) {
                selection = found
                break
            }
            // Same search again to surface "carries the image but not …" errors.
            if !KernelSelector.images(spec, in: indexes[0].index).isEmpty {
                _ = try KernelSelector.select(spec, suites: indexes, withSource: withSource)
            }
        }
        guard let selection else {
            let searched = suites.filter { !unreachable.contains($0) }
            var message =
                "no suite carries \(KernelSelector.looksLikeRelease(spec) ? "kernel release \(spec)" : "a kernel image of package version \(spec)"); searched \(searched.isEmpty ? "none" : searched.joined(separator: ", "))"
            if !unreachable.isEmpty { message += "; could not reach \(unreachable.joined(separator: ", "))" }
            throw KernelError(.unknownKernel, message)
        }
        return try install(selection, started: started)
    }

    /// Downloads and unpacks a selection, staged and renamed into place.
    func install(_ selection: KernelSelection, started: Double) throws(KernelError) -> Outcome {
        let final = directory(of: selection.release)
        let lock: FileLock
        do {
            try FileSystem.makeDirectories(kernelsDirectory)
            lock = try FileLock(path: Path.join(kernelsDirectory, ".\(selection.release).lock"), timeout: 3600) {
                Progress.say("suture: another suture process is fetching \(selection.release); waiting …")
            }
        } catch {
            throw KernelError(.prepareFailed, error.description, cause: error)
        }
        defer { lock.unlock() }
        let previous = record(of: selection.release)
        if let previous, previous.hasSource || selection.source == nil {
            return Outcome(
                record: previous, directory: final, reused: true, downloadedBytes: 0, seconds: Clock.now() - started)
        }
        // Stages of this release left by a killed fetch: nobody else holds the lock, so they are dead.
        for name in (try? FileSystem.list(kernelsDirectory)) ?? []
        where name.hasPrefix(".\(selection.release).partial-") {
            try? FileSystem.removeTree(Path.join(kernelsDirectory, name))
        }
        let have = Set(previous?.packages.map(\.name) ?? [])
        let wanted = selection.all.filter { !have.contains($0.name) }
        let stage = Path.join(kernelsDirectory, ".\(selection.release).partial-\(getpid())")
        let token = Cleanup.register { TreeCache.removeEventually(stage) }
        defer {
            Cleanup.unregister(token)
            try? FileSystem.removeTree(stage)
        }
        let debs = Path.join(stage, ".debs")
        let unpacked = previous == nil ? stage : Path.join(stage, ".root")
        do {
            try? FileSystem.removeTree(stage)
            try FileSystem.makeDirectories(debs)
            try FileSystem.makeDirectories(unpacked)
        } catch {
            throw KernelError(.prepareFailed, error.description, cause: error)
        }
        let bytes = wanted.reduce(0) { $0 + ($1.size ?? 0) }
        Progress.say(
            "suture: downloading \(wanted.count) packages of \(selection.release) (\(selection.version), \(megabytes(bytes)) MB) from \(selection.suite) …"
        )
        let download = Clock.now()
        let specs = wanted.map { "\($0.name)=\($0.version)" }
        let environment = try aptEnvironment(selection.suite)
        let result: CommandResult
        do {
            result = try Command.run(
                ["apt-get", "-q", "download"] + specs, environment: environment,
                workingDirectory: debs, timeout: 3600)
        } catch {
            throw KernelError(.missingPiece, "cannot run apt-get download: \(error.description)", cause: error)
        }
        guard result.termination.succeeded else {
            throw KernelError(
                .missingPiece,
                "apt-get download \(specs.joined(separator: " ")) failed: \(Command.tail(result.stderrText, lines: 3))")
        }
        let files = ((try? FileSystem.list(debs)) ?? []).filter { $0.hasSuffix(".deb") }
        Progress.say("suture: downloaded in \(Int((Clock.now() - download).rounded())) s; unpacking …")
        for package in wanted {
            guard let file = files.first(where: { $0.hasPrefix("\(package.name)_") }) else {
                throw KernelError(.missingPiece, "apt-get download left no .deb of \(package.name) in \(debs)")
            }
            do {
                _ = try Command.output(["dpkg-deb", "-x", Path.join(debs, file), unpacked])
                try FileSystem.removeFile(Path.join(debs, file))
            } catch {
                throw KernelError(.prepareFailed, "cannot unpack \(file): \(error.description)", cause: error)
            }
        }
        let image = Path.join(unpacked, "boot/vmlinuz-\(selection.release)")
        if previous == nil && !FileSystem.exists(image) {
            try KernelCatalog.linkBoot(in: unpacked, release: selection.release)
        }
        if previous == nil && !FileSystem.exists(image) {
            throw KernelError(.prepareFailed, "\(selection.image.name) holds no boot/vmlinuz-\(selection.release)")
        }
        if previous == nil {
            // Trixie and later ship the modules in usr/lib/modules (merged /usr):
            // give the root the /lib a merged-/usr system has, for depmod and the guest.
            if !FileSystem.exists(Path.join(unpacked, "lib/modules")),
                FileSystem.isDirectory(Path.join(unpacked, "usr/lib/modules"))
            {
                do {
                    if FileSystem.exists(Path.join(unpacked, "lib")) {
                        try FileSystem.symlink(target: "../usr/lib/modules", at: Path.join(unpacked, "lib/modules"))
                    } else {
                        try FileSystem.symlink(target: "usr/lib", at: Path.join(unpacked, "lib"))
                    }
                } catch {
                    throw KernelError(
                        .prepareFailed, "cannot link lib/modules in \(unpacked): \(error.description)", cause: error)
                }
            }
            // What the image package's postinst does on a real install: modules.dep and friends.
            let systemMap = Path.join(unpacked, "boot/System.map-\(selection.release)")
            var depmod = ["depmod", "-a", "-b", unpacked]
            if FileSystem.exists(systemMap) { depmod += ["-F", systemMap] }
            do {
                _ = try Command.output(depmod + [selection.release])
            } catch {
                throw KernelError(
                    .prepareFailed, "depmod for \(selection.release) in \(unpacked) failed: \(error.description)",
                    cause: error)
            }
        }
        try KernelCatalog.relocateHeaders(in: unpacked, to: final)
        let record = Record(
            release: selection.release, suite: selection.suite, version: selection.version,
            packages: (previous?.packages ?? []) + wanted.map { ($0.name, $0.version) })
        do {
            try FileSystem.removeTree(debs)
            if previous == nil {
                try FileSystem.write(Path.join(stage, KernelCatalog.recordName), record.text)
                try FileSystem.rename(stage, final)
            } else {
                // Adding the source to a kernel fetched without it: move the new files in, then the record.
                let src = Path.join(unpacked, "usr/src")
                try FileSystem.makeDirectories(Path.join(final, "usr/src"))
                for name in (try? FileSystem.list(src)) ?? [] {
                    try FileSystem.rename(Path.join(src, name), Path.join(final, "usr/src", name))
                }
                try FileSystem.writeAtomically(Path.join(final, KernelCatalog.recordName), Array(record.text.utf8))
            }
        } catch {
            throw KernelError(
                .prepareFailed, "cannot move the fetched kernel into \(final): \(error.description)", cause: error)
        }
        return Outcome(
            record: record, directory: final, reused: false, downloadedBytes: bytes, seconds: Clock.now() - started)
    }
}

func megabytes(_ bytes: Int) -> Int { (bytes + 524_288) / 1_048_576 }

extension KernelCatalog {
    /// The split packages of sid's 7.x kernels put the image, config and
    /// System.map in `usr/lib/modules/RELEASE/` (`vmlinuz`, `config`,
    /// `System.map`), not in `boot/`: link them where the rest of Suture
    /// (and a Debian 12 system) looks, `boot/vmlinuz-RELEASE` and so on.
    static func linkBoot(in root: String, release: String) throws(KernelError) {
        let from = "usr/lib/modules/\(release)"
        guard FileSystem.exists(Path.join(root, from, "vmlinuz")) else { return }
        do {
            try FileSystem.makeDirectories(Path.join(root, "boot"))
            for (name, file) in [("vmlinuz", "vmlinuz"), ("config", "config"), ("System.map", "System.map")]
            where FileSystem.exists(Path.join(root, from, file)) {
                let link = Path.join(root, "boot/\(name)-\(release)")
                if FileSystem.kind(link) == .missing { try FileSystem.symlink(target: "../\(from)/\(file)", at: link) }
            }
        } catch {
            throw KernelError(.prepareFailed, "cannot link boot/ in \(root): \(error.description)", cause: error)
        }
    }
}
