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
            let taint = KernelTaint.read(.live)
            let policy = SignaturePolicy.read(.live)
            if output.json {
                let flags: [JSON] = (taint?.setFlags ?? []).map {
                    .object([
                        ("letter", .string(String($0.letter))), ("meaning", .string($0.meaning)),
                        ("explanation", .optional(KernelTaint.explanation($0.letter))),
                    ])
                }
                printJSON(
                    LivepatchJSON.patches(
                        patches,
                        [
                            (
                                "taint",
                                taint.map { .object([("mask", .integer(Int($0.mask))), ("flags", .array(flags))]) }
                                    ?? .null
                            ),
                            ("lockdown", .optional(policy.lockdown)),
                            ("sigEnforce", policy.sigEnforce.map(JSON.bool) ?? .null),
                        ]))
            } else {
                var text = LivepatchText.status(patches)
                if let taint {
                    text += "kernel taint: \(taint.mask)\(taint.mask == 0 ? " (none)" : " = " + taint.letters)\n"
                    for line in taint.explained { text += "  \(line)\n" }
                }
                if let lockdown = policy.lockdown { text += "lockdown: \(lockdown)\n" }
                if let enforce = policy.sigEnforce {
                    text +=
                        "module signatures: \(policy.enforcement.map { "required (\($0))" } ?? (enforce ? "required" : "checked, not required"))\n"
                }
                writeStandardOutput(text)
            }
        }
    }
}
