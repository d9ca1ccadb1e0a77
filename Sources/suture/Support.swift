// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Livepatch
import Platform
import TargetKernel

/// `--json` for every command that supports machine-readable output.
struct JSONOption: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object on stdout; progress goes to stderr.")
    var json = false
}

/// `--kernel RELEASE|PATH` for every command that targets a kernel.
struct KernelOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Target kernel release or image path (default: the running kernel if it can be live-patched, else the newest installed kernel with CONFIG_LIVEPATCH=y).",
            valueName: "RELEASE|PATH"), completion: .custom(kernelReleaseCompletions))
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
            let object: JSON = .object([("error", error.json)])
            writeStandardOutput(object.serialized() + "\n")
        } else {
            // Messages quote hostile input (names from a diff, a module, a target).
            Progress.warn("suture: \(Printable.terminalSafe(error.description))")
        }
        throw ExitCode(error.exitStatus)
    }
}

/// Prints a command's JSON result on stdout.
func printJSON(_ value: JSON) {
    writeStandardOutput(value.serialized() + "\n")
}

/// `--kernel RELEASE|PATH` of the commands on installed patches (install,
/// uninstall, list --installed). Unlike `KernelOption`, the default is the
/// running kernel: patches are installed for the kernel they fix, whether
/// or not its source is here. Other kernels go through the resolver; a
/// release that only the store still knows is taken as it is, so patches
/// of a removed kernel can be listed and uninstalled.
struct InstalledKernelOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The kernel whose patch store to use, by release or image path (default: the running kernel).",
            valueName: "RELEASE|PATH"), completion: .custom(kernelReleaseCompletions))
    var kernel: String?

    /// The release, with what the resolver knows of it when it is not the
    /// running kernel.
    func target(store: PatchStore, running: String) throws -> (release: String, kernel: KernelRelease?) {
        guard let spec = kernel, !spec.isEmpty, spec != running else { return (running, nil) }
        if !spec.contains("/") && FileSystem.isDirectory(store.directory(spec)) {
            return (spec, try? KernelResolver().resolve(spec))
        }
        let resolved = try KernelResolver().resolve(spec)
        return (resolved.release, resolved.release == running ? nil : resolved)
    }
}

/// `--verbose` and `--quiet` of the commands that run other programs.
struct OutputLevelOption: ParsableArguments {
    @Flag(help: "Show every command Suture runs, on stderr.")
    var verbose = false

    @Flag(help: "Print only errors: no progress, and no summary unless --json.")
    var quiet = false

    func validate() throws {
        guard !(verbose && quiet) else { throw ValidationError("give --verbose or --quiet, not both") }
    }

    /// Sets the process-wide output level; call first in `run()`.
    func apply() {
        Progress.verbose = verbose
        Progress.quiet = quiet
    }
}
