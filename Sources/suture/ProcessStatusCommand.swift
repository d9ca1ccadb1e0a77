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
            (`revert` removes it).
            """)

    @OptionGroup var process: PIDOption

    @OptionGroup var json: JSONOption

    func run() throws {
        try reportingErrors(json: json.json) {
            let status = try Status.read(pid: process.pid)
            if json.json { printJSON(status.json) } else { writeStandardOutput(status.text) }
        }
    }
}
