// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import ELF
import PatchCore
import Platform

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two builds of an object function by function and emit the patch object.",
        discussion: """
            ORIG.o and PATCHED.o are the same source compiled before and after a change, both with
            -ffunction-sections -fdata-sections. Every function and data object is reported as
            unchanged, changed, new or removed, with a reason. Changes that cannot be live-patched are
            refused, all listed at once, and then no output is written (exit status 1).
            Kernel rules (fentry required, the kernel's special sections, __init refused) apply by
            default; --user-space applies the rules for programs instead.
            """)

    @Argument(help: "The object built from the original source.")
    var original: String

    @Argument(help: "The object built from the patched source.")
    var patched: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the patch object here.", valueName: "OUT.o"))
    var output: String?

    @Flag(
        name: .long,
        help: "Diff under user-space rules (no fentry, no kernel special sections, no TLS or ifunc changes).")
    var userSpace = false

    @OptionGroup var json: JSONOption

    func run() throws {
        try reportingErrors(json: json.json) {
            let rules: TargetRules = userSpace ? .userSpace() : .kernel()
            let result = try ObjectDiff.run(
                original: ELFFile.open(original), patched: ELFFile.open(patched), rules: rules)
            let refused =
                result.refusals.isEmpty
                ? nil
                : PatchCoreError(
                    .refused,
                    "\(patched): \(result.refusals.count) change(s) cannot be live-patched; no output written",
                    object: patched, refusals: result.refusals)
            // The output first: should writing it fail, the error is all
            // that is printed (under --json, one object).
            if refused == nil { try write(result) }
            if json.json {
                // One object: the report, and on refusal the error with the refusals.
                var report = result.report.json
                if let refused, case .object(var fields) = report {
                    fields.append(("error", refused.json))
                    report = .object(fields)
                }
                printJSON(report)
            } else {
                printText(result.report)
            }
            if let refused {
                Progress.warn("suture: \(refused.description)")
                throw ExitCode(1)
            }
            if let output, result.patch != nil { Progress.say("suture: wrote \(output)") }
        }
    }

    func write(_ result: ObjectDiff.Result) throws {
        if let output {
            guard let patch = result.patch else {
                Progress.warn("suture: no functional change; \(output) not written")
                return
            }
            try ELFWriter.write(patch.object, to: output)
        }
    }

    func printText(_ report: DiffReport) {
        var text = ""
        for (title, list) in [("functions", report.functions), ("data", report.data)] {
            let interesting = list.filter { $0.status != .unchanged || !$0.reason.isEmpty }
            text +=
                "\(title): \(list.count), of which \(list.filter { $0.status == .changed }.count) changed, "
                + "\(list.filter { $0.status == .new }.count) new, \(list.filter { $0.status == .removed }.count) removed\n"
            for v in interesting.sorted(by: { $0.name < $1.name }) {
                text += "  \(v.status.rawValue.padding(9)) \(v.name)\(v.reason.isEmpty ? "" : ": \(v.reason)")\n"
            }
        }
        if !report.included.isEmpty { text += "included: \(report.included.joined(separator: " "))\n" }
        writeStandardOutput(text)
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
