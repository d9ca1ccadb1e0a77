// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Glibc
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
            later suture can report on it or revert it. `apply`, `status` and `revert` take --pid
            (repeatable) or --unit NAME.service for every process of a systemd unit; a patch for a
            shared library applies to every process that maps it, all of them or none.
            """,
        subcommands: [
            ProcessBuildCommand.self,
            ProcessApplyCommand.self,
            ProcessRevertCommand.self,
            ProcessStatusCommand.self,
            ProcessCompileRecordCommand.self,
        ])
}

/// The processes a subcommand works on: `--pid PID` (repeatable), or
/// `--unit NAME.service` for every process of a systemd unit.
struct ProcessSelection: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "A running process, by process ID; repeat it for several (apply: all of them or none).",
            valueName: "PID"))
    var pid: [Int32] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Every process of a systemd unit, found through its cgroup (v2 or v1 name=systemd).",
            valueName: "NAME.service"))
    var unit: String?

    @Flag(
        name: .long,
        help:
            "Every process of the system that maps the patch's object (apply; revert with the patch file), or that has a patch (status)."
    )
    var all = false

    func validate() throws {
        let ways = (pid.isEmpty ? 0 : 1) + (unit == nil ? 0 : 1) + (all ? 1 : 0)
        if ways == 0 { throw ValidationError("Name the processes with --pid PID, --unit NAME or --all.") }
        if ways > 1 { throw ValidationError("Give one of --pid, --unit and --all.") }
    }

    /// One process named by --pid: the single-process commands and output.
    var single: Int32? { unit == nil && !all && pid.count == 1 ? pid[0] : nil }

    /// Whether the processes are a set found here (a unit's, or all), whose
    /// members that do not map the patched object are skipped.
    var members: Bool { unit != nil || all }

    /// The processes, in order, without duplicates; and the unit's cgroup.
    func resolve() throws(ProcessError) -> (pids: [Int32], group: ControlGroup?) {
        if all {
            let me = getpid()
            let pids = ((try? FileSystem.list("/proc")) ?? []).compactMap { Int32($0) }.filter { $0 != me }.sorted()
            return (pids, nil)
        }
        guard let unit else {
            var seen = Set<Int32>()
            return (pid.filter { seen.insert($0).inserted }, nil)
        }
        let group = try ControlGroup.unit(unit)
        let pids = group.processes()
        guard !pids.isEmpty else {
            throw ProcessError(
                .noSuchProcess, "unit \(ControlGroup.unitName(unit)) has no running process (cgroup \(group.path))")
        }
        return (pids, group)
    }

    /// `unit` and `cgroup` fields for --json, then `rest`.
    func json(_ group: ControlGroup?, _ rest: JSON) -> JSON {
        guard let group, let unit, case .object(let fields) = rest else { return rest }
        return .object(
            [("unit", .string(ControlGroup.unitName(unit))), ("cgroup", .string(group.path))] + fields)
    }

    /// A first line naming the unit, for text output.
    func heading(_ group: ControlGroup?, count: Int) -> String {
        guard let group, let unit else { return "" }
        return "unit \(ControlGroup.unitName(unit)) (cgroup \(group.path)): \(count) process(es)\n"
    }
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
