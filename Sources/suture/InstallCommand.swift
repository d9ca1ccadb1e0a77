// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Livepatch
import Platform
import TargetKernel

struct InstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Keep a live patch across reboots: check it, load it, and store it for its kernel.",
        discussion: """
            Checks that MODULE is a livepatch module built for the kernel release (its vermagic). For \
            the running kernel it must also load: it is loaded and its transition waited for, unless the \
            same module is loaded already, and nothing is stored when that fails. For another installed \
            kernel (--kernel) it is only checked, and loads at that kernel's boot. The module is kept as \
            RELEASE/NAME.ko in the store ($SUTURE_STORE, default /var/lib/suture) with a record NAME.json: \
            when it was installed, from which file, its SHA-256 and its place in install order. \
            Installing a name again replaces the stored copy. `suture load --all` loads the installed \
            patches; `suture uninstall` removes one.

            --unit writes the boot unit suture.service (dist/suture.service, its ExecStart running this \
            suture) into --unit-directory, and does not enable it: `systemctl enable suture.service` \
            does. At boot it runs `suture load --all` once local file systems are mounted, before \
            network-pre.target and sysinit.target, unless the kernel command line has suture.enable=0.

            With --json, prints {"installed":{"name","release","sequence","installedAt","source","module", \
            "sha256","size","replace","vermagic","description","cves","problem"},"load":"loaded"|"alreadyLoaded"| \
            "notRunning","replaced":[…],"unit":"notInstalled"|"alreadyEnabled"|"enabled"|"failed"}; with --unit, \
            {"unit","execStart","changed","enabled"}.

            When suture.service is installed (by --unit or the Debian package) and not enabled, installing \
            a patch asks systemd to enable it (`systemctl enable suture.service`). The unit reads \
            /etc/default/suture, where SUTURE_STORE=DIR moves the store; --unit with SUTURE_STORE set \
            writes that store into the unit.
            """)

    @Argument(
        help: "The livepatch module file (.ko, also .ko.xz or .ko.zst).",
        completion: .file(extensions: moduleExtensions))
    var module: String?

    @OptionGroup var kernel: InstalledKernelOption

    @Option(
        help: ArgumentHelp(
            "Seconds to wait for the transition when loading, before reversing it.", valueName: "SECONDS"))
    var timeout: Double = 30

    @Flag(help: "Install the boot unit suture.service instead of a patch; it is not enabled.")
    var unit = false

    @Option(
        name: .customLong("unit-directory"), help: ArgumentHelp("Where --unit writes suture.service.", valueName: "DIR")
    )
    var unitDirectory = BootUnit.defaultDirectory

    @OptionGroup var output: JSONOption

    func validate() throws {
        guard (module != nil) != unit else { throw ValidationError("give either MODULE or --unit") }
        guard !unit || kernel.kernel == nil else { throw ValidationError("--unit takes no --kernel") }
        guard timeout > 0 else { throw ValidationError("--timeout must be more than 0 seconds") }
    }

    func run() throws {
        try reportingErrors(json: output.json) {
            if unit {
                try installUnit()
                return
            }
            guard let module else { return }
            let store = PatchStore.configured()
            let manager = LivepatchManager(.live(), progress: livepatchProgress)
            let (release, target) = try kernel.target(store: store, running: manager.runningRelease)
            if let target, target.config != nil, !target.livepatch {
                throw LivepatchError(
                    .unsupported,
                    "kernel \(target.release) has no live patching support (CONFIG_LIVEPATCH is not set in \(target.config ?? "its config"))"
                )
            }
            let outcome = try manager.install(module, release: release, store: store, timeout: timeout)
            // A stored patch loads at boot only with the unit enabled.
            let (enabling, problem) = BootUnit.enableIfInstalled()
            if output.json {
                printJSON(
                    .object([
                        ("installed", outcome.entry.json),
                        ("load", .string(outcome.load.rawValue)),
                        ("replaced", .strings(outcome.replaced)),
                        ("unit", .string(enabling.rawValue)),
                    ]))
            } else {
                writeStandardOutput(StoreText.install(outcome))
                switch enabling {
                case .enabled: writeStandardOutput("enabled \(BootUnit.name): installed patches load at every boot\n")
                case .failed: Progress.warn("suture: warning: \(BootUnit.name) is not enabled: \(problem)")
                case .notInstalled, .alreadyEnabled: break
                }
            }
        }
    }

    private func installUnit() throws {
        let executable = (try? FileSystem.readLink("/proc/self/exe")) ?? Path.absolute(CommandLine.arguments[0])
        let store = FileSystem.environment(PatchStore.rootVariable).flatMap { $0.isEmpty ? nil : Path.absolute($0) }
        let (path, changed) = try BootUnit.install(directory: unitDirectory, executable: executable, store: store)
        let enabled = FileSystem.exists(Path.join(unitDirectory, BootUnit.wantedBy + ".wants", BootUnit.name))
        if output.json {
            printJSON(
                .object([
                    ("unit", .string(path)),
                    ("execStart", .string("\(executable) load --all")),
                    ("changed", .bool(changed)),
                    ("enabled", .bool(enabled)),
                ]))
            return
        }
        var text = "\(changed ? "wrote" : "unchanged:") \(path), running \(executable) load --all at boot\n"
        text +=
            enabled
            ? "it is enabled; run `systemctl daemon-reload` to pick up changes\n"
            : "it is not enabled: `systemctl daemon-reload && systemctl enable \(BootUnit.name)` loads the installed patches at every boot\n"
        writeStandardOutput(text)
    }
}
