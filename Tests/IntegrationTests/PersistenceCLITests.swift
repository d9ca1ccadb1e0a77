// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TargetKernel
import TestSupport
import Testing

/// The persistence commands on the host, which never loads a module: the
/// boot unit as systemd reads it, installing for a kernel that is not
/// running (checked, stored, not loaded), usage errors and `--json` errors.
/// Each test has its own store (`SUTURE_STORE`).
@Suite struct PersistenceCLITests {
    let files: TemporaryDirectory
    var store: String { Path.join(files.path, "store") }

    init() throws {
        files = try TemporaryDirectory(prefix: "suture-persistence-cli")
    }

    func suture(_ arguments: [String]) throws -> CommandResult {
        try Command.run(
            [try SutureBinary.checked()] + arguments,
            environment: Command.environment(["SUTURE_STORE": store]), timeout: 120)
    }

    // MARK: - The boot unit

    @Test func theUnitPassesSystemdAnalyzeVerifyAndHonoursTheCommandLine() throws {
        let analyze = try #require(
            Command.which("systemd-analyze"), "systemd-analyze is missing: scripts/setup.sh installs systemd")
        let directory = Path.join(files.path, "system")
        let run = try suture(["install", "--unit", "--unit-directory", directory, "--json"])
        #expect(run.termination == .exited(0), "\(run.stderrText)")
        let report = try JSON.parse(run.stdout)
        #expect(report.objectValue?.map(\.0) == ["unit", "execStart", "changed", "enabled"])
        let unit = Path.join(directory, "suture.service")
        #expect(report["unit"]?.stringValue == unit)
        #expect(report["changed"]?.boolValue == true)
        #expect(report["enabled"]?.boolValue == false)
        #expect(try FileSystem.list(directory) == ["suture.service"], "the unit was enabled")
        let text = try FileSystem.readText(unit)
        let binary = try FileSystem.realPath(try SutureBinary.checked())
        #expect(text.contains("\nExecStart=\(binary) load --all\n"), "\(text)")

        let verify = try Command.run([analyze, "verify", unit], timeout: 60)
        #expect(
            verify.termination == .exited(0) && verify.stderrText.isEmpty && verify.stdoutText.isEmpty,
            "systemd-analyze verify: \(verify.stdoutText)\(verify.stderrText)")

        // The check can fail: a misspelt unit is reported on stderr.
        let broken = Path.join(directory, "broken.service")
        try FileSystem.write(broken, text.replacingOccurrences(of: "Type=oneshot", with: "Type=oneshoot"))
        let refused = try Command.run([analyze, "verify", broken], timeout: 60)
        #expect(refused.stderrText.contains("oneshoot"), "\(refused.stderrText)")

        // systemd itself skips it when the kernel command line says so
        // (SYSTEMD_PROC_CMDLINE stands in for /proc/cmdline).
        let root = Path.join(files.path, "root")
        let installed = try suture(["install", "--unit", "--unit-directory", Path.join(root, "etc/systemd/system")])
        #expect(installed.termination == .exited(0), "\(installed.stderrText)")
        for (cmdline, runs) in [("quiet suture.enable=0", false), ("quiet", true), ("suture.enable=1 quiet", true)] {
            let condition = try Command.run(
                [analyze, "condition", "--root=\(root)", "--unit=suture.service"],
                environment: Command.environment(["SYSTEMD_PROC_CMDLINE": cmdline]), timeout: 60)
            #expect(
                condition.termination == .exited(runs ? 0 : 1),
                "\(cmdline): \(condition.stdoutText)\(condition.stderrText)")
            #expect(
                (condition.stdoutText + condition.stderrText).contains(
                    "ConditionKernelCommandLine=!suture.enable=0 \(runs ? "succeeded" : "failed")"),
                "\(cmdline): \(condition.stdoutText)\(condition.stderrText)")
        }

        let again = try suture(["install", "--unit", "--unit-directory", directory])
        #expect(again.stdoutText.hasPrefix("unchanged: \(unit)"), "\(again.stdoutText)")
        #expect(
            again.stdoutText.contains("it is not enabled: `systemctl daemon-reload && systemctl enable suture.service`")
        )
    }

    // MARK: - Another kernel

    @Test func installForAKernelThatIsNotRunningStoresWithoutLoading() async throws {
        let target = try KernelResolver().defaultTarget()
        let running = Kernel.release()
        try #require(target.release != running, "the host runs the target kernel; this test needs another")
        let patch = try await PersistenceModules.shared.modules().procString

        // Without --kernel the running kernel is meant, and the vermagic says otherwise.
        let refused = try suture(["install", patch.path, "--json"])
        #expect(refused.termination == .exited(1))
        let error = try JSON.parse(refused.stdout)["error"]
        #expect(error?["code"]?.stringValue == "livepatch-vermagic")
        #expect(
            error?["message"]?.stringValue?.hasSuffix("add --kernel \(target.release)") == true, "\(refused.stdoutText)"
        )
        #expect(!FileSystem.exists(Path.join(store, target.release)))

        let run = try suture(["install", patch.path, "--kernel", target.release, "--json"])
        #expect(run.termination == .exited(0), "\(run.stdoutText)\(run.stderrText)")
        let report = try JSON.parse(run.stdout)
        #expect(report.objectValue?.map(\.0) == ["installed", "load", "replaced", "unit"])
        #expect(report["unit"]?.stringValue == "notInstalled")
        #expect(report["load"]?.stringValue == "notRunning")
        #expect(report["installed"]?["sha256"]?.stringValue == patch.sha256)
        #expect(
            report["installed"]?.objectValue?.map(\.0) == [
                "name", "release", "sequence", "installedAt", "source", "module", "sha256", "size", "replace",
                "vermagic", "description", "cves", "signer", "problem",
            ])
        #expect(
            try FileSystem.list(Path.join(store, target.release)).sorted() == [
                "\(patch.name).json", "\(patch.name).ko",
            ])

        let list = try suture(["list", "--installed", "--kernel", target.release])
        #expect(list.termination == .exited(0))
        #expect(
            list.stdoutText.hasPrefix(
                "installed for \(target.release) in \(store)/\(target.release):\n  1. \(patch.name)  installed "),
            "\(list.stdoutText)")
        let listed = try JSON.parse(try suture(["list", "--installed", "--kernel", target.release, "--json"]).stdout)
        #expect(
            listed.objectValue?.map(\.0) == [
                "release", "running", "directory", "installed", "notLoaded", "notInstalled",
            ])
        #expect(listed["running"]?.boolValue == false)
        #expect(listed["installed"]?[0]?["state"]?.stringValue == "notRunning")

        let uninstall = try suture(["uninstall", "livepatch-proc_string.ko", "--kernel", target.release])
        #expect(uninstall.termination == .exited(0), "\(uninstall.stderrText)")
        #expect(uninstall.stdoutText == "uninstalled \(patch.name) for \(target.release)\n")
        #expect(!FileSystem.exists(Path.join(store, target.release)))
    }

    // MARK: - Usage and errors

    @Test(arguments: [
        (["install"], "give either MODULE or --unit"),
        (["install", "x.ko", "--unit"], "give either MODULE or --unit"),
        (["load"], "give either MODULE or --all"),
        (["load", "--all", "--no-wait"], "--all takes no module parameters and no --no-wait"),
        (["list", "--kernel", "6.1.0-1-amd64"], "--kernel needs --installed"),
        (["uninstall"], "Missing expected argument '<name>'"),
    ])
    func usageErrorsExit64(arguments: [String], message: String) throws {
        let run = try suture(arguments)
        #expect(run.termination == .exited(64))
        #expect(run.stderrText.contains(message), "\(run.stderrText)")
    }

    @Test func errorsUnderJSONAreOneObject() throws {
        let run = try suture(["uninstall", "livepatch_nothing", "--json"])
        #expect(run.termination == .exited(1))
        let error = try JSON.parse(run.stdout)["error"]
        #expect(error?["code"]?.stringValue == "livepatch-not-installed")
        #expect(
            error?["message"]?.stringValue
                == "livepatch_nothing is not installed for kernel \(Kernel.release()) (\(store)/\(Kernel.release())); nothing is installed for it"
        )

        let missing = try suture(["install", Path.join(files.path, "missing.ko"), "--json"])
        #expect(missing.termination == .exited(1))
        #expect(try JSON.parse(missing.stdout)["error"]?["code"]?.stringValue == "livepatch-missing-file")
        #expect(!FileSystem.exists(Path.join(store, Kernel.release())))
    }

    /// Help text with its line breaks undone.
    func help(_ arguments: [String]) throws -> String {
        try suture(arguments + ["--help"]).stdoutText.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    @Test func helpNamesTheStoreAndTheUnit() throws {
        let install = try help(["install"])
        for text in ["/var/lib/suture", "--unit", "suture.enable=0", "systemctl enable suture.service", "--kernel"] {
            #expect(install.contains(text), "install --help lacks \(text)")
        }
        #expect(try help(["uninstall"]).contains("`suture unload NAME`"))
        #expect(try help(["load"]).contains("--all"))
        #expect(try help(["list"]).contains("--installed"))
        let top = try help([])
        #expect(top.contains("install") && top.contains("uninstall"))
    }
}
