// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Platform
import ProcessPatch

struct ProcessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process",
        abstract: "Live-patch running programs from a source diff, through ptrace.",
        discussion: """
            `build` turns a diff into a patch file for a program built by its own build command;
            `apply` loads it into a running process of that program, `revert` takes it out again,
            and `status` shows what is applied. The patch state lives inside the process, so any
            later suture can report on it or revert it.
            """,
        subcommands: [
            ProcessBuildCommand.self,
            ProcessApplyCommand.self,
            ProcessRevertCommand.self,
            ProcessStatusCommand.self,
            ProcessCompileRecordCommand.self,
        ])
}

/// `--pid PID` of the process subcommands.
struct PIDOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The running process, by process ID.", valueName: "PID"))
    var pid: Int32
}

extension PatchArea.Model: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "stop-check": self = .stopCheck
        case "per-thread": self = .perThread
        case "hybrid": self = .hybrid
        default: return nil
        }
    }

    public static var allValueStrings: [String] { ["stop-check", "per-thread", "hybrid"] }

    /// The default as it is typed, not the raw value.
    public var defaultValueDescription: String { name }
}
