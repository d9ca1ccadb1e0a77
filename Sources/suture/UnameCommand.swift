// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Livepatch
import Platform

struct UnameCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uname",
        abstract: "Print the kernel release and the live patches in effect, with the CVEs they fix.",
        discussion: """
            The effective kernel version, for people and vulnerability scanners: the running release \
            (`uname -r`), then each live patch in effect (enabled, its transition finished), with the \
            CVEs and description `suture build` recorded in it. Patches in transition, disabled or \
            replaced do not count.

            With --json, prints {"release","version","patches":[{"name","description","cves", \
            "builtFor","diffs"}],"cves":[ID…]}, "cves" being every patch's, once each, by year and number.
            """)

    @OptionGroup var output: JSONOption

    func run() throws {
        try reportingErrors(json: output.json) {
            let manager = LivepatchManager(.live(), progress: livepatchProgress)
            let release = manager.runningRelease
            let version = FileSystem.readTextIfPresent("/proc/sys/kernel/version")?.trimmingWhitespace()
            // A kernel without live patching has no patch in effect.
            let all = FileSystem.isDirectory("/sys/kernel/livepatch") ? try manager.list() : []
            let patches = all.filter { $0.present && $0.enabled && !$0.transition }
            let cves = SutureModinfo.sorted(patches.flatMap(\.cves))
            if output.json {
                printJSON(
                    .object([
                        ("release", .string(release)),
                        ("version", .optional(version)),
                        (
                            "patches",
                            .array(
                                patches.map {
                                    .object([
                                        ("name", .string($0.name)), ("description", .optional($0.description)),
                                        ("cves", .strings($0.cves)), ("builtFor", .optional($0.builtFor)),
                                        ("diffs", .strings($0.diffs)),
                                    ])
                                })
                        ),
                        ("cves", .strings(cves)),
                    ]))
                return
            }
            var lines = [release]
            if patches.isEmpty { lines.append("no live patches in effect") }
            for patch in patches {
                var line = "live patch \(patch.name)"
                if !patch.cves.isEmpty { line += ": fixes \(patch.cves.joined(separator: ", "))" }
                if let description = patch.description { line += " (\(description))" }
                lines.append(line)
            }
            writeStandardOutput(lines.map { Printable.terminalSafe($0) }.joined(separator: "\n") + "\n")
        }
    }
}
