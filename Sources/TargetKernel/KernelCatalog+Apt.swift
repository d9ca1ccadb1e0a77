// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// The catalog's apt side: one private apt state per suite (sources list, lists, an empty
/// dpkg status), its package index, and the headers' paths moved to the cache.
extension KernelCatalog {
    /// `CACHE/apt/SUITE`.
    public func aptDirectory(_ suite: String) -> String { Path.join(root, "apt", suite) }

    /// The archive for a suite: `http://deb.debian.org/debian`, or
    /// `…/debian-security` for the security suites. `SUTURE_DEBIAN_MIRROR`
    /// replaces `http://deb.debian.org` (a local mirror or proxy).
    /// The mmdebstrap command that makes a minbase root of `suite` with
    /// `packages` into the folder `stage`, from `mirror` (default: the
    /// suite's), checked against the Debian archive keyring.
    public static func mmdebstrapArguments(
        suite: String, packages: [String], into stage: String, mirror: String? = nil
    ) -> [String] {
        var arguments = [
            "mmdebstrap", "--variant=minbase", "--mode=root", "--format=directory",
            "--include=\(packages.joined(separator: ","))",
        ]
        // sid's Release file is often past its Valid-Until on mirrors; its signature is still checked.
        if suite == "sid" { arguments.append("--aptopt=Acquire::Check-Valid-Until \"false\"") }
        arguments += [suite, stage, "deb [signed-by=\(keyring)] \(mirror ?? self.mirror(suite)) \(suite) main"]
        return arguments
    }

    public static func mirror(_ suite: String) -> String {
        var base =
            FileSystem.environment("SUTURE_DEBIAN_MIRROR").flatMap { $0.isEmpty ? nil : $0 } ?? "http://deb.debian.org"
        while base.hasSuffix("/") { base.removeLast() }
        return base + (suite.hasSuffix("-security") ? "/debian-security" : "/debian")
    }

    /// apt's configuration for one suite: every path inside
    /// `CACHE/apt/SUITE`, the host's `/etc/apt` parts replaced by an empty
    /// folder, indexes kept uncompressed.
    public static func aptConfiguration(directory d: String) -> String {
        var lines = [
            "Dir::Etc::Parts \"\(d)/empty\";",
            "Dir::Etc::Main \"/dev/null\";",
            "Dir::Etc::SourceList \"\(d)/sources.list\";",
            "Dir::Etc::SourceParts \"\(d)/empty\";",
            "Dir::Etc::Preferences \"\(d)/preferences\";",
            "Dir::Etc::PreferencesParts \"\(d)/empty\";",
            "Dir::Etc::TrustedParts \"\(d)/empty\";",
            "Dir::State \"\(d)/state\";",
            "Dir::State::Lists \"\(d)/lists\";",
            "Dir::State::status \"\(d)/status\";",
            "Dir::Cache \"\(d)/cache\";",
            "Dir::Cache::archives \"\(d)/archives\";",
            "Dir::Log \"\(d)/log\";",
            "APT::Architecture \"amd64\";",
            "APT::Architectures { \"amd64\"; };",
            "Acquire::Languages \"none\";",
            "Acquire::GzipIndexes \"false\";",
            "Debug::NoLocking \"true\";",
        ]
        if getuid() == 0 { lines.append("APT::Sandbox::User \"root\";") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Creates a suite's private apt state if needed and returns the
    /// environment that makes apt use it.
    func aptEnvironment(_ suite: String) throws(KernelError) -> [String: String] {
        let d = aptDirectory(suite)
        // sid's Release file is often past its Valid-Until on mirrors; the signature is still checked.
        let validity = suite == "sid" ? "Acquire::Check-Valid-Until \"false\";\n" : ""
        guard FileSystem.exists(KernelCatalog.keyring) else {
            throw KernelError(
                .missingPiece,
                "\(KernelCatalog.keyring) is missing; install debian-archive-keyring to check Debian's signatures")
        }
        do throws(PlatformError) {
            for sub in ["empty", "state", "lists/partial", "cache", "archives/partial", "log"] {
                try FileSystem.makeDirectories(Path.join(d, sub))
            }
            if !FileSystem.exists(Path.join(d, "status")) { try FileSystem.write(Path.join(d, "status"), "") }
            try FileSystem.writeAtomically(
                Path.join(d, "apt.conf"), Array((KernelCatalog.aptConfiguration(directory: d) + validity).utf8))
            let source = "deb [signed-by=\(KernelCatalog.keyring)] \(KernelCatalog.mirror(suite)) \(suite) main\n"
            try FileSystem.writeAtomically(Path.join(d, "sources.list"), Array(source.utf8))
        } catch {
            throw KernelError(.prepareFailed, "cannot set up apt state in \(d): \(error.description)", cause: error)
        }
        return Command.environment(["APT_CONFIG": Path.join(d, "apt.conf"), "LC_ALL": "C"])
    }

    /// The suite's `Packages` index file, if apt has fetched it.
    func indexPath(_ suite: String) -> String? {
        let lists = Path.join(aptDirectory(suite), "lists")
        let suffix = "_dists_\(suite)_main_binary-amd64_Packages"
        return ((try? FileSystem.list(lists)) ?? []).first { $0.hasSuffix(suffix) }.map { Path.join(lists, $0) }
    }

    /// The suite's index, running `apt-get update` first when it is
    /// missing, older than a day, or `refresh` asks.
    func index(_ suite: String, refresh: Bool) throws(KernelError) -> PackageIndex {
        let environment = try aptEnvironment(suite)
        var stale = refresh
        if let path = indexPath(suite), let st = try? FileSystem.status(path) {
            if time(nil) - st.st_mtim.tv_sec > 86400 { stale = true }
        } else {
            stale = true
        }
        if stale {
            Progress.say("suture: updating the package index of \(suite) …")
            let result: CommandResult
            do {
                result = try Command.run(["apt-get", "-q", "update"], environment: environment, timeout: 600)
            } catch {
                throw KernelError(
                    .missingPiece, "cannot run apt-get update for \(suite): \(error.description)", cause: error)
            }
            // apt's own words: "Err:1 URL" and the reason on the next line, else its first E:/W: line.
            let out = result.stdoutText.split(separator: "\n").map(String.init)
            var complaint: String?
            if let i = out.firstIndex(where: { $0.hasPrefix("Err:") }) {
                complaint = out[i...].prefix(2).map { $0.trimmingWhitespace() }.joined(separator: ": ")
            } else {
                complaint = result.stderrText.split(separator: "\n").first { $0.hasPrefix("E:") || $0.hasPrefix("W:") }
                    .map(String.init)
            }
            guard result.termination.succeeded, indexPath(suite) != nil, !result.stderrText.contains("E:") else {
                throw KernelError(
                    .suiteUnreachable,
                    "cannot reach suite \(suite) at \(KernelCatalog.mirror(suite)): \(complaint ?? Command.tail(result.stderrText, lines: 3))"
                )
            }
        }
        guard let path = indexPath(suite), let text = FileSystem.readTextIfPresent(path) else {
            throw KernelError(
                .missingPiece, "no package index for \(suite) in \(Path.join(aptDirectory(suite), "lists"))")
        }
        return PackageIndex(text: text)
    }

    /// Debian's `linux-headers-RELEASE/Makefile` includes the common
    /// headers by absolute path (`include /usr/src/linux-headers-…-common/Makefile`);
    /// unpacked under the cache, that path must name the cache's copy.
    /// Rewrites such lines of the top Makefiles in `ROOT/usr/src` to `FINAL/usr/src/…`.
    static func relocateHeaders(in root: String, to final: String) throws(KernelError) {
        let src = Path.join(root, "usr/src")
        for name in (try? FileSystem.list(src)) ?? [] where name.hasPrefix("linux-headers-") {
            let makefile = Path.join(src, name, "Makefile")
            guard FileSystem.kind(makefile) == .file, let text = FileSystem.readTextIfPresent(makefile) else {
                continue
            }
            let rewritten = relocatedMakefile(text, root: final)
            guard rewritten != text else { continue }
            do {
                try FileSystem.writeAtomically(makefile, Array(rewritten.utf8))
            } catch {
                throw KernelError(.prepareFailed, "cannot rewrite \(makefile): \(error.description)", cause: error)
            }
        }
    }

    /// The Makefile text with `include /usr/src/…` lines, and sid's
    /// `KBUILD_OUTPUT=/usr/src/…` (7.x), pointing under `root`.
    public static func relocatedMakefile(_ text: String, root: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            for prefix in ["include ", "KBUILD_OUTPUT="] where line.hasPrefix(prefix + "/usr/src/") {
                return prefix + Path.join(root, String(line.dropFirst(prefix.count + 1)))
            }
            return String(line)
        }.joined(separator: "\n")
    }
}
