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
            Uses the patch's model (or --model) in reverse. stop-check: no thread may be in the
            patch's code, then all switch back at once. per-thread and hybrid: each thread moves back
            to the old code once seen outside the patch's code (on timeout, all go forward again and
            the patch stays). A patch in a per-thread transition is reversed per thread. The original
            entry bytes come back and the patch's memory is unmapped. A patch that a newer patch
            replaces again must wait until the newer one is reverted.

            Several processes (--pid repeated, or --unit NAME.service): each is reverted in turn, all
            of them tried even when one fails; a process without the patch is reported as not patched.
            """)

    @OptionGroup var process: ProcessSelection

    @Argument(help: "The patch file of the patch to remove (default: the newest).")
    var patch: String?

    @Option(help: ArgumentHelp("Consistency model (default: the one the patch was applied with).", valueName: "MODEL"))
    var model: PatchArea.Model?

    @Option(help: ArgumentHelp("Give up after this many seconds.", valueName: "SECONDS"))
    var timeout: Double = 10

    @OptionGroup var json: JSONOption

    func validate() throws {
        if process.all && patch == nil {
            throw ValidationError("--all needs the patch file: it reverts that patch wherever it is applied.")
        }
    }

    func run() throws {
        try reportingErrors(json: json.json) {
            // SIGCHLD tells the tracer that a thread stopped; blocked before
            // any other thread exists, no other thread can swallow it.
            Kernel.blockSignal(SIGCHLD)
            Cleanup.installSignalHandling()
            guard let pid = process.single else {
                let (pids, group) = try process.resolve()
                var report = RevertMany(
                    .init(pids: pids, patch: patch, timeout: timeout, model: model, members: process.members)
                ).run()
                if process.all {
                    report.entries.removeAll { if case .notPatched = $0.outcome { true } else { false } }
                }
                if json.json {
                    printJSON(process.json(group, report.json))
                } else {
                    writeStandardOutput(process.heading(group, count: pids.count) + report.text)
                }
                if let error = report.error {
                    if !json.json { Progress.warn("suture: \(Printable.terminalSafe(error.description))") }
                    throw ExitCode(error.exitStatus)
                }
                return
            }
            let report = try Revert(.init(pid: pid, patch: patch, timeout: timeout, model: model)).run()
            if json.json {
                printJSON(report.json)
            } else {
                writeStandardOutput(
                    "reverted patch #\(report.sequence) (\(Printable.escaped(report.name))) from process \(report.pid) "
                        + "(\(report.attempts) attempt(s), \(Int((report.seconds * 1000).rounded())) ms)\n")
            }
        }
    }
}
