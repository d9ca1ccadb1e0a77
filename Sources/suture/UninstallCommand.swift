// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Livepatch
import Platform

struct UninstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall",
        abstract: "Remove an installed live patch from the store; the running kernel is not touched.",
        discussion: """
            NAME is the module name (livepatch_foo) or its file name (livepatch-foo.ko). The patch is no \
            longer loaded at boot; if it is loaded now, it stays loaded until `suture unload NAME`. A \
            damaged entry (a module without record, say) is removed too.

            With --json, prints {"uninstalled":{…the shape of `suture install --json`'s "installed"…}, \
            "release":RELEASE,"stillLoaded":BOOL}.
            """)

    @Argument(help: "The installed patch.", completion: .custom(patchNameCompletions))
    var name: String

    @OptionGroup var kernel: InstalledKernelOption

    @OptionGroup var output: JSONOption

    func run() throws {
        try reportingErrors(json: output.json) {
            let store = PatchStore.configured()
            let manager = LivepatchManager(.live(), progress: livepatchProgress)
            let (release, _) = try kernel.target(store: store, running: manager.runningRelease)
            let outcome = try manager.uninstall(name, release: release, store: store)
            if output.json {
                printJSON(
                    .object([
                        ("uninstalled", outcome.entry.json),
                        ("release", .string(release)),
                        ("stillLoaded", .bool(outcome.stillLoaded)),
                    ]))
            } else {
                writeStandardOutput(StoreText.uninstall(outcome, release: release))
            }
        }
    }
}
