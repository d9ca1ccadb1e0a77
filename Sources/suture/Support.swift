// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Platform

/// `--json` for every command that supports machine-readable output.
struct JSONOption: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object on stdout; progress goes to stderr.")
    var json = false
}

/// `--kernel RELEASE|PATH` for every command that targets a kernel.
struct KernelOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Target kernel release or image path (default: the running kernel if it can be live-patched, else the newest installed kernel with CONFIG_LIVEPATCH=y).",
        valueName: "RELEASE|PATH"))
    var kernel: String?
}

/// Runs a command body and maps Suture errors to messages and exit codes.
///
/// This is the only place that turns errors into exit statuses; library
/// code throws typed errors and never exits.
func reportingErrors(json: Bool, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as any SutureError {
        if json {
            let object: JSON = .object([("error", .object([
                ("code", .string(error.code)),
                ("message", .string(error.description)),
            ]))])
            writeStandardOutput(object.serialized() + "\n")
        } else {
            Progress.warn("suture: \(error.description)")
        }
        throw ExitCode(error.exitStatus)
    }
}

/// Prints a command's JSON result on stdout.
func printJSON(_ value: JSON) {
    writeStandardOutput(value.serialized() + "\n")
}
