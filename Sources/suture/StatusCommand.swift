// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Livepatch
import Platform

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show one live patch, or all, with the tasks a transition waits for.",
        discussion: """
            Like `suture list`, and during a transition also its direction (patching or unpatching) \
            and each pending task with its kernel stack, the frames that belong to the patch marked.

            With --json, prints the shape of `suture list --json`.
            """)

    @Argument(
        help: "The patch (module name or file name); all patches when omitted.",
        completion: .custom(patchNameCompletions))
    var name: String?

    @OptionGroup var output: JSONOption

    func run() throws {
        try reportingErrors(json: output.json) {
            let manager = LivepatchManager(.live(), progress: livepatchProgress)
            let patches = try name.map { [try manager.status($0)] } ?? manager.list()
            if output.json {
                printJSON(LivepatchJSON.patches(patches))
            } else {
                writeStandardOutput(LivepatchText.status(patches))
            }
        }
    }
}
