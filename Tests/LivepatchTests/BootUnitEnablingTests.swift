// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Livepatch
import Platform
import Testing

/// The unit and the store (`SUTURE_STORE`, /etc/default/suture), and
/// `suture install` enabling an installed unit, with a systemctl that
/// only records what it is asked.
@Suite struct BootUnitEnablingTests {
    @Test func theUnitReadsTheDefaultsFileAndAGivenStore() {
        let plain = BootUnit.text(executable: "/usr/bin/suture")
        #expect(plain.contains("\nEnvironmentFile=-/etc/default/suture\nExecStart=/usr/bin/suture load --all\n"))
        #expect(!plain.contains("Environment=SUTURE_STORE"))
        #expect(BootUnit.text(executable: "/usr/bin/suture", store: PatchStore.defaultRoot) == plain)
        let moved = BootUnit.text(executable: "/usr/bin/suture", store: "/srv/patches")
        #expect(moved.contains("\nRequiresMountsFor=/srv/patches\n"))
        #expect(!moved.contains("RequiresMountsFor=/var/lib/suture"))
        #expect(moved.contains("\nEnvironmentFile=-/etc/default/suture\nEnvironment=SUTURE_STORE=/srv/patches\n"))
        let spaced = BootUnit.text(executable: "/usr/bin/suture", store: "/srv/my patches")
        #expect(spaced.contains("\nEnvironment=\"SUTURE_STORE=/srv/my patches\"\n"), "\(spaced)")
    }

    /// A fake systemctl: `is-enabled` answers from a file, every call is logged.
    func systemctl(in directory: String, enabled: Bool, enableFails: Bool = false) throws -> String {
        let path = Path.join(directory, "systemctl")
        let log = Path.join(directory, "calls")
        try FileSystem.write(
            path,
            """
            #!/bin/sh
            echo "$*" >> \(log)
            case "$1" in
            is-enabled) \(enabled ? "echo enabled; exit 0" : "echo disabled; exit 1") ;;
            enable) \(enableFails ? "echo 'Failed to enable unit' >&2; exit 1" : "exit 0") ;;
            esac
            """, mode: 0o755)
        try FileSystem.setMode(path, 0o755)
        return path
    }

    func calls(_ directory: String) -> [String] {
        (FileSystem.readTextIfPresent(Path.join(directory, "calls")) ?? "").split(separator: "\n").map(String.init)
    }

    @Test func anInstalledUnitThatIsNotEnabledGetsEnabled() throws {
        let scratch = try TemporaryDirectory(prefix: "suture-enable-test")
        let units = Path.join(scratch.path, "lib/systemd/system")
        let etc = Path.join(scratch.path, "etc/systemd/system")
        let tool = try systemctl(in: scratch.path, enabled: false)

        // No unit anywhere: systemd is not asked.
        #expect(BootUnit.enableIfInstalled(directories: [etc, units], systemctl: tool).0 == .notInstalled)
        #expect(calls(scratch.path).isEmpty)

        _ = try BootUnit.install(directory: units, executable: "/usr/bin/suture")
        #expect(BootUnit.enableIfInstalled(directories: [etc, units], systemctl: tool).0 == .enabled)
        #expect(calls(scratch.path) == ["is-enabled suture.service", "enable suture.service"])

        let enabledTool = try systemctl(in: scratch.path, enabled: true)
        #expect(BootUnit.enableIfInstalled(directories: [etc, units], systemctl: enabledTool).0 == .alreadyEnabled)
        #expect(calls(scratch.path).last == "is-enabled suture.service")

        let failing = try systemctl(in: scratch.path, enabled: false, enableFails: true)
        let (state, problem) = BootUnit.enableIfInstalled(directories: [etc, units], systemctl: failing)
        #expect(state == .failed)
        #expect(problem.contains("Failed to enable unit"), "\(problem)")
        let missing = BootUnit.enableIfInstalled(
            directories: [units], systemctl: Path.join(scratch.path, "no-such-systemctl"))
        #expect(missing.0 == .failed)
    }
}
