// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Glibc
import Platform
import ProcessPatch

struct ProcessRevertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revert",
        abstract: "Remove the newest patch, or the one named, from a running process.",
        discussion: """
        Uses the stop-and-check model in reverse: no thread may be in the patch's code. The
        original entry bytes come back and the patch's memory is unmapped. A patch that a newer
        patch replaces again must wait until the newer one is reverted.
        """)

    @OptionGroup var process: PIDOption

    @Argument(help: "The patch file of the patch to remove (default: the newest).")
    var patch: String?

    @Option(help: ArgumentHelp("Give up after this many seconds.", valueName: "SECONDS"))
    var timeout: Double = 10

    @OptionGroup var json: JSONOption

    func run() throws {
        try reportingErrors(json: json.json) {
            // SIGCHLD tells the tracer that a thread stopped; blocked before
            // any other thread exists, no other thread can swallow it.
            Kernel.blockSignal(SIGCHLD)
            Cleanup.installSignalHandling()
            let report = try Revert(.init(pid: process.pid, patch: patch, timeout: timeout)).run()
            if json.json {
                printJSON(report.json)
            } else {
                writeStandardOutput("reverted patch #\(report.sequence) (\(report.name)) from process \(report.pid) "
                    + "(\(report.attempts) attempt(s), \(Int((report.seconds * 1000).rounded())) ms)\n")
            }
        }
    }
}
