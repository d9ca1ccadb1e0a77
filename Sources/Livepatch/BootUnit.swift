// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The systemd unit that loads the installed live patches at boot,
/// `suture.service`. The repository ships the same text as
/// `dist/suture.service`; a test keeps the two equal.
///
/// It is a oneshot service that runs `suture load --all` once local file
/// systems are mounted, before `network-pre.target` and before
/// `sysinit.target` (so before ordinary services), and it is skipped when
/// the kernel command line has `suture.enable=0`. Installing it does not
/// enable it.
public enum BootUnit {
    public static let name = "suture.service"
    /// Where `suture install --unit` writes it by default.
    public static let defaultDirectory = "/etc/systemd/system"
    /// The suture that `dist/suture.service` runs; `text(executable:)`
    /// puts the real one in its place.
    public static let shippedExecutable = "/usr/local/bin/suture"
    /// The target whose `.wants` folder `systemctl enable` links it from.
    public static let wantedBy = "sysinit.target"

    /// The unit as shipped in `dist/suture.service`.
    public static let template = """
        # SPDX-License-Identifier: GPL-2.0-only
        # Loads the live patches installed for the running kernel (`suture install`)
        # early at every boot: once local file systems are mounted, before the
        # network is configured and before ordinary services start.
        # `suture install --unit` writes this file with ExecStart pointing at the
        # suture that runs it; `systemctl enable suture.service` turns it on.
        # Booting with suture.enable=0 on the kernel command line skips it.
        [Unit]
        Description=Load installed Suture live patches
        ConditionKernelCommandLine=!suture.enable=0
        DefaultDependencies=no
        RequiresMountsFor=/var/lib/suture
        After=local-fs.target
        Wants=network-pre.target
        Before=network-pre.target sysinit.target shutdown.target
        Conflicts=shutdown.target

        [Service]
        Type=oneshot
        RemainAfterExit=yes
        # A hostile or broken store must not stall the boot: each load has its own
        # transition timeout, and the whole unit this one.
        TimeoutStartSec=5min
        # SUTURE_STORE=DIR in /etc/default/suture moves the store.
        EnvironmentFile=-/etc/default/suture
        ExecStart=/usr/local/bin/suture load --all

        [Install]
        WantedBy=sysinit.target

        """

    /// The unit with `ExecStart` running `executable`, and the store
    /// `SUTURE_STORE` names when it is set (`store`).
    public static func text(executable: String, store: String? = nil) -> String {
        var text = template.replacing(
            "ExecStart=\(shippedExecutable) ", with: "ExecStart=\(execPath(executable)) ")
        if let store, !store.isEmpty, store != PatchStore.defaultRoot {
            let path = execPath(store)
            text = text.replacing("RequiresMountsFor=\(PatchStore.defaultRoot)\n", with: "RequiresMountsFor=\(path)\n")
            text = text.replacing(
                "EnvironmentFile=-/etc/default/suture\n",
                with: "EnvironmentFile=-/etc/default/suture\nEnvironment=\(execPath("SUTURE_STORE=" + store))\n")
        }
        return text
    }

    /// Where systemd finds units, the administrator's first.
    public static let unitDirectories = ["/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"]

    /// What `enableIfInstalled` did.
    public enum Enabling: String, Sendable {
        /// No unit file in `directories`: nothing to enable.
        case notInstalled
        case alreadyEnabled
        case enabled
        /// `systemctl` is missing or failed (no systemd, a container).
        case failed
    }

    /// Asks systemd to enable the unit when it is installed and not enabled
    /// (`suture install`: a stored patch should load at boot).
    public static func enableIfInstalled(
        directories: [String] = unitDirectories, systemctl: String = "systemctl"
    ) -> (Enabling, String) {
        guard directories.contains(where: { FileSystem.exists(Path.join($0, name)) }) else {
            return (.notInstalled, "")
        }
        guard let state = try? Command.run([systemctl, "is-enabled", name], timeout: 30) else {
            return (.failed, "cannot run \(systemctl)")
        }
        if state.termination == .exited(0) { return (.alreadyEnabled, "") }
        guard let run = try? Command.run([systemctl, "enable", name], timeout: 60) else {
            return (.failed, "cannot run \(systemctl)")
        }
        guard run.termination == .exited(0) else {
            return (.failed, "\(systemctl) enable \(name): \(run.stderrText.trimmingWhitespace())")
        }
        return (.enabled, "")
    }

    /// A path as `ExecStart` reads it: `%` starts a specifier, and white
    /// space or quotes need a quoted word (systemd.service(5), "Command lines").
    static func execPath(_ path: String) -> String {
        var escaped = path.replacing("%", with: "%%")
        if escaped.contains(where: { $0 == " " || $0 == "\t" || $0 == "\"" || $0 == "'" || $0 == "\\" }) {
            escaped = "\"" + escaped.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
        }
        return escaped
    }

    /// Writes the unit into `directory`, replacing an older copy. Returns
    /// its path and whether the file changed; it is not enabled.
    public static func install(directory: String = defaultDirectory, executable: String, store: String? = nil)
        throws(LivepatchError) -> (path: String, changed: Bool)
    {
        let path = Path.join(directory, name)
        let wanted = text(executable: executable, store: store)
        if FileSystem.readTextIfPresent(path) == wanted { return (path, false) }
        do {
            try FileSystem.makeDirectories(directory)
            try StoreFiles.writeDurably(path, Array(wanted.utf8))
        } catch {
            throw LivepatchError(.io, errno: error.errno, "cannot write \(path): \(error.context)")
        }
        return (path, true)
    }
}
