// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Livepatch
import Platform

struct UnloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unload",
        abstract: "Disable a live patch, wait for its transition and remove its module.",
        discussion: """
            NAME is the module name (livepatch_foo) or its file name (livepatch-foo, livepatch-foo.ko). \
            --all unloads every livepatch module, newest first. A module whose patch is already \
            disabled or replaced is simply removed. The kernel cannot enable a disabled patch again: \
            to bring it back, load it again. \
            If disabling does not finish within --timeout seconds, prints the blocking tasks, reverses \
            so that the patch stays applied, and exits 1.

            With --json, prints {"patches":[…],"unloaded":[…]}: the patches that remain.
            """)

    @Argument(help: "The patch to unload.", completion: .custom(patchNameCompletions))
    var name: String?

    @Flag(help: "Unload every livepatch module, in reverse stack order.")
    var all = false

    @Option(help: ArgumentHelp("Seconds to wait for each transition.", valueName: "SECONDS"))
    var timeout: Double = 30

    @OptionGroup var output: JSONOption

    func validate() throws {
        guard (name != nil) != all else { throw ValidationError("give either NAME or --all") }
        guard timeout > 0 else { throw ValidationError("--timeout must be more than 0 seconds") }
    }

    func run() throws {
        try reportingErrors(json: output.json) {
            let manager = LivepatchManager(.live(), progress: livepatchProgress)
            let unloaded: [String]
            if let name {
                unloaded = try manager.unload(name, timeout: timeout)
            } else {
                unloaded = try manager.unloadAll(timeout: timeout)
            }
            if output.json {
                printJSON(LivepatchJSON.patches(try manager.list(), [("unloaded", .strings(unloaded))]))
            } else if !unloaded.isEmpty {
                writeStandardOutput("unloaded: \(unloaded.joined(separator: ", "))\n")
            }
        }
    }
}
