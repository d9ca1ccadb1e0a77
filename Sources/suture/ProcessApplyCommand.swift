// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Glibc
import Platform
import ProcessPatch

struct ProcessApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply a process patch to a running process.",
        discussion: """
            Checks first that the process is yours (or that you are root), that one of its mapped
            objects has the patch's build-id, and that every old function's bytes in memory are
            the ones the patch was built against. Then attaches to every thread with ptrace, maps
            the patch next to the program, and switches the functions over under a model:

            stop-check (default): all threads stop; if none is inside a function being replaced,
            every function switches at once, else they resume and suture tries again until
            --timeout. On timeout the process is left as it was and suture exits 1 naming the
            threads and functions in the way.

            per-thread: every old function enters a dispatcher that sends each thread to the old
            or the new code by its own state; a thread moves to the new code when suture sees it
            outside every old function (instruction pointer and stack); new threads start on the
            new code. When all have moved, the dispatchers become direct jumps. On timeout every
            thread goes back to the old code, the patch is removed, and suture exits 1.

            hybrid: as per-thread, but every thread's stack is checked once at the start and all
            threads outside the old functions move at once.

            If suture dies at any point, the process runs on, each thread wholly old or wholly new;
            `suture process status` shows a transition in progress, `apply` again finishes it and
            `revert` reverses it.

            Several processes (--pid repeated, or --unit NAME.service for every process of a systemd
            unit, read from its cgroup): all of them or none. Every process is checked first, while
            all run (nothing is touched if one does not fit); then each is patched in turn, and if
            one fails, those already patched are reverted. A unit's processes that do not map the
            patched object (a wrapper shell, a helper) are skipped. A patch for a shared library
            applies wherever that library (its build-id) is mapped; --all patches every process of
            the system that maps it. The report lists every process.
            """)

    @OptionGroup var process: ProcessSelection

    @Argument(help: "The patch file from `suture process build`.")
    var patch: String

    @Option(help: ArgumentHelp("Consistency model: stop-check, per-thread or hybrid.", valueName: "MODEL"))
    var model: PatchArea.Model = .stopCheck

    @Option(help: ArgumentHelp("Give up after this many seconds.", valueName: "SECONDS"))
    var timeout: Double = 10

    @OptionGroup var json: JSONOption

    func run() throws {
        try reportingErrors(json: json.json) {
            // SIGCHLD tells the tracer that a thread stopped; blocked before
            // any other thread exists, no other thread can swallow it.
            Kernel.blockSignal(SIGCHLD)
            Cleanup.installSignalHandling()
            guard let pid = process.single else {
                try applyMany()
                return
            }
            let report = try Apply(.init(pid: pid, patch: patch, model: model, timeout: timeout)).run()
            if json.json {
                printJSON(report.json)
            } else {
                if let summary = report.transitionSummary {
                    writeStandardOutput(
                        "applied \(report.area.name) to process \(report.pid) as patch #\(report.area.sequence) "
                            + "(\(report.area.functions.count) function(s), \(report.area.model.name): \(summary), "
                            + "\(Int((report.seconds * 1000).rounded())) ms in all)\n")
                    return
                }
                let sorted = report.pauses.sorted()
                let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
                writeStandardOutput(
                    "applied \(report.area.name) to process \(report.pid) as patch #\(report.area.sequence) "
                        + "(\(report.area.functions.count) function(s), \(report.attempts) attempt(s), "
                        + "median pause \(Int((median * 1e6).rounded())) µs, \(Int((report.seconds * 1000).rounded())) ms in all)\n"
                )
            }
        }
    }

    /// Several processes: all or none, one line (or JSON entry) per process.
    func applyMany() throws {
        let (pids, group) = try process.resolve()
        var report = try ApplyMany(
            .init(pids: pids, patch: patch, model: model, timeout: timeout, skipUnmapped: process.members)
        ).run()
        // --all: the processes that do not map the object are only counted.
        let before = report.entries.count
        if process.all { report.entries.removeAll { if case .skipped = $0.outcome { true } else { false } } }
        let others = before - report.entries.count
        if json.json {
            var out = process.json(group, report.json)
            if process.all, case .object(let fields) = out { out = .object(fields + [("others", .int(Int64(others)))]) }
            printJSON(out)
        } else {
            var text = process.heading(group, count: pids.count)
            if process.all { text += "\(report.entries.count) process(es) map the patched object (of \(before))\n" }
            if report.succeeded {
                text +=
                    "applied \(Printable.escaped(report.patch)) to \(report.count.applied) process(es) in \(Int((report.seconds * 1000).rounded())) ms\n"
            }
            writeStandardOutput(text + report.text)
        }
        if let error = report.error {
            if !json.json { Progress.warn("suture: \(Printable.terminalSafe(error.description))") }
            throw ExitCode(error.exitStatus)
        }
    }
}
