// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Foundation
import Platform
import TestSupport
import Testing

/// What ships with the binary and needs no guest: `--version`, the help
/// text the man pages and completions are made from, the completions'
/// own candidates, `suture info` on files, and `build`'s checks of
/// `--description`, `--cve` and `-o`.
@Suite struct PackagingCLITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test func versionNamesTheChangelogVersionAndTheCommit() throws {
        let run = try SutureBinary.run(["--version"])
        #expect(run.termination == .exited(0))
        let changelog = try FileSystem.readText(Path.join(Self.root, "debian/changelog"))
        let entry = try #require(changelog.split(separator: "\n").first)
        let full = try #require(entry.split(separator: "(").dropFirst().first?.split(separator: ")").first)
        // The upstream part: without a Debian revision, if there is one.
        let upstream = full.contains("-") ? full.split(separator: "-").dropLast().joined(separator: "-") : String(full)
        let git = try Command.run([
            "git", "-c", "safe.directory=\(Self.root)", "-C", Self.root, "rev-parse", "--short=12", "HEAD",
        ])
        let commit = git.stdoutText.trimmingWhitespace()
        #expect(git.termination == .exited(0) && commit.count == 12)
        #expect(run.stdoutText.hasPrefix("suture \(upstream) (commit \(commit)"), "\(run.stdoutText)")
        // The same line scripts/version.sh prints for packaging.
        let script = try Command.run(["sh", Path.join(Self.root, "scripts/version.sh")])
        #expect(script.stdoutText.hasPrefix("\(upstream) \(commit)"))
    }

    @Test func everyOptionNamesItsValue() throws {
        let run = try SutureBinary.run(["--experimental-dump-help"])
        let dump = try JSON.parse(run.stdout)
        var unnamed: [String] = []
        func walk(_ command: JSON, _ path: String) {
            for argument in command["arguments"]?.arrayValue ?? [] where argument["kind"]?.stringValue == "option" {
                let name = argument["names"]?[0]?["name"]?.stringValue ?? "?"
                // Without a value name, ArgumentParser shows the property name.
                let value = argument["valueName"]?.stringValue ?? ""
                if value == name || value.isEmpty { unnamed.append("\(path) --\(name) <\(value)>") }
            }
            for sub in command["subcommands"]?.arrayValue ?? [] {
                walk(sub, path + " " + (sub["commandName"]?.stringValue ?? "?"))
            }
        }
        walk(dump["command"] ?? .null, "suture")
        #expect(unnamed.isEmpty, "\(unnamed)")
        #expect(unnamed.count < 100)
    }

    @Test func processHelpShowsTheModelDefaultAndNeutralPID() throws {
        let apply = try SutureBinary.run(["process", "apply", "--help"]).stdoutText
        #expect(
            apply.contains("default:\n                          stop-check)") || apply.contains("default: stop-check"),
            "\(apply)")
        #expect(!apply.contains("default: 0"))
        let status = try SutureBinary.run(["process", "status", "--help"]).stdoutText
        #expect(status.contains("--pid <PID>"))
        #expect(!status.contains("to patch"), "\(status)")
    }

    @Test func buildChecksWhatAPatchFixesBeforeAnythingElse() throws {
        let scratch = try Scratch("suture-build-checks")
        let folder = scratch.file("out/new")
        for arguments in [
            ["--cve", "CVE-2024-1"], ["--cve", "CVE-2024-12345,bogus"], ["--description", "two\nlines"],
            ["--description", ""],
        ] {
            let run = try SutureBinary.run(["build", "-o", folder, scratch.file("missing.diff")] + arguments)
            #expect(run.termination == .exited(64), "\(arguments): \(run.stderrText)")
        }
        // A build that fails leaves no -o folder behind.
        let failed = try SutureBinary.run([
            "build", "--json", "-o", folder, "--cve", "CVE-2024-12345", scratch.file("missing.diff"),
        ])
        #expect(failed.termination == .exited(1) || failed.termination == .exited(64), "\(failed.stdoutText)")
        #expect(!FileSystem.exists(scratch.file("out")))
        // A file where the folder should be is refused.
        _ = try scratch.write("file", "x")
        let diff = try scratch.write("a.diff", "--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\n")
        let blocked = try SutureBinary.run(["build", "-o", scratch.file("file"), diff])
        #expect(blocked.termination != .exited(0))
    }

    /// A module of the target kernel, as it is (signed by the distro) and
    /// with Suture's keys added to its modinfo.
    @Test func infoReadsModinfoAndTheSigner() throws {
        let release = try TestGuest.targetKernel().release
        let module = "/lib/modules/\(release)/kernel/fs/xfs/xfs.ko"
        try #require(FileSystem.exists(module), "no \(module)")
        let signed = try JSON.parse(try SutureBinary.run(["info", "--json", module]).stdout)
        let modinfo = try Command.run(["modinfo", "-F", "signer", module])
        #expect(signed["signer"]?.stringValue == modinfo.stdoutText.trimmingWhitespace().nilIfEmpty)
        #expect(signed["signed"]?.boolValue == !modinfo.stdoutText.trimmingWhitespace().isEmpty)
        #expect(signed["livepatch"]?.boolValue == false)
        #expect(signed["release"]?.stringValue == release)
        #expect(signed["sha256"]?.stringValue == (try SHA256.hex(file: module)))

        let file = try ELFFile.parse(try FileSystem.read(module), path: module)
        var object = try RelocatableObject(file)
        let index = try #require(object.sections.firstIndex { $0.name == ".modinfo" })
        var info: [UInt8] = []
        for (key, value) in file.modinfo() { info += Array("\(key)=\(value)".utf8) + [0] }
        for entry in [
            "suture.release=9.9.9-test", "suture.description=Fix the xfs thing", "suture.cve=CVE-2099-0001",
            "suture.cve=CVE-2099-0002", "suture.function=xfs:xfs_fs_fill_super,1", "suture.diff=fix.diff:sha256:00",
            "suture.replace=1",
        ] {
            info += Array(entry.utf8) + [0]
        }
        object.sections[index].content = .bytes(ELFBytes(info))
        let scratch = try Scratch("suture-info")
        let copy = scratch.file("xfs-fixed.ko")
        try FileSystem.write(copy, try ELFWriter.write(object))
        let json = try JSON.parse(try SutureBinary.run(["info", "--json", copy]).stdout)
        #expect(json["release"]?.stringValue == "9.9.9-test")
        #expect(json["description"]?.stringValue == "Fix the xfs thing")
        #expect(json["cves"] == .strings(["CVE-2099-0001", "CVE-2099-0002"]))
        #expect(json["replace"]?.boolValue == true)
        #expect(json["signed"]?.boolValue == false)
        #expect(json["klpObjects"] == .strings(["xfs"]))
        #expect(json["diffs"] == .strings(["fix.diff:sha256:00"]))
        #expect(
            json["functions"]
                == .array([
                    .object([("object", .string("xfs")), ("name", .string("xfs_fs_fill_super")), ("sympos", .int(1))])
                ]))
        let text = try SutureBinary.run(["info", copy]).stdoutText
        #expect(text.contains("  cves: CVE-2099-0001, CVE-2099-0002\n"), "\(text)")
        #expect(text.contains("  function: xfs: xfs_fs_fill_super,1\n"), "\(text)")
        let missing = try SutureBinary.run(["info", scratch.file("nothing.ko")])
        #expect(missing.termination == .exited(1))
    }

    @Test func completionsOfferPatchNamesReleasesAndModuleFiles() throws {
        let scratch = try Scratch("suture-completion")
        let running = try FileSystem.readText("/proc/sys/kernel/osrelease").trimmingWhitespace()
        try FileSystem.makeDirectories(scratch.file("store/\(running)"))
        _ = try scratch.write("store/\(running)/livepatch_fix_one.json", "{}")
        _ = try scratch.write("store/\(running)/livepatch_fix_one.ko", "")
        try FileSystem.makeDirectories(scratch.file("cache/kernels/9.9.9-fetched"))
        let environment = Command.environment([
            "SUTURE_STORE": scratch.file("store"), "SUTURE_CACHE": scratch.file("cache"),
        ])
        let names = try SutureBinary.run(
            ["---completion", "unload", "--", "positional@0", "2", "0", "suture", "unload", ""],
            environment: environment)
        #expect(names.stdoutText.split(separator: "\n").contains("livepatch_fix_one"), "\(names.stdoutText)")
        let releases = try SutureBinary.run(
            ["---completion", "build", "--", "--kernel", "3", "0", "suture", "build", "--kernel", ""],
            environment: environment)
        let offered = releases.stdoutText.split(separator: "\n").map(String.init)
        #expect(offered.contains("9.9.9-fetched"), "\(offered)")
        #expect(offered.contains(try TestGuest.targetKernel().release))
        for shell in ["bash", "zsh", "fish"] {
            let script = try SutureBinary.run(["--generate-completion-script", shell])
            #expect(script.termination == .exited(0))
            #expect(script.stdoutText.contains("ko.zst"), "\(shell)")
            #expect(script.stdoutText.contains("uname") && script.stdoutText.contains("info"), "\(shell)")
        }
    }
}

extension String {
    fileprivate var nilIfEmpty: String? { isEmpty ? nil : self }
}

/// The README's two commands work as root without sudo and, as a user,
/// run themselves again through sudo.
@Suite struct ReadmeCommandTests {
    @Test(arguments: ["demo.sh", "test.sh"])
    func scriptsUseSudoOnlyWhenNotRoot(_ script: String) throws {
        let scratch = try Scratch("suture-sudo")
        try FileSystem.setMode(scratch.path, 0o755)
        let log = scratch.file("sudo.log")
        try FileSystem.write(log, "", mode: 0o666)
        try FileSystem.setMode(log, 0o666)
        // A sudo that only says how it was called.
        let fake = scratch.file("bin/sudo")
        try FileSystem.makeDirectories(scratch.file("bin"))
        try FileSystem.setMode(scratch.file("bin"), 0o755)
        try FileSystem.write(fake, "#!/bin/sh\necho \"$*\" > \(log)\n", mode: 0o755)
        try FileSystem.setMode(fake, 0o755)
        let path = Path.join(PackagingCLITests.root, "scripts", script)
        // As root, become nobody: the script must not start its work as a user.
        let asUser = getuid() == 0 ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] : []
        let run = try Command.run(
            asUser + ["env", "PATH=\(scratch.file("bin")):/usr/bin:/bin", "bash", path, "--probe"], timeout: 60)
        #expect(run.termination == .exited(0), "\(run.stderrText)")
        #expect(try FileSystem.readText(log) == "bash \(path) --probe\n")
    }
}
