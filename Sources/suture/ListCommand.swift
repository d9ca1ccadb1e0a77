// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Livepatch
import Platform

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the livepatch modules of the running kernel in stack order.",
        discussion: """
        Shows each patch's state (enabled, patching, unpatching, or gone when the module is still \
        loaded but its patch was disabled or replaced), its objects (vmlinux or a module, patched or \
        waiting for that module) and functions with their sympos, and the replace flag when it is \
        known: 6.1 kernels do not show it, so Suture reads it from the modinfo of modules it loaded.

        With --json, prints {"patches":[{"name","module","state","enabled","transition","direction", \
        "replace","file","objects":[{"name","patched","functions":[{"name","sympos"}]}], \
        "pendingTasks":[{"pid","tid","comm","stack","patchFunctions"}],"hiddenTasksPending"}]}.
        """)

    @OptionGroup var output: JSONOption

    func run() throws {
        try reportingErrors(json: output.json) {
            let manager = LivepatchManager(.live(), progress: livepatchProgress)
            let patches = try manager.list()
            if output.json {
                printJSON(LivepatchJSON.patches(patches))
            } else {
                writeStandardOutput(LivepatchText.list(patches))
            }
        }
    }
}
