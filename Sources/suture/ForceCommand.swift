// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Livepatch
import Platform

struct ForceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "force",
        abstract: "Complete a stuck transition by marking every task as migrated.",
        discussion: """
            Writes 1 to /sys/kernel/livepatch/NAME/force. The stacks of the remaining tasks are not \
            checked, so they may run old and new code mixed, and the kernel keeps the module of a patch \
            forced out (and of patches a forced cumulative patch replaces) for good: it can never be \
            removed. Prefer `suture unload NAME`, which reverses the transition safely.
            """)

    @Argument(help: "The patch in transition.", completion: .custom(patchNameCompletions))
    var name: String

    @Flag(help: "Confirm that the module may never be removable afterwards.")
    var yes = false

    @OptionGroup var output: JSONOption

    func run() throws {
        try reportingErrors(json: output.json) {
            let manager = LivepatchManager(.live(), progress: livepatchProgress)
            let patch = try manager.force(name, confirmed: yes)
            if output.json {
                printJSON(LivepatchJSON.patches([patch]))
            } else {
                writeStandardOutput(LivepatchText.status([patch]))
            }
        }
    }
}
