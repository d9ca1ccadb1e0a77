// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Livepatch
import Platform

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load a livepatch module into the running kernel and wait for its transition.",
        discussion: """
        Refuses a file that is not a livepatch module (modinfo livepatch=Y) built for the running \
        kernel release. Loads it with finit_module and shows the tasks that have not migrated yet. \
        If the transition does not finish within --timeout seconds, prints the blocking tasks with \
        their kernel stacks, reverses the transition, removes the module and exits 1. When the new \
        patch replaces earlier ones, their modules are removed too.

        With --json, prints {"patches":[…],"loaded":NAME,"replaced":[…]}: every loaded patch \
        afterwards, in the shape of `suture list --json`.
        """)

    @Argument(help: "The livepatch module file (.ko, also .ko.xz or .ko.zst).")
    var module: String

    @Argument(help: ArgumentHelp("Module parameters for the kernel.", valueName: "PARAM=VALUE"))
    var parameters: [String] = []

    @Option(help: ArgumentHelp("Seconds to wait for the transition before reversing it.", valueName: "SECONDS"))
    var timeout: Double = 30

    @Flag(name: .customLong("no-wait"), help: "Return right after loading, while the transition runs.")
    var noWait = false

    @OptionGroup var output: JSONOption

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be more than 0 seconds") }
    }

    func run() throws {
        try reportingErrors(json: output.json) {
            let manager = LivepatchManager(.live(), progress: livepatchProgress)
            let outcome = try manager.load(module, parameters: parameters, timeout: timeout, wait: !noWait)
            if output.json {
                printJSON(LivepatchJSON.patches(try manager.list(), [
                    ("loaded", .string(outcome.patch.name)),
                    ("replaced", .strings(outcome.replaced)),
                ]))
            } else {
                var text = LivepatchText.status([outcome.patch])
                if !outcome.replaced.isEmpty {
                    text += "replaced and removed: \(outcome.replaced.joined(separator: ", "))\n"
                }
                writeStandardOutput(text)
            }
        }
    }
}

/// Progress lines of the live-patch commands, on stderr.
@Sendable func livepatchProgress(_ line: String) {
    Progress.say("suture: " + line)
}
