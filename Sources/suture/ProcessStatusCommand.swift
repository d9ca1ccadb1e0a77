// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Platform
import ProcessPatch

struct ProcessStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "List the patches applied to a process and each function's state.",
        discussion: """
            Reads the state suture keeps inside the process; the process is not stopped. A patch
            is `applied`, or `inactive` when an apply or revert was interrupted before its switch
            (`revert` removes it). With several processes (--pid repeated, or --unit NAME.service),
            each one in turn; --json prints {"processes": [...]} (with "unit" and "cgroup"). --all
            lists every process that has a patch.
            """)

    @OptionGroup var process: ProcessSelection

    @OptionGroup var json: JSONOption

    func run() throws {
        try reportingErrors(json: json.json) {
            guard let pid = process.single else {
                let (pids, group) = try process.resolve()
                var entries: [JSON] = []
                var text = process.heading(group, count: pids.count)
                var failed: ProcessError?
                for pid in pids {
                    do throws(ProcessError) {
                        let status = try Status.read(pid: pid)
                        // --all: only the processes with a patch.
                        if process.all && status.patches.isEmpty && status.incomplete.isEmpty { continue }
                        entries.append(status.json)
                        text += status.text
                    } catch {
                        if process.all { continue }
                        entries.append(.object([("pid", .int(Int64(pid))), ("error", error.json)]))
                        text += "process \(pid): \(Printable.escaped(error.message))\n"
                        failed = failed ?? error
                    }
                }
                if json.json {
                    printJSON(process.json(group, .object([("processes", .array(entries))])))
                } else {
                    writeStandardOutput(text)
                }
                if failed != nil { throw ExitCode(1) }
                return
            }
            let status = try Status.read(pid: pid)
            if json.json { printJSON(status.json) } else { writeStandardOutput(status.text) }
        }
    }
}
