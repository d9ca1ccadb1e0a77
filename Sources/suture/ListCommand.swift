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

            --installed shows the patches installed for the kernel (`suture install`; default the \
            running one) in install order next to what is loaded: each one's state is loaded, \
            notLoaded, otherBuildLoaded, superseded (a cumulative patch installed later replaces it), \
            corrupt (with its problem) or notRunning (another kernel), and livepatch modules loaded but \
            not installed are listed apart. With --json: {"release","running","directory", \
            "installed":[{…the shape of `suture install --json`'s "installed"…,"state","loadedFrom"}], \
            "notLoaded":[NAME…],"notInstalled":[NAME…]}.
            """)

    @Flag(help: "Show the installed patches next to the loaded ones.")
    var installed = false

    @OptionGroup var kernel: InstalledKernelOption

    @OptionGroup var output: JSONOption

    func validate() throws {
        guard installed || kernel.kernel == nil else { throw ValidationError("--kernel needs --installed") }
    }

    func run() throws {
        try reportingErrors(json: output.json) {
            let manager = LivepatchManager(.live(), progress: livepatchProgress)
            if installed {
                let store = PatchStore.configured()
                let (release, _) = try kernel.target(store: store, running: manager.runningRelease)
                let report = try manager.installed(store: store, release: release)
                if output.json {
                    printJSON(report.json)
                } else {
                    writeStandardOutput(StoreText.installed(report))
                }
                return
            }
            let patches = try manager.list()
            if output.json {
                printJSON(LivepatchJSON.patches(patches))
            } else {
                writeStandardOutput(LivepatchText.list(patches))
            }
        }
    }
}
