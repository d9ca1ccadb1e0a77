// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Livepatch
import Platform
import Testing

/// The boot unit: the shipped file, the embedded copy, and how it is written.
/// (`systemd-analyze verify` and `condition` check it in IntegrationTests/PersistenceCLITests.)
@Suite struct BootUnitTests {
    static let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../dist/suture.service").standardized.path

    @Test func theEmbeddedUnitIsTheShippedOne() throws {
        #expect(BootUnit.template == (try FileSystem.readText(Self.shipped)))
        #expect(BootUnit.template.contains("\nExecStart=\(BootUnit.shippedExecutable) load --all\n"))
    }

    @Test func itIsAOneshotBeforeTheNetworkThatCanBeSwitchedOff() {
        let lines = BootUnit.template.split(separator: "\n").map(String.init)
        for wanted in [
            "Type=oneshot", "Wants=network-pre.target",
            "ConditionKernelCommandLine=!suture.enable=0", "DefaultDependencies=no",
            "After=local-fs.target", "RequiresMountsFor=/var/lib/suture",
            "Before=network-pre.target sysinit.target shutdown.target", "WantedBy=\(BootUnit.wantedBy)",
        ] {
            #expect(lines.contains(wanted), "\(wanted) is missing")
        }
    }

    @Test(arguments: [
        ("/usr/sbin/suture", "/usr/sbin/suture"),
        ("/opt/100%/suture", "/opt/100%%/suture"),
        ("/opt/my tools/suture", "\"/opt/my tools/suture\""),
        ("/opt/a\"b\\c/suture", "\"/opt/a\\\"b\\\\c/suture\""),
    ])
    func execStartRunsTheGivenSuture(path: String, written: String) {
        let text = BootUnit.text(executable: path)
        #expect(text.contains("\nExecStart=\(written) load --all\n"))
        #expect(text.replacingOccurrences(of: written, with: BootUnit.shippedExecutable) == BootUnit.template)
    }

    @Test func installWritesButDoesNotEnable() throws {
        let directory = try TemporaryDirectory(prefix: "suture-unit-test")
        let first = try BootUnit.install(directory: Path.join(directory.path, "system"), executable: "/usr/bin/suture")
        #expect(first.path == Path.join(directory.path, "system/suture.service"))
        #expect(first.changed)
        #expect(try FileSystem.readText(first.path) == BootUnit.text(executable: "/usr/bin/suture"))
        #expect(Files.list(Path.join(directory.path, "system")) == ["suture.service"])
        #expect(
            try BootUnit.install(directory: Path.join(directory.path, "system"), executable: "/usr/bin/suture").changed
                == false)
        #expect(
            try BootUnit.install(directory: Path.join(directory.path, "system"), executable: "/sbin/suture").changed)
    }
}
